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
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import kopf
from botocore.exceptions import BotoCoreError
from pydantic import ValidationError

from portalis import GROUP, VERSION, metrics
from portalis.api.v1alpha1.cluster import Backend, TranslationClusterSpec
from portalis.clients.connections import ClusterConnections, ConnectionError_, Connections
from portalis.clients.kube import Kube, Ref, rejection
from portalis.clients.queue import QueueDepth, RedisQueue, look_many
from portalis.controllers import health
from portalis.controllers.caches import JOBS, SPECS, ObjectCache, slim
from portalis.controllers.metering import Meter, budget_conditions, meter
from portalis.controllers.redis_gate import RedisGate, Unreachable
from portalis.controllers.runtime import Controller, Key, Result, changed, first
from portalis.desired.apply import desired_hash, drifted_paths, is_subset
from portalis.desired.budget import BudgetState, budget_status
from portalis.desired.cluster_status import (
    ClusterObservation,
    PodView,
    QueueProblem,
    compute_cluster_status,
    only_figures_changed,
    reconcile_fingerprint,
    status_changed,
    view_pod,
)
from portalis.desired.conditions import FALSE, ConditionUpdate, compute_conditions, format_time
from portalis.desired.daskcluster import build_daskcluster, daskcluster_name
from portalis.desired.pods import CLUSTER_LABEL, Owner
from portalis.desired.raycluster import build_raycluster, clamp_replicas, raycluster_name
from portalis.desired.scaling import (
    Decision,
    History,
    ScalingPolicy,
    Worker,
    backlog_needs_a_look,
    decide,
    figures_seconds,
)

log = logging.getLogger("portalis.cluster")

GENERATION_ANNOTATION = f"{GROUP}/cluster-generation"
DESIRED_HASH_ANNOTATION = f"{GROUP}/desired-hash"
QUEUE_POLL_SECONDS = 0.5
LOOK_BATCH = 100  # queues read in one Redis round trip by the queue watch
METER_SECONDS = 5.0
QUEUE_RETRY_SECONDS = 10.0  # a cluster whose queue failed is looked at again this often
REFUSED_RETRY_SECONDS = 60.0  # a backend object the apiserver refused is tried again this often, or on a change
MESSAGE_LIMIT = 1024
TC_API_VERSION = f"{GROUP}/{VERSION}"
Indexed = dict[Key, dict[str, Any]]


# ---- watch caches ---------------------------------------------------------------------------------------


