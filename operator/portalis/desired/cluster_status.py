"""TranslationCluster status as a pure function of what the operator observed.

Inputs are plain dicts as the API server returns them (the backend object and the cluster's pods); the output
is the ``status`` to write. Recomputing from the same observations gives the same status, so the controller
patches only when something really changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from portalis.api.v1alpha1.cluster import Backend, TranslationClusterSpec
from portalis.desired.conditions import FALSE, TRUE, ConditionUpdate, compute_conditions
from portalis.desired.merge import patch_changes
from portalis.desired.pods import GPU_RESOURCE, ROLE_LABEL, gpu_products


@dataclass(frozen=True)
class PodView:
    """What status needs to know about one pod."""

    name: str
    role: str  # head | worker | other
    phase: str
    ready: bool
    deleting: bool
    gpus: int
    node: str | None
    unschedulable_message: str | None = None
    waiting_reason: str | None = None


def _gpu_limit(pod: dict[str, Any]) -> int:
    total = 0
    for c in pod.get("spec", {}).get("containers", []):
        raw = (c.get("resources", {}).get("limits") or {}).get(GPU_RESOURCE)
        if raw is not None:
            try:
                total += int(str(raw))
            except ValueError:
                continue
    return total


def view_pod(pod: dict[str, Any]) -> PodView:
    meta = pod.get("metadata", {})
    status = pod.get("status", {}) or {}
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conds.get("Ready", {}).get("status") == "True"
    sched = conds.get("PodScheduled", {})
    unschedulable = None
    if sched.get("status") == "False" and sched.get("reason") == "Unschedulable":
        unschedulable = str(sched.get("message") or "the scheduler found no node that fits")
    waiting = None
    for cs in status.get("containerStatuses") or []:
        reason = (cs.get("state", {}).get("waiting") or {}).get("reason")
        if reason in {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError"}:
            waiting = str(reason)
    role = (meta.get("labels") or {}).get(ROLE_LABEL) or (meta.get("labels") or {}).get("ray.io/node-type", "other")
    return PodView(
        name=str(meta.get("name", "")),
        role=str(role),
        phase=str(status.get("phase") or "Pending"),
        ready=ready,
        deleting=bool(meta.get("deletionTimestamp")),
        gpus=_gpu_limit(pod),
        node=pod.get("spec", {}).get("nodeName"),
        unschedulable_message=unschedulable,
        waiting_reason=waiting,
    )


@dataclass(frozen=True)
class QueueProblem:
    """Why the cluster's queue (its Redis) could not be read: the cluster then neither scales nor meters."""

    reason: str  # QueueUnavailable, StorageOrQueueInvalid, SecretNotFound, SecretKeyNotFound
    message: str


@dataclass(frozen=True)
class ClusterObservation:
    """Everything observed about one TranslationCluster's backend."""

    backend_name: str
    backend_exists: bool
    backend_suspended: bool
    desired_workers: int
    pods: list[PodView] = field(default_factory=list)
    quarantined_nodes: frozenset[str] = frozenset()
    refused: str | None = None  # why the apiserver refused the backend object made from the spec
    queue_problem: QueueProblem | None = None


def _placement(spec: TranslationClusterSpec) -> str:
    products = gpu_products(spec.workers)
    gpu = spec.workers.gpu_product or (str(spec.workers.gpu_type) if products else "GPU")
    return f"{gpu} {'spot' if spec.workers.spot else 'on-demand'} node"


