"""TranslationCluster controller: reconcile each cluster into its RayCluster (or DaskCluster) and its status.

kopf's watches keep in-memory indexes (watch caches) of TranslationClusters, their backend objects and their
pods; every event about any of them only enqueues the cluster's key. A worker of the reconcile loop then
observes from the indexes, builds the desired backend object with pure functions, server-side applies it only
when the observed object lacks a field Portalis owns (so edits and deletions are undone), and patches status
only when the freshly computed status differs. Deleting a TranslationCluster garbage-collects what it made
through owner references.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from portalis import GROUP, VERSION, metrics
from portalis.api.v1alpha1.cluster import Backend, TranslationClusterSpec
from portalis.clients.kube import Kube, Ref
from portalis.controllers.runtime import Controller, Key, Result
from portalis.desired.apply import desired_hash, drifted_paths, is_subset
from portalis.desired.cluster_status import ClusterObservation, compute_cluster_status, status_changed, view_pod
from portalis.desired.conditions import FALSE, ConditionUpdate, compute_conditions
from portalis.desired.daskcluster import build_daskcluster, daskcluster_name
from portalis.desired.pods import CLUSTER_LABEL, Owner
from portalis.desired.raycluster import build_raycluster, clamp_replicas, raycluster_name

log = logging.getLogger("portalis.cluster")

GENERATION_ANNOTATION = f"{GROUP}/cluster-generation"
DESIRED_HASH_ANNOTATION = f"{GROUP}/desired-hash"
TC_API_VERSION = f"{GROUP}/{VERSION}"
Indexed = dict[Key, dict[str, Any]]


def _one(index: kopf.Index[Key, dict[str, Any]], key: Key) -> dict[str, Any] | None:
    store = index.get(key)
    if not store:
        return None
    for item in store:
        return item
    return None


# ---- watch caches ---------------------------------------------------------------------------------------


@kopf.index(GROUP, VERSION, "translationclusters")
def tc_by_key(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Indexed:
    return {(namespace or "", name): dict(body)}


@kopf.index("ray.io", "v1", "rayclusters", labels={CLUSTER_LABEL: kopf.PRESENT})
def raycluster_by_owner(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Indexed:
    return {(namespace or "", labels[CLUSTER_LABEL]): dict(body)}


@kopf.index("kubernetes.dask.org", "v1", "daskclusters", labels={CLUSTER_LABEL: kopf.PRESENT})
def daskcluster_by_owner(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Indexed:
    return {(namespace or "", labels[CLUSTER_LABEL]): dict(body)}


@kopf.index("v1", "pods", labels={CLUSTER_LABEL: kopf.PRESENT})
def pods_by_owner(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Indexed:
    return {(namespace or "", labels[CLUSTER_LABEL]): dict(body)}


# ---- events only enqueue ------------------------------------------------------------------------------


@dataclass
class ClusterContext:
    controller: Controller
    clusters: kopf.Index[Key, dict[str, Any]]
    rayclusters: kopf.Index[Key, dict[str, Any]]
    daskclusters: kopf.Index[Key, dict[str, Any]]
    pods: kopf.Index[Key, dict[str, Any]]
    kube: Kube


CONTEXT: ClusterContext | None = None


def enqueue(key: Key) -> None:
    if CONTEXT is not None:
        CONTEXT.controller.enqueue(key)


@kopf.on.event(GROUP, VERSION, "translationclusters")
def tc_event(namespace: str | None, name: str, **_: Any) -> None:
    enqueue((namespace or "", name))


@kopf.on.event("ray.io", "v1", "rayclusters", labels={CLUSTER_LABEL: kopf.PRESENT})
def raycluster_event(namespace: str | None, labels: kopf.Labels, **_: Any) -> None:
    enqueue((namespace or "", labels[CLUSTER_LABEL]))


@kopf.on.event("kubernetes.dask.org", "v1", "daskclusters", labels={CLUSTER_LABEL: kopf.PRESENT})
def daskcluster_event(namespace: str | None, labels: kopf.Labels, **_: Any) -> None:
    enqueue((namespace or "", labels[CLUSTER_LABEL]))


@kopf.on.event("v1", "pods", labels={CLUSTER_LABEL: kopf.PRESENT})
def pod_event(namespace: str | None, labels: kopf.Labels, **_: Any) -> None:
    enqueue((namespace or "", labels[CLUSTER_LABEL]))


@kopf.on.startup()
async def tc_controller_start(**kwargs: Any) -> None:
    """Start the reconcile loop; kopf hands every handler its indexes by name."""
    global CONTEXT
    controller = Controller("translationcluster", reconcile, workers=8, observe=metrics.observe_reconcile)
    CONTEXT = ClusterContext(
        controller,
        kwargs["tc_by_key"],
        kwargs["raycluster_by_owner"],
        kwargs["daskcluster_by_owner"],
        kwargs["pods_by_owner"],
        Kube.shared(),
    )
    controller.start()


@kopf.on.cleanup()
async def tc_controller_stop(**_: Any) -> None:
    if CONTEXT is not None:
        await CONTEXT.controller.stop()


# ---- reconcile -----------------------------------------------------------------------------------------


async def reconcile(key: Key) -> Result:
    ctx = CONTEXT
    assert ctx is not None
    tc = _one(ctx.clusters, key)
    if tc is None or tc.get("metadata", {}).get("deletionTimestamp"):
        ctx.controller.forget(key)
        metrics.forget_cluster(*key)
        return Result.forget()
    meta = tc["metadata"]
    ref = Ref(TC_API_VERSION, "TranslationCluster", key[0], key[1], meta.get("uid", ""))
    generation = int(meta.get("generation") or 0)
    status: dict[str, Any] = dict(tc.get("status") or {})
    now = datetime.now(UTC)
    try:
        spec = TranslationClusterSpec.model_validate(tc.get("spec") or {})
    except ValidationError as exc:
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        invalid = {
            "observedGeneration": generation,
            "phase": "Invalid",
            "conditions": compute_conditions(
                status.get("conditions"), [ConditionUpdate("Ready", FALSE, "InvalidSpec", message)], generation, now
            ),
        }
        if status_changed(status, invalid):
            await asyncio.to_thread(ctx.kube.patch_status, ref, invalid)
            await asyncio.to_thread(ctx.kube.event, ref, "Warning", "InvalidSpec", message)
        return Result()

    owner = Owner(key[1], key[0], meta.get("uid", ""))
    replicas = clamp_replicas(spec, (status.get("workers") or {}).get("desired"))
    if spec.backend == Backend.RAY:
        backend_name = raycluster_name(key[1])
        observed = _one(ctx.rayclusters, key)
        desired = build_raycluster(spec, owner, replicas)
    else:
        backend_name = daskcluster_name(key[1])
        observed = _one(ctx.daskclusters, key)
        desired = build_daskcluster(spec, owner, replicas)
    desired["metadata"]["annotations"] = {
        GENERATION_ANNOTATION: str(generation),
        DESIRED_HASH_ANNOTATION: desired_hash(desired),
    }

    if observed is None or not is_subset(desired, observed):
        existed = bool(status.get("rayClusterName") or status.get("daskClusterName"))
        await _apply(ctx, ref, desired, observed, generation, existed)
        observed = desired

    pods = [view_pod(p) for p in (ctx.pods.get(key) or [])]
    obs = ClusterObservation(
        backend_name=backend_name,
        backend_exists=observed is not None,
        backend_suspended=spec.suspend,
        desired_workers=replicas,
        pods=pods,
    )
    new_status = compute_cluster_status(spec, generation, status, obs, now)
    metrics.WORKERS_DESIRED.labels(*key).set(replicas)
    metrics.WORKERS_READY.labels(*key).set(new_status["workers"]["ready"])
    metrics.GPUS_ALLOCATED.labels(*key).set(new_status["gpus"]["allocated"])
    if status_changed(status, new_status):
        await asyncio.to_thread(ctx.kube.patch_status, ref, new_status)
        await _record_transitions(ctx, ref, status, new_status)
    return Result()


async def _apply(
    ctx: ClusterContext,
    ref: Ref,
    desired: dict[str, Any],
    observed: dict[str, Any] | None,
    generation: int,
    existed: bool,
) -> None:
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
    await asyncio.to_thread(ctx.kube.apply, desired)
    metrics.APPLIES.labels(kind, reason).inc()
    log.info("%s/%s: %s", ref.namespace, ref.name, message)
    await asyncio.to_thread(ctx.kube.event, ref, event_type, reason, message)


async def _record_transitions(ctx: ClusterContext, ref: Ref, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Log every condition change; raise an Event when the cluster turns Ready or Degraded."""
    before = {c.get("type"): c.get("status") for c in old.get("conditions") or []}
    for c in new.get("conditions") or []:
        if before.get(c["type"]) == c["status"]:
            continue
        log.info("%s/%s: %s=%s (%s) %s", ref.namespace, ref.name, c["type"], c["status"], c["reason"],
                 c["message"])  # fmt: skip
        if c["type"] == "Degraded" and c["status"] == "True":
            await asyncio.to_thread(ctx.kube.event, ref, "Warning", c["reason"], c["message"])
        elif c["type"] == "Ready" and c["status"] == "True":
            await asyncio.to_thread(ctx.kube.event, ref, "Normal", c["reason"], c["message"])