@kopf.index(GROUP, VERSION, "translationclusters")
def tc_by_key(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Indexed:
    return {(namespace or "", name): slim(body)}


@kopf.index("ray.io", "v1", "rayclusters", labels={CLUSTER_LABEL: kopf.PRESENT})
def raycluster_by_owner(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Indexed:
    return {(namespace or "", labels[CLUSTER_LABEL]): slim(body)}


@kopf.index("kubernetes.dask.org", "v1", "daskclusters", labels={CLUSTER_LABEL: kopf.PRESENT})
def daskcluster_by_owner(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Indexed:
    return {(namespace or "", labels[CLUSTER_LABEL]): slim(body)}


@kopf.index("v1", "nodes")
def node_labels(name: str, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, str]]:
    return {name: dict(labels)}


@kopf.index("v1", "pods", labels={CLUSTER_LABEL: kopf.PRESENT})
def pods_by_owner(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Indexed:
    return {(namespace or "", labels[CLUSTER_LABEL]): slim(body)}


# ---- events only enqueue ------------------------------------------------------------------------------


@dataclass
class ClusterContext:
    controller: Controller
    clusters: kopf.Index[Key, dict[str, Any]]
    rayclusters: kopf.Index[Key, dict[str, Any]]
    daskclusters: kopf.Index[Key, dict[str, Any]]
    pods: kopf.Index[Key, dict[str, Any]]
    kube: Kube
    connections: Connections
    histories: dict[Key, History] = field(default_factory=dict)
    backlogs: dict[Key, int] = field(default_factory=dict)  # as the last reconcile saw it
    scaled_at: dict[Key, float] = field(default_factory=dict)  # when the last reconcile read the queue
    queue_errors: dict[Key, QueueError] = field(default_factory=dict)  # the last failure, until a read succeeds
    replicas: dict[Key, int] = field(default_factory=dict)
    status_written: dict[Key, float] = field(default_factory=dict)  # when status was last patched (monotonic)
    seen: dict[Key, tuple[Any, ...]] = field(default_factory=dict)  # what of each cluster its last event showed
    watched: dict[Key, int] = field(default_factory=dict)  # the backlog the queue watch saw last
    progress: dict[Key, str] = field(default_factory=dict)  # cluster -> cursor in its queue's progress stream
    nodes: kopf.Index[str, dict[str, str]] | None = None
    jobs: ObjectCache = JOBS
    meter: Meter = field(default_factory=Meter)
    budgets: dict[Key, tuple[float, BudgetState]] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    redis: RedisGate = field(default_factory=RedisGate.shared)


@dataclass(frozen=True)
class QueueError:
    """Why a cluster's queue could not be used, and when (``time.monotonic()``)."""

    reason: str
    message: str
    at: float


CONTEXT: ClusterContext | None = None
# called with a cluster's key and the uids of its jobs that had items finished or begun since the last look (the
# job controller reports exactly those jobs)
PROGRESS_LISTENERS: list[Callable[[Key, set[str]], None]] = []
# called with a cluster's key when the queue watch finds its queue empty after it held items (the job controller
# then looks at every job of the cluster: one waiting its turn is not otherwise looked at for minutes)
EMPTIED_LISTENERS: list[Callable[[Key], None]] = []


def enqueue(key: Key) -> None:
    if CONTEXT is not None:
        CONTEXT.controller.enqueue(key)


@kopf.on.event(GROUP, VERSION, "translationclusters")
def tc_event(namespace: str | None, name: str, body: kopf.Body, type: str | None, **_: Any) -> None:
    """A cluster's arrival, spec, metadata or deletion needs a look; a change of its status alone does not."""
    key = (namespace or "", name)
    if CONTEXT is not None and changed(CONTEXT.seen, key, None if type == "DELETED" else reconcile_fingerprint(body)):
        CONTEXT.controller.enqueue(key)


@kopf.on.event("ray.io", "v1", "rayclusters", labels={CLUSTER_LABEL: kopf.PRESENT})
def raycluster_event(namespace: str | None, labels: kopf.Labels, **_: Any) -> None:
    enqueue((namespace or "", labels[CLUSTER_LABEL]))


@kopf.on.event("kubernetes.dask.org", "v1", "daskclusters", labels={CLUSTER_LABEL: kopf.PRESENT})
def daskcluster_event(namespace: str | None, labels: kopf.Labels, **_: Any) -> None:
    enqueue((namespace or "", labels[CLUSTER_LABEL]))


@kopf.on.event("v1", "pods", labels={CLUSTER_LABEL: kopf.PRESENT})
def pod_event(namespace: str | None, labels: kopf.Labels, **_: Any) -> None:
    health.fleet_changed()
    enqueue((namespace or "", labels[CLUSTER_LABEL]))


@kopf.on.startup()
async def tc_controller_start(**kwargs: Any) -> None:
    """Start the reconcile loop; kopf hands every handler its indexes by name."""
    global CONTEXT
    kube = Kube.shared()
    controller = Controller("translationcluster", reconcile, workers=32, observe=metrics.observe_reconcile)
    CONTEXT = ClusterContext(
        controller,
        kwargs["tc_by_key"],
        kwargs["raycluster_by_owner"],
        kwargs["daskcluster_by_owner"],
        kwargs["pods_by_owner"],
        kube,
        Connections.shared(kube),
    )
    CONTEXT.nodes = kwargs["node_labels"]
    controller.start()
    CONTEXT.tasks.append(asyncio.create_task(watch_queues(CONTEXT), name="queue-watch"))


@kopf.on.cleanup()
async def tc_controller_stop(**_: Any) -> None:
    if CONTEXT is not None:
        for task in CONTEXT.tasks:
            task.cancel()
        await CONTEXT.controller.stop()


# ---- reconcile -----------------------------------------------------------------------------------------


async def reconcile(key: Key) -> Result:
    ctx = CONTEXT
    assert ctx is not None
    tc = first(ctx.clusters, key)
    if tc is None or tc.get("metadata", {}).get("deletionTimestamp"):
        ctx.controller.forget(key)
        metrics.forget_cluster(*key)
        for memory in (
            ctx.replicas,
            ctx.histories,
            ctx.backlogs,
            ctx.scaled_at,
            ctx.queue_errors,
            ctx.budgets,
            ctx.status_written,
            ctx.progress,
        ):
            memory.pop(key, None)
        return Result.forget()
    meta = tc["metadata"]
    ref = Ref(TC_API_VERSION, "TranslationCluster", key[0], key[1], meta.get("uid", ""))
    generation = int(meta.get("generation") or 0)
    status: dict[str, Any] = dict(tc.get("status") or {})
    now = datetime.now(UTC)
    try:
        spec = SPECS.parse(TranslationClusterSpec, tc)
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
    # what this process applied last is fresher than the status in the watch cache
    current = clamp_replicas(spec, ctx.replicas.get(key, (status.get("workers") or {}).get("desired")))
    pod_bodies = list(ctx.pods.get(key) or [])
    pods = [view_pod(p) for p in pod_bodies]
    backend_index = ctx.rayclusters if spec.backend == Backend.RAY else ctx.daskclusters
    first_apply = first(backend_index, key) is None and not ctx.replicas.get(key)
    budget: BudgetState | None = None
    if first_apply:
        # create the backend at once with minWorkers; the queue and the budget are read on the next pass
        scale = ScaleObservation(None)
    else:
        budget = await _budget(ctx, key, spec, pod_bodies)
        if budget is not None and budget.suspends:
            # onExceeded: Suspend: no workers at all, whatever minWorkers says, until the budget allows again
            spec = spec.model_copy(update={"workers": spec.workers.model_copy(update={"min_workers": 0})})
        scale = await _scale(ctx, key, spec, current, pods, budget)
    replicas = scale.decision.replicas if scale.decision is not None else current
    if spec.backend == Backend.RAY:
        backend_name = raycluster_name(key[1])
        observed = first(ctx.rayclusters, key)
        # idle workers the scaler chose, and workers on GPU nodes being drained (KubeRay must not restart them there)
        remove = set(scale.decision.workers_to_delete if scale.decision else ()) | health.pods_to_remove(key)
        desired = build_raycluster(spec, owner, replicas, sorted(remove))
    else:
        backend_name = daskcluster_name(key[1])
        observed = first(ctx.daskclusters, key)
        desired = build_daskcluster(spec, owner, replicas)
    desired["metadata"]["annotations"] = {
        GENERATION_ANNOTATION: str(generation),
        DESIRED_HASH_ANNOTATION: desired_hash(desired),
    }

    refused: str | None = None
    if observed is None or not is_subset(desired, observed):
        existed = bool(status.get("rayClusterName") or status.get("daskClusterName"))
        refused = await _apply(ctx, ref, desired, observed, generation, existed)
        if refused is None:
            observed = desired

    ctx.replicas[key] = replicas
    if scale.decision is not None and scale.decision.changed(current):
        await _record_scale(ctx, ref, key, current, scale.decision)
        status["lastScaleTime"] = format_time(now)  # carried into the new status below
    obs = ClusterObservation(
        backend_name=backend_name,
        backend_exists=observed is not None,
        backend_suspended=spec.suspend,
        desired_workers=replicas,
        pods=pods,
        quarantined_nodes=health.quarantined_nodes(),
        refused=refused,
        queue_problem=queue_problem(ctx, key),
    )
    new_status = compute_cluster_status(spec, generation, status, obs, now)
    if budget is not None and (spec.budget is not None or spec.pricing is not None):
        new_status["budget"] = budget_status(budget)
        new_status["conditions"] = compute_conditions(
            new_status["conditions"], budget_conditions(budget, spec), generation, now
        )
    new_status["workers"]["busy"] = scale.busy
    if scale.queue is not None:
        new_status["queue"] = scale.queue
    if status.get("lastScaleTime"):
        new_status["lastScaleTime"] = status["lastScaleTime"]
    metrics.WORKERS_DESIRED.labels(*key).set(replicas)
    metrics.WORKERS_READY.labels(*key).set(new_status["workers"]["ready"])
    metrics.GPUS_ALLOCATED.labels(*key).set(new_status["gpus"]["allocated"])
    deferred = None
    if status_changed(status, new_status):
        since = time.monotonic() - ctx.status_written.get(key, float("-inf"))
        every = figures_seconds(len(ctx.backlogs))
        if only_figures_changed(status, new_status) and since < every:
            deferred = every - since  # queue figures alone: see desired.scaling.figures_seconds
        else:
            await asyncio.to_thread(ctx.kube.patch_status, ref, new_status)
            ctx.status_written[key] = time.monotonic()
            await _record_transitions(ctx, ref, status, new_status)
    if refused is not None:
        return Result(requeue_after=REFUSED_RETRY_SECONDS)  # a change to the spec is looked at at once
    if first_apply:
        return Result(requeue_after=0.0)
    after = [deferred] if deferred is not None else []
    if key in ctx.queue_errors:
        after.append(QUEUE_RETRY_SECONDS)  # level-triggered: look again, the queue may be back
    if scale.decision is not None and not scale.decision.settled:
        after.append(1.0)  # look again when the stabilization window may have passed
    if budget is not None and new_status["gpus"]["allocated"]:
        after.append(METER_SECONDS)  # spend grows while GPUs are held
    return Result(requeue_after=min(after)) if after else Result()


async def _apply(
    ctx: ClusterContext,
    ref: Ref,
    desired: dict[str, Any],
    observed: dict[str, Any] | None,
    generation: int,
    existed: bool,
) -> str | None:
    """Apply the backend object and record what changed; returns why the apiserver refused it, if it did."""
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
        await asyncio.to_thread(ctx.kube.apply, desired)
    except Exception as exc:
        refused = rejection(exc)
        if refused is None:
            raise  # the apiserver could not be reached or had trouble: retried with back-off
        # the spec makes an object the apiserver refuses; the status says so and the next spec change retries
        metrics.APPLIES.labels(kind, "Refused").inc()
        return f"The apiserver refused the {kind} {name} made from this spec: {refused[:MESSAGE_LIMIT]}"
    metrics.APPLIES.labels(kind, reason).inc()
    log.info("%s/%s: %s", ref.namespace, ref.name, message)
    await asyncio.to_thread(ctx.kube.event, ref, event_type, reason, message)
    return None


async def _record_transitions(ctx: ClusterContext, ref: Ref, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Log every condition change; raise an Event when the cluster turns Ready or Degraded, or is Degraded (or over
    a budget) for another reason: a new problem gets its own Event even while the condition stays True."""
    before = {c.get("type"): (c.get("status"), c.get("reason")) for c in old.get("conditions") or []}
    for c in new.get("conditions") or []:
        if before.get(c["type"]) == (c["status"], c["reason"]):
            continue
        log.info("%s/%s: %s=%s (%s) %s", ref.namespace, ref.name, c["type"], c["status"], c["reason"],
                 c["message"])  # fmt: skip
        if c["type"] in {"Degraded", "BudgetWarning", "BudgetExceeded"} and c["status"] == "True":
            await asyncio.to_thread(ctx.kube.event, ref, "Warning", c["reason"], c["message"])
        elif c["type"] == "Ready" and c["status"] == "True":
            await asyncio.to_thread(ctx.kube.event, ref, "Normal", c["reason"], c["message"])


# ---- scaling -------------------------------------------------------------------------------------------


@dataclass
class ScaleObservation:
    decision: Decision | None  # None: the queue could not be read; the worker count stays
    busy: int = 0
    queue: dict[str, Any] | None = None
    backlog: int | None = None


def _policy(spec: TranslationClusterSpec) -> ScalingPolicy:
    a = spec.autoscaling
    return ScalingPolicy(
        min_workers=spec.workers.min_workers,
        max_workers=spec.workers.max_workers,
        target_items_per_worker=a.target_items_per_worker,
        scale_up_stabilization_seconds=float(a.scale_up_stabilization_seconds),
        scale_down_stabilization_seconds=float(a.scale_down_stabilization_seconds),
        max_step_up=a.max_step_up,
        max_step_down=a.max_step_down,
        enabled=a.enabled and not spec.suspend,
    )


def busy_pods(heartbeats: dict[str, dict[str, Any]], pod_names: set[str]) -> set[str]:
    """Pods with a translator holding an item; heartbeat names are the pod name or ``<pod>/<translator>``."""
    busy = set()
    for name, beat in heartbeats.items():
        if beat.get("state") != "busy":
            continue
        pod = name.split("/", 1)[0]
        if pod in pod_names:
            busy.add(pod)
    return busy


async def _scale(
    ctx: ClusterContext,
    key: Key,
    spec: TranslationClusterSpec,
    current: int,
    pods: list[PodView],
    budget: BudgetState | None,
) -> ScaleObservation:
    workers = [p for p in pods if p.role == "worker" and not p.deleting]
    names = {p.name for p in workers}
    if not queue_worth_trying(ctx, key):
        return ScaleObservation(None)
    try:
        conns = await ctx.connections.for_cluster_async(key[0], key[1], spec)
        depth, heartbeats = await ctx.redis.call(conns.queue.r, partial(_read_queue, conns), wake=_waker(ctx, key))
    except Exception as exc:  # the queue is down or its Secret is missing: keep the worker count
        remember_queue_error(ctx, key, exc, "not scaling")
        return ScaleObservation(None)
    ctx.queue_errors.pop(key, None)
    backlog = sum(d.waiting + d.in_flight for d in depth)
    ctx.backlogs[key] = backlog
    ctx.scaled_at[key] = time.monotonic()
    busy = busy_pods(heartbeats, names)
    views = [Worker(p.name, busy=p.name in busy, ready=p.ready) for p in workers]
    history = ctx.histories.setdefault(key, History())
    allows = budget is None or not budget.blocks_scale_up
    decision = decide(_policy(spec), current, backlog, views, history, time.monotonic(), allows)
    if spec.suspend:
        decision = Decision(current, (), "Suspended")
    elif budget is not None and budget.suspends and current > 0:
        everyone = tuple(sorted(p.name for p in workers))
        decision = Decision(
            0, everyone, "BudgetExceeded", f"the budget is spent: scaled to zero from {current} workers"
        )
    queue_status = {
        "depth": sum(d.waiting for d in depth),
        "inFlight": sum(d.in_flight for d in depth),
        "oldestItemAgeSeconds": int(max((d.oldest_age_seconds for d in depth), default=0)),
    }
    for d in depth:
        metrics.QUEUE_DEPTH.labels(key[0], key[1], d.priority).set(d.waiting)
        metrics.QUEUE_OLDEST_AGE.labels(key[0], key[1], d.priority).set(d.oldest_age_seconds)
    return ScaleObservation(decision, busy=len(busy), queue=queue_status, backlog=backlog)


def queue_worth_trying(ctx: ClusterContext, key: Key) -> bool:
    """An unreachable queue is retried every QUEUE_RETRY_SECONDS, not on every reconcile: connect timeouts would
    tie up the workers that other clusters need."""
    failed = ctx.queue_errors.get(key)
    return failed is None or time.monotonic() - failed.at >= QUEUE_RETRY_SECONDS


def remember_queue_error(ctx: ClusterContext, key: Key, exc: BaseException, consequence: str) -> None:
    """Keep why the cluster's queue could not be used, for its status; log it when it is new.

    A server that has not answered a probe yet (``Unreachable`` without a message) says nothing new: whatever was
    known before stays, and the cluster is looked at again when the probe ends.
    """
    if isinstance(exc, Unreachable):
        if exc.message is None:
            return
        reason, message = "QueueUnavailable", exc.message
    elif isinstance(exc, ConnectionError_):  # a Secret or a key in it is missing
        reason, message = exc.reason, exc.message
    elif isinstance(exc, ValueError | BotoCoreError):  # settings redis-py or boto3 refuse
        reason, message = "StorageOrQueueInvalid", f"The cluster's queue or store settings are unusable: {exc}"
    else:
        reason, message = "QueueUnavailable", f"The cluster's Redis cannot be used: {exc}"
    previous = ctx.queue_errors.get(key)
    if previous is None or previous.message != message:
        log.warning("%s/%s: queue unavailable, %s: %s", key[0], key[1], consequence, message)
    ctx.queue_errors[key] = QueueError(reason, message[:MESSAGE_LIMIT], time.monotonic())


def queue_problem(ctx: ClusterContext, key: Key) -> QueueProblem | None:
    failed = ctx.queue_errors.get(key)
    return None if failed is None else QueueProblem(failed.reason, failed.message)


def _waker(ctx: ClusterContext, key: Key) -> Callable[[], None]:
    return lambda: ctx.controller.enqueue(key)


def _read_queue(conns: ClusterConnections) -> tuple[list[QueueDepth], dict[str, dict[str, Any]]]:
    return conns.queue.depth(), conns.queue.workers()


async def _record_scale(ctx: ClusterContext, ref: Ref, key: Key, current: int, decision: Decision) -> None:
    direction = "up" if decision.replicas > current else "down"
    metrics.SCALE_EVENTS.labels(key[0], key[1], direction, decision.reason).inc()
    reason = "ScaledUp" if direction == "up" else "ScaledDown"
    log.info("%s/%s: %s: %s", key[0], key[1], reason, decision.message)
    await asyncio.to_thread(ctx.kube.event, ref, "Normal", reason, f"{decision.reason}: {decision.message}")


async def watch_queues(ctx: ClusterContext, interval: float = QUEUE_POLL_SECONDS) -> None:
    """Look at every cluster's queue every ``interval`` seconds: a backlog change that matters to the scaler
    enqueues the cluster at once (others at most every ``figures_seconds``, for the figures in status), and the jobs
    whose items finished since the last look are handed to the progress listeners.

    The clusters are read side by side, through the gate, so one Redis that stops answering delays nobody else.
    """
    while True:
        await asyncio.sleep(interval)
        keys = list(ctx.backlogs)
        looks = await _look_at_queues(ctx, keys)
        now = time.monotonic()
        every = figures_seconds(len(keys))
        for key, look in zip(keys, looks, strict=True):
            if look is None or key not in ctx.backlogs:
                continue
            backlog, touched, policy = look
            if backlog == 0 and ctx.watched.get(key, 0) > 0:
                for emptied in EMPTIED_LISTENERS:
                    emptied(key)
            ctx.watched[key] = backlog
            since = now - ctx.scaled_at.get(key, float("-inf"))
            if backlog_needs_a_look(policy, ctx.backlogs.get(key), backlog, since, every):
                ctx.backlogs[key] = backlog
                ctx.controller.enqueue(key)
            if touched:
                for listener in PROGRESS_LISTENERS:
                    listener(key, touched)


async def _look_at_queues(ctx: ClusterContext, keys: list[Key]) -> list[tuple[int, set[str], ScalingPolicy] | None]:
    """For each cluster: its backlog, the jobs with items finished since the last look (taken from the queue),
    and its scaling policy; None when its queue could not be read. ("Finished" includes begun: a worker beginning
    a job's item signals it on the same stream.) Clusters that share a Redis are read in one
    round trip (up to LOOK_BATCH of them)."""
    found: dict[Key, tuple[RedisQueue, ScalingPolicy]] = {}
    by_client: dict[int, list[Key]] = {}
    for key in keys:
        tc = first(ctx.clusters, key)
        if tc is None:
            ctx.backlogs.pop(key, None)
            ctx.watched.pop(key, None)
            continue
        try:
            spec = SPECS.parse(TranslationClusterSpec, tc)
            conns = await ctx.connections.for_cluster_async(key[0], key[1], spec)
        except Exception:  # the next reconcile reports it
            continue
        found[key] = (conns.queue, _policy(spec))
        by_client.setdefault(id(conns.queue.r), []).append(key)
    batches = [group[i : i + LOOK_BATCH] for group in by_client.values() for i in range(0, len(group), LOOK_BATCH)]
    looked: dict[Key, tuple[int, set[str], ScalingPolicy]] = {}

    async def look(batch: list[Key]) -> None:
        queues = [(found[key][0], ctx.progress.get(key)) for key in batch]
        try:
            results = await ctx.redis.call(queues[0][0].r, partial(look_many, queues))
        except Exception:  # the next reconcile reports it
            return
        for key, (backlog, touched, cursor) in zip(batch, results, strict=True):
            ctx.progress[key] = cursor
            looked[key] = (backlog, touched, found[key][1])

    await asyncio.gather(*(look(batch) for batch in batches))
    return [looked.get(key) for key in keys]


async def _budget(
    ctx: ClusterContext, key: Key, spec: TranslationClusterSpec, pods: list[dict[str, Any]]
) -> BudgetState | None:
    """Meter the cluster's GPU time and evaluate its budget, at most every METER_SECONDS unless pods changed."""
    if spec.budget is None and spec.pricing is None and not os.environ.get("PORTALIS_DEFAULT_ON_DEMAND_GPU_HOUR"):
        return None
    cached = ctx.budgets.get(key)
    if cached is not None and time.monotonic() - cached[0] < 1.0:
        return cached[1]
    if not queue_worth_trying(ctx, key):
        return cached[1] if cached is not None else None
    jobs: list[tuple[str, str]] = []
    for job_key in ctx.jobs.group(key):
        body = ctx.jobs.get(job_key)
        if body is not None:
            tenant = (body.get("spec") or {}).get("tenant") or job_key[0]
            jobs.append((str(body["metadata"].get("uid", "")), str(tenant)))
    workers = [p for p in pods if (p.get("metadata", {}).get("labels") or {}).get("portalis.dev/role") == "worker"]
    on = {p.get("spec", {}).get("nodeName") for p in workers} - {None, ""}
    nodes = {name: next(iter((ctx.nodes or {}).get(name) or ()), {}) for name in on}  # the workers' nodes only
    try:
        conns = await ctx.connections.for_cluster_async(key[0], key[1], spec)
        run = partial(meter, key, spec, conns, workers, nodes, jobs, ctx.meter)
        state = await ctx.redis.call(conns.queue.r, run, wake=_waker(ctx, key))
    except Exception as exc:
        remember_queue_error(ctx, key, exc, "not metering")
        return cached[1] if cached is not None else None
    ctx.budgets[key] = (time.monotonic(), state)
    return state
