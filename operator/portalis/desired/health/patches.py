"""What is written on a Node (quarantine, release, phase) and what a dry run would have done."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from portalis.api.meta import format_time
from portalis.api.v1alpha1.cluster import EccAction, QuarantinePhase
from portalis.desired.health.alerts import GpuAlert
from portalis.desired.health.decide import (
    AlertDecision,
    Outcome,
)
from portalis.desired.health.names import (
    ACTION_ANNOTATION,
    ALERT_ANNOTATION,
    AT_ANNOTATION,
    BY_ANNOTATION,
    CLUSTERS_ANNOTATION,
    CORDONED_ANNOTATION,
    DRAIN_ANNOTATION,
    DRAIN_DEADLINE_ANNOTATION,
    DRAIN_MESSAGE_ANNOTATION,
    QUARANTINE_ANNOTATIONS,
    QUARANTINED_LABEL,
    REASON_ANNOTATION,
    RELEASE_ANNOTATION,
    TAINT_EFFECT,
    TAINT_KEY,
)
from portalis.desired.health.nodes import (
    NodeView,
    format_clusters,
)

_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]")


def taint_value(alert: GpuAlert) -> str:
    """The taint's value: the alert's name, made a valid label value."""
    value = _LABEL_VALUE.sub("-", alert.name or "ecc")[:63].strip("-._")
    return value or "ecc"


def build_quarantine_patch(
    node: NodeView, decision: AlertDecision, by: str, now: datetime, resource_version: bool = True
) -> dict[str, Any]:
    """A JSON merge patch that cordons and taints the node and records who, why and when.

    It carries the node's resourceVersion, so the API server refuses it (409) when the node changed since it
    was read; the taint list is replaced whole, keeping every other taint as it was.
    """
    alert = decision.alert
    taints = [dict(t) for t in node.taints if t.get("key") != TAINT_KEY]
    taints.append({"key": TAINT_KEY, "value": taint_value(alert), "effect": TAINT_EFFECT})
    record = {"alert": alert.name, "gpu": alert.gpu, "uuid": alert.uuid, "fingerprint": alert.fingerprint}
    annotations: dict[str, str | None] = {
        BY_ANNOTATION: by,
        AT_ANNOTATION: format_time(now),
        REASON_ANNOTATION: (alert.summary or alert.describe())[:1024],
        ALERT_ANNOTATION: json.dumps({k: v for k, v in record.items() if v}, sort_keys=True),
        CLUSTERS_ANNOTATION: format_clusters(decision.clusters),
        ACTION_ANNOTATION: decision.action.value,
        DRAIN_ANNOTATION: QuarantinePhase.REMOVING_WORKERS.value,
        DRAIN_MESSAGE_ANNOTATION: "removing Ray workers from the node",
        DRAIN_DEADLINE_ANNOTATION: format_time(now + timedelta(seconds=decision.drain_timeout_seconds)),
        RELEASE_ANNOTATION: None,
    }
    if not node.unschedulable:
        annotations[CORDONED_ANNOTATION] = "true"  # Portalis cordoned it, so an annotation release uncordons it
    meta: dict[str, Any] = {"labels": {QUARANTINED_LABEL: "true"}, "annotations": annotations}
    if resource_version and node.resource_version:
        meta["resourceVersion"] = node.resource_version
    return {"metadata": meta, "spec": {"unschedulable": True, "taints": taints}}


def build_release_patch(node: NodeView, uncordon: bool) -> dict[str, Any]:
    """A JSON merge patch that removes Portalis' taint, label and annotations (and uncordons, when asked)."""
    taints = [dict(t) for t in node.taints if t.get("key") != TAINT_KEY]
    annotations: dict[str, None] = {k: None for k in (*QUARANTINE_ANNOTATIONS, RELEASE_ANNOTATION)}
    spec: dict[str, Any] = {"taints": taints or None}
    if uncordon:
        spec["unschedulable"] = None
    meta: dict[str, Any] = {"labels": {QUARANTINED_LABEL: None}, "annotations": annotations}
    if node.resource_version:
        meta["resourceVersion"] = node.resource_version
    return {"metadata": meta, "spec": spec}


def build_phase_patch(phase: QuarantinePhase, message: str, deadline: str | None = None) -> dict[str, Any]:
    annotations: dict[str, str | None] = {DRAIN_ANNOTATION: phase.value, DRAIN_MESSAGE_ANNOTATION: message[:1024]}
    if deadline is not None:
        annotations[DRAIN_DEADLINE_ANNOTATION] = deadline
    return {"metadata": {"annotations": annotations}}


def build_dry_run_plan(decision: AlertDecision, evictable: int = 0) -> list[str]:
    """The actions a dry run would have taken, in order, as a person would read them."""
    if decision.node is None:
        return []
    action = decision.dry_run_action if decision.outcome == Outcome.DRY_RUN else decision.action
    steps = [
        f"cordon node {decision.node}",
        f"taint {TAINT_KEY}={taint_value(decision.alert)}:{TAINT_EFFECT}",
        f"label {QUARANTINED_LABEL}=true and annotate who, why and when",
    ]
    for key, pods in sorted(decision.ray_workers.items()):
        if pods:
            names = ", ".join(sorted(pods)[:10]) + (" ..." if len(pods) > 10 else "")
            steps.append(f"remove Ray workers of {key[0]}/{key[1]} through the RayCluster: {names}")
            steps.append("return their in-flight items to the queue")
    if action == EccAction.CORDON_AND_DRAIN:
        steps.append(
            f"evict the other {evictable} pods with the Eviction API (PodDisruptionBudgets respected, "
            f"timeout {decision.drain_timeout_seconds}s)"
        )
    for hold in decision.holds:
        steps.append(f"but hold all of it: {hold.message}")
    return steps
