"""Applying a TranslationCluster's backend object (its RayCluster or DaskCluster), and the Events that say what
changed: created, restored after someone else's edit or deletion, updated for a new generation, suspended or
resumed, scaled."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from portalis import metrics
from portalis.api.meta import Key
from portalis.clients.kube import Kube, Ref, rejection
from portalis.desired.apply import DESIRED_HASH_ANNOTATION, drifted_paths
from portalis.desired.scaling import ScaleDecision

log = logging.getLogger("portalis.cluster")

MESSAGE_LIMIT = 1024


async def apply_backend(
    kube: Kube,
    ref: Ref,
    desired: dict[str, Any],
    observed: dict[str, Any] | None,
    generation: int,
    existed: bool,
) -> tuple[dict[str, Any] | None, str | None]:
    """Server-side apply the backend object and record what changed. Returns the object as the apiserver
    answered, or why it refused the object made from the spec (a spec change retries); raises when it could not
    be reached (retried with back-off)."""
    kind = desired["kind"]
    name = desired["metadata"]["name"]
    if observed is None and existed:
        reason, event_type = "Restored", "Warning"
        message = f"Recreated {kind} {name}, which was deleted; delete the TranslationCluster to remove it"
    elif observed is None:
        reason, message, event_type = "Created", f"Created {kind} {name}", "Normal"
    else:
        annotations = observed.get("metadata", {}).get("annotations") or {}
        same_intent = annotations.get(DESIRED_HASH_ANNOTATION) == desired["metadata"]["annotations"].get(
            DESIRED_HASH_ANNOTATION
        )
        paths = [p for p in drifted_paths(desired, observed) if not p.startswith("metadata.annotations")]
        was_suspended = bool(observed.get("spec", {}).get("suspend"))
        now_suspended = bool(desired.get("spec", {}).get("suspend"))
        if was_suspended != now_suspended:
            reason = "Suspended" if now_suspended else "Resumed"
            message = f"{'Suspended' if now_suspended else 'Resumed'} {kind} {name}"
            event_type = "Normal"
        elif same_intent:
            # Portalis wants what it applied last, so someone else changed the object
            reason, event_type = "Restored", "Warning"
            message = f"Restored fields Portalis owns in {kind} {name} that were changed: {', '.join(paths[:5])}"
        else:
            reason, event_type = "Updated", "Normal"
            message = f"Updated {kind} {name} for generation {generation}: {', '.join(paths[:5])}"
    try:
        applied = await asyncio.to_thread(kube.apply, desired)
    except Exception as exc:
        refused = rejection(exc)
        if refused is None:
            raise  # the apiserver could not be reached or had trouble: retried with back-off
        # the spec makes an object the apiserver refuses; the status says so and the next spec change retries
        metrics.APPLIES.labels(kind, "Refused").inc()
        return None, f"The apiserver refused the {kind} {name} made from this spec: {refused[:MESSAGE_LIMIT]}"
    metrics.APPLIES.labels(kind, reason).inc()
    log.info("%s/%s: %s", ref.namespace, ref.name, message)
    await asyncio.to_thread(kube.event, ref, event_type, reason, message)
    return applied, None


async def record_transitions(kube: Kube, ref: Ref, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Log every condition change; raise an Event when the cluster turns Ready or Degraded, or is Degraded (or over
    a budget) for another reason: a new problem gets its own Event even while the condition stays True."""
    before = {c.get("type"): (c.get("status"), c.get("reason")) for c in old.get("conditions") or []}
    for c in new.get("conditions") or []:
        if before.get(c["type"]) == (c["status"], c["reason"]):
            continue
        log.info("%s/%s: %s=%s (%s) %s", ref.namespace, ref.name, c["type"], c["status"], c["reason"], c["message"])
        if c["type"] in {"Degraded", "BudgetWarning", "BudgetExceeded"} and c["status"] == "True":
            await asyncio.to_thread(kube.event, ref, "Warning", c["reason"], c["message"])
        elif c["type"] == "Ready" and c["status"] == "True":
            await asyncio.to_thread(kube.event, ref, "Normal", c["reason"], c["message"])


async def record_scale(kube: Kube, ref: Ref, key: Key, current: int, decision: ScaleDecision) -> None:
    direction = "up" if decision.replicas > current else "down"
    metrics.SCALE_EVENTS.labels(key[0], key[1], direction, decision.reason).inc()
    reason = "ScaledUp" if direction == "up" else "ScaledDown"
    log.info("%s/%s: %s: %s", key[0], key[1], reason, decision.message)
    await asyncio.to_thread(kube.event, ref, "Normal", reason, f"{decision.reason}: {decision.message}")
