"""TranslationCluster status as a pure function of what the operator observed.

Inputs are what the cluster controller observed (the backend object, the cluster's pods as ``PodView``s, the
queue's figures, the budget as metered, whether this look scaled); the output is the whole ``status`` it writes
(the health fields excepted: the health controller writes those). Recomputing from the same observations gives
the same status, so the controller patches only when something really changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from portalis.api.meta import format_time
from portalis.api.v1alpha1.cluster import Backend, TranslationClusterSpec
from portalis.desired.budget import BudgetState, budget_conditions, budget_status
from portalis.desired.conditions import FALSE, TRUE, ConditionUpdate, compute_conditions
from portalis.desired.merge import patch_changes
from portalis.desired.pods import GPU_RESOURCE, gpu_products
from portalis.desired.podview import PodView


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
    busy_workers: int | None = None  # workers holding an item; None: keep what status says
    queue: QueueFigures | None = None  # None: the queue was not read this time; the figures in status stand
    budget: BudgetState | None = None  # as metered, when the cluster is
    scaled: bool = False  # this look changed the worker count (lastScaleTime is now)


@dataclass(frozen=True)
class QueueFigures:
    """Items waiting and in flight over all priorities, and the age of the oldest waiting one."""

    depth: int
    in_flight: int
    oldest_item_age_seconds: int

    def to_status(self) -> dict[str, int]:
        return {"depth": self.depth, "inFlight": self.in_flight, "oldestItemAgeSeconds": self.oldest_item_age_seconds}


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
        message = f"Head and {len(ready_workers)}/{obs.desired_workers} workers ready with {allocated} GPUs."
        ready = ConditionUpdate("Ready", TRUE, "ClusterReady", message)
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
    busy = obs.busy_workers if obs.busy_workers is not None else int((existing.get("workers") or {}).get("busy", 0))
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": phase_text,
        backend_key: obs.backend_name,
        "workers": {"desired": obs.desired_workers, "ready": len(ready_workers), "busy": busy},
        "gpus": {"allocated": allocated, "healthy": healthy},
        "conditions": conditions,
    }
    if obs.budget is not None and (spec.budget is not None or spec.pricing is not None):
        status["budget"] = budget_status(obs.budget)
        status["conditions"] = compute_conditions(conditions, budget_conditions(obs.budget, spec), generation, now)
    if obs.queue is not None:
        status["queue"] = obs.queue.to_status()
    last_scale = format_time(now) if obs.scaled else existing.get("lastScaleTime")
    if last_scale:
        status["lastScaleTime"] = last_scale
    return status


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
        meta.get("uid"),
        meta.get("generation"),
        meta.get("deletionTimestamp") is not None,
        tuple(meta.get("finalizers") or ()),
        tuple(sorted((meta.get("labels") or {}).items())),
        tuple(sorted((meta.get("annotations") or {}).items())),
    )