def compute_cluster_status(
    spec: TranslationClusterSpec,
    generation: int,
    existing: dict[str, Any],
    obs: ClusterObservation,
    now: datetime,
) -> dict[str, Any]:
    live = [p for p in obs.pods if not p.deleting]
    heads = [p for p in live if p.role == "head"]
    workers = [p for p in live if p.role == "worker"]
    ready_workers = [p for p in workers if p.ready]
    running_workers = [p for p in workers if p.phase == "Running"]
    unschedulable = [p for p in workers if p.unschedulable_message]
    failing = [p for p in workers if p.phase == "Failed" or p.waiting_reason]
    head_ready = any(p.ready for p in heads)
    allocated = sum(p.gpus for p in running_workers)
    healthy = sum(p.gpus for p in running_workers if p.node not in obs.quarantined_nodes)
    kind = "RayCluster" if spec.backend == Backend.RAY else "DaskCluster"

    ready: ConditionUpdate
    degraded = ConditionUpdate("Degraded", FALSE, "AsExpected", "")
    suspended = ConditionUpdate("Suspended", FALSE, "Running", "")
    if spec.suspend:
        suspended = ConditionUpdate("Suspended", TRUE, "Suspended", "spec.suspend is true: no head or workers run.")
    if obs.refused is not None:
        # nothing below can follow the spec until the backend object is accepted, suspending included
        ready = ConditionUpdate("Ready", FALSE, "BackendRefused", obs.refused)
        degraded = ConditionUpdate("Degraded", TRUE, "BackendRefused", obs.refused)
    elif spec.suspend:
        ready = ConditionUpdate("Ready", FALSE, "Suspended", "The cluster is suspended; set spec.suspend to false.")
    elif not obs.backend_exists:
        ready = ConditionUpdate("Ready", FALSE, "Creating", f"Creating {kind} {obs.backend_name}.")
    elif unschedulable:
        need = len(unschedulable) * spec.workers.gpus_per_worker
        scheduler = unschedulable[0].unschedulable_message
        msg = (
            f"{len(unschedulable)} of {len(workers)} worker pods cannot be scheduled: each needs "
            f"{spec.workers.gpus_per_worker} {GPU_RESOURCE} on a {_placement(spec)}, {need} GPUs short in all. "
            f"Scheduler: {scheduler} Lower spec.workers.gpusPerWorker or minWorkers, choose another gpuType "
            "or spot setting, or add GPU nodes."
        )
        ready = ConditionUpdate("Ready", FALSE, "InsufficientGPUs", msg)
        degraded = ConditionUpdate("Degraded", TRUE, "InsufficientGPUs", msg)
    elif not head_ready:
        phase = heads[0].phase if heads else "not created yet"
        ready = ConditionUpdate("Ready", FALSE, "HeadNotReady", f"The head pod is not ready ({phase}).")
    elif len(ready_workers) < obs.desired_workers:
        ready = ConditionUpdate(
            "Ready", FALSE, "WorkersNotReady", f"{len(ready_workers)}/{obs.desired_workers} workers are ready."
        )
    else:
        ready = ConditionUpdate(
            "Ready", TRUE, "ClusterReady",
            f"Head and {len(ready_workers)}/{obs.desired_workers} workers ready with {allocated} GPUs.",
        )  # fmt: skip
    if obs.queue_problem is not None and degraded.status == FALSE:
        degraded = ConditionUpdate("Degraded", TRUE, obs.queue_problem.reason, obs.queue_problem.message)
    if failing and degraded.status == FALSE:
        names = ", ".join(sorted(p.name for p in failing)[:5])
        degraded = ConditionUpdate("Degraded", TRUE, "WorkersFailing", f"Worker pods failing: {names}.")

    if obs.refused is not None:
        phase_text = "Degraded"
    elif spec.suspend:
        phase_text = "Suspended"
    elif ready.status == TRUE:
        phase_text = "Ready"
    elif degraded.status == TRUE:
        phase_text = "Degraded"
    else:
        phase_text = "Pending"

    conditions = compute_conditions(existing.get("conditions"), [ready, degraded, suspended], generation, now)
    backend_key = "rayClusterName" if spec.backend == Backend.RAY else "daskClusterName"
    return {
        "observedGeneration": generation,
        "phase": phase_text,
        backend_key: obs.backend_name,
        "workers": {
            "desired": obs.desired_workers,
            "ready": len(ready_workers),
            "busy": int((existing.get("workers") or {}).get("busy", 0)),
        },
        "gpus": {"allocated": allocated, "healthy": healthy},
        "conditions": conditions,
    }


def status_changed(existing: dict[str, Any], desired: dict[str, Any]) -> bool:
    """True when merge-patching ``desired`` would change the status held now. (A null in ``desired`` removes the
    field, so an absent field equals a null one: compared as plain values, ``{"perItem": null}`` never matched
    the stored status, and every look at a job wrote it again.)"""
    return patch_changes(existing, desired)


def only_figures_changed(existing: dict[str, Any], desired: dict[str, Any]) -> bool:
    """True when ``desired`` differs from status only in figures that move with every item (queue depth and
    age, busy workers): worth writing every few seconds, not on every look."""

    def without_figures(status: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in status.items() if k != "queue"}
        if isinstance(out.get("workers"), dict):
            out["workers"] = {k: v for k, v in out["workers"].items() if k != "busy"}
        return out

    return status_changed(existing, desired) and not status_changed(without_figures(existing), without_figures(desired))


def reconcile_fingerprint(body: Any) -> tuple[Any, ...]:
    """What of a TranslationCluster, besides its status, a reconcile of it depends on. Its status is written by
    Portalis (the cluster and health controllers), so an event that changes only status (each of their patches
    comes back as one) does not call for another look; a periodic look still catches a status edited by hand."""
    meta = body.get("metadata") or {}
    return (
        meta.get("uid"), meta.get("generation"), meta.get("deletionTimestamp") is not None,
        tuple(meta.get("finalizers") or ()), tuple(sorted((meta.get("labels") or {}).items())),
        tuple(sorted((meta.get("annotations") or {}).items())),
    )  # fmt: skip
