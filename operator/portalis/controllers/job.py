"""TranslationJob controller: plan a job from S3, feed its items to the cluster's queue, and report progress.

Level-triggered like the cluster controller: events about a job (or about the cluster it names) enqueue the
job's key; a reconcile observes the job, its cluster, its plan in S3 and its counters in Redis, acts (plan,
enqueue, hold, resume, rebuild a lost queue, write the report), and patches status only when it changed.
Every action is idempotent: the plan is written under a key derived from the job's uid, enqueueing resumes
from a counter kept in Redis, and counters are exactly-once, so a crash at any point repeats no work.
A finalizer lets the job's queued items be removed when the job is deleted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import kopf
import redis
from botocore.exceptions import BotoCoreError
from pydantic import ValidationError

from portalis import GROUP, VERSION, metrics
from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.api.v1alpha1.job import TranslationJobSpec
from portalis.clients.connections import ClusterConnections, ConnectionError_, Connections
from portalis.clients.kube import Kube, Ref
from portalis.clients.queue import WorkItem
from portalis.clients.store import StoreError
from portalis.controllers import cluster as cluster_controller
from portalis.controllers.caches import JOBS, SPECS, ObjectCache, Recent, cluster_of_job, slim
from portalis.controllers.redis_gate import RedisGate
from portalis.controllers.runtime import Controller, Key, Result, changed, first
from portalis.desired.cluster_status import status_changed
from portalis.desired.conditions import TRUE, ConditionUpdate, compute_conditions, parse_time
from portalis.desired.job_status import (
    JobObservation,
    Problem,
    RateTracker,
    budget_exceeded,
    cluster_fingerprint,
    compute_job_status,
    cost_of,
    job_fingerprint,
    orphaned_jobs,
    report,
    resync_seconds,
    tenants_over_budget,
)
from portalis.desired.plan import PlanItem, build_plan, plan_from_json, plan_to_json
from portalis.worker.engines.base import output_extension

log = logging.getLogger("portalis.job")

# Jobs carried this finalizer before queue clean-up moved to the deletion event and the sweep; it is still
# removed from jobs that have it, so that they can be deleted.
FINALIZER = f"{GROUP}/queue-cleanup"
SWEEP_SECONDS = float(os.environ.get("PORTALIS_JOB_SWEEP_SECONDS", "60"))
TJ_API_VERSION = f"{GROUP}/{VERSION}"
STALL_SECONDS = 60.0
# Plans kept in memory, counted in items (a plan of one file costs as little as a job's other memory; one of
# 100,000 files costs tens of MB): a job reconciled again within it is not read back from S3.
PLAN_CACHE_ITEMS = 50_000


# ---- watch caches and events ------------------------------------------------------------------------------


@dataclass
class JobContext:
    controller: Controller
    jobs: ObjectCache
    clusters: kopf.Index[Key, dict[str, Any]]
    kube: Kube
    connections: Connections
    plans: OrderedDict[str, list[PlanItem]] = field(default_factory=OrderedDict)
    plan_items: int = 0  # items in all plans held
    rates: dict[str, RateTracker] = field(default_factory=dict)
    progress_at: dict[str, tuple[float, int]] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)
    counted: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    seen: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    deleted: dict[Key, tuple[str, Key]] = field(default_factory=dict)  # job -> (uid, cluster), until cleaned up
    suspects: dict[Key, set[str]] = field(default_factory=dict)  # cluster -> uids without a job at the last sweep
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    waiting: Recent[int] = field(default_factory=Recent)  # cluster -> items waiting in its queue
    busy: Recent[dict[str, int]] = field(default_factory=Recent)  # cluster -> job -> workers busy with it
    cluster_seen: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    redis: RedisGate = field(default_factory=RedisGate.shared)


CONTEXT: JobContext | None = None


def enqueue(key: Key) -> None:
    if CONTEXT is not None:
        CONTEXT.controller.enqueue(key)


@kopf.on.event(GROUP, VERSION, "translationjobs")
def tj_event(namespace: str | None, name: str, body: kopf.Body, type: str | None, **_: Any) -> None:
    """A job's spec, deletion or arrival needs a look; its status is this controller's own writing, so a
    change of status alone (every status patch comes back as an event) does not."""
    key = (namespace or "", name)
    if type == "DELETED":
        JOBS.delete(key)
    else:
        JOBS.put(key, slim(body))
    if CONTEXT is None:
        return
    if type == "DELETED":  # the reconcile that finds it gone removes its items from the queue
        uid = str((body.get("metadata") or {}).get("uid") or "")
        CONTEXT.deleted[key] = (uid, cluster_of_job(key, body))
    if changed(CONTEXT.seen, key, None if type == "DELETED" else job_fingerprint(body, FINALIZER)):
        CONTEXT.controller.enqueue(key)


def enqueue_jobs_of(cluster_key: Key) -> None:
    if CONTEXT is None:
        return
    for job_key in CONTEXT.jobs.group(cluster_key):
        CONTEXT.controller.enqueue(job_key)


def enqueue_running_jobs_of(cluster_key: Key) -> None:
    """The cluster's queue emptied: its running jobs are looked at (one waiting its turn is otherwise looked at
    only every few minutes, and an empty queue is when a stall or a lost queue shows)."""
    if CONTEXT is not None:
        _enqueue_jobs_where(CONTEXT, cluster_key, lambda body: (body.get("status") or {}).get("phase") == "Running")


def enqueue_progressed(cluster_key: Key, uids: set[str]) -> None:
    """Items of these jobs (uids) were begun or finished: report them now rather than at their next resync (from
    the cluster's heartbeats as they are now: a worker's heartbeat says what it began before the signal does)."""
    if CONTEXT is None:
        return
    CONTEXT.busy.forget(cluster_key)
    _enqueue_jobs_where(CONTEXT, cluster_key, lambda body: (body.get("metadata") or {}).get("uid") in uids)


def _enqueue_jobs_where(ctx: JobContext, cluster_key: Key, wanted: Callable[[dict[str, Any]], bool]) -> None:
    """Enqueue the cluster's jobs whose cached body ``wanted`` accepts."""
    for job_key in ctx.jobs.group(cluster_key):
        body = ctx.jobs.get(job_key)
        if body is not None and wanted(body):
            ctx.controller.enqueue(job_key)


@kopf.on.event(GROUP, VERSION, "translationclusters")
def tj_cluster_event(namespace: str | None, name: str, body: kopf.Body, type: str | None, **_: Any) -> None:
    """A cluster appearing, going away or changing in a way its jobs depend on concerns the jobs that name it."""
    if CONTEXT is None:
        return
    key = (namespace or "", name)
    if changed(CONTEXT.cluster_seen, key, None if type == "DELETED" else cluster_fingerprint(body)):
        enqueue_jobs_of(key)


@kopf.on.startup()
async def tj_controller_start(**kwargs: Any) -> None:
    global CONTEXT
    kube = Kube.shared()
    controller = Controller("translationjob", reconcile, workers=32, observe=metrics.observe_reconcile)
    CONTEXT = JobContext(controller, JOBS, kwargs["tc_by_key"], kube, Connections.shared(kube))
    controller.start()
    CONTEXT.tasks.append(asyncio.create_task(sweep_queues(CONTEXT), name="portalis-job-sweep"))
    cluster_controller.PROGRESS_LISTENERS.append(enqueue_progressed)
    cluster_controller.EMPTIED_LISTENERS.append(enqueue_running_jobs_of)


@kopf.on.cleanup()
async def tj_controller_stop(**_: Any) -> None:
    if CONTEXT is not None:
        for task in CONTEXT.tasks:
            task.cancel()
        await CONTEXT.controller.stop()


# ---- reconcile -------------------------------------------------------------------------------------------


def _s3(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def plan_key(namespace: str, name: str, uid: str) -> str:
    return f"portalis/jobs/{namespace}/{name}-{uid[:8]}/plan.json"


def report_key(namespace: str, name: str, uid: str) -> str:
    return f"portalis/jobs/{namespace}/{name}-{uid[:8]}/report.json"


def cluster_key(key: Key, spec: TranslationJobSpec) -> Key:
    """The TranslationCluster a job names: its own namespace unless clusterRef gives another."""
    return (spec.cluster_ref.namespace or key[0], spec.cluster_ref.name)


def output_prefix(spec: TranslationJobSpec, name: str) -> str:
    if spec.output is not None and spec.output.prefix is not None:
        return spec.output.prefix
    return f"translations/{name}/"


def output_bucket(spec: TranslationJobSpec) -> str:
    return spec.output.bucket if spec.output is not None and spec.output.bucket else spec.source.bucket


def price_per_gpu_hour(tc: TranslationClusterSpec) -> Decimal:
    if tc.pricing is None:
        return Decimal(0)
    if tc.workers.spot and tc.pricing.spot_gpu_hour:
        return Decimal(tc.pricing.spot_gpu_hour)
    return Decimal(tc.pricing.on_demand_gpu_hour)


@dataclass
class Job:
    """One reconcile's view of a job."""

    key: Key
    ref: Ref
    uid: str
    generation: int
    status: dict[str, Any]
    meta: dict[str, Any]
    created: datetime | None
    events: list[asyncio.Task[None]] = field(default_factory=list)  # this reconcile's Events, posted in order
    body: dict[str, Any] | None = None  # as the watch cache held it when this look began


async def reconcile(key: Key) -> Result:
    """One look at a job; the Events it records are posted while it goes on, and all have been posted (or
    given up on) when it returns."""
    events: list[asyncio.Task[None]] = []
    try:
        return await _reconcile(key, events)
    finally:
        if events:
            await asyncio.gather(*events, return_exceptions=True)


async def _reconcile(key: Key, events: list[asyncio.Task[None]]) -> Result:
    ctx = CONTEXT
    assert ctx is not None
    body = ctx.jobs.get(key)
    gone = ctx.deleted.pop(key, None)
    if gone is not None and (body is None or (body.get("metadata") or {}).get("uid") != gone[0]):
        # deleted (and perhaps created again under the same name since): its items leave the queue
        await _forget_in_queue(ctx, gone[1], gone[0], f"{key[0]}/{key[1]}: deleted")
        _forget_memory(ctx, gone[0])
    if body is None:
        ctx.controller.forget(key)
        return Result.forget()
    meta = body.get("metadata", {})
    created = parse_time(meta.get("creationTimestamp"))
    job = Job(
        key=key,
        ref=Ref(TJ_API_VERSION, "TranslationJob", key[0], key[1], meta.get("uid", "")),
        uid=str(meta.get("uid", "")),
        generation=int(meta.get("generation") or 0),
        status=dict(body.get("status") or {}),
        meta=meta,
        created=created,
        events=events,
        body=body,
    )
    now = datetime.now(UTC)
    try:
        spec = SPECS.parse(TranslationJobSpec, body)
    except ValidationError as exc:
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        return await _finish_reconcile(
            ctx, job, None, JobObservation(problem=Problem("InvalidSpec", message, True)), now
        )

    if meta.get("deletionTimestamp"):
        await _cleanup(ctx, job, spec)
        return Result.forget()

    if job.status.get("phase") in {"Succeeded", "Failed"} and job.status.get("observedGeneration") == job.generation:
        return Result.forget()  # terminal; a spec change (generation) brings it back for another look

    cluster_ns = spec.cluster_ref.namespace or key[0]
    tc_body = first(ctx.clusters, (cluster_ns, spec.cluster_ref.name))
    if tc_body is None:
        problem = Problem(
            "ClusterNotFound",
            f"TranslationCluster {cluster_ns}/{spec.cluster_ref.name} does not exist; "
            "create it or fix spec.clusterRef.",
            False,
        )
        return await _finish_reconcile(ctx, job, spec, JobObservation(problem=problem, created=created), now)
    try:
        tc = SPECS.parse(TranslationClusterSpec, tc_body)
    except ValidationError:
        problem = Problem(
            "ClusterInvalid", f"TranslationCluster {cluster_ns}/{spec.cluster_ref.name} is invalid.", False
        )
        return await _finish_reconcile(ctx, job, spec, JobObservation(problem=problem, created=created), now)
    if not tc.admits(cluster_ns, key[0]):
        allowed = ", ".join(tc.admit_namespaces or [cluster_ns])
        problem = Problem(
            "NotAdmitted",
            f"TranslationCluster {cluster_ns}/{spec.cluster_ref.name} admits jobs only from namespaces: {allowed}. "
            "Add this namespace to its spec.admitNamespaces.",
            False,
        )
        return await _finish_reconcile(ctx, job, spec, JobObservation(problem=problem, created=created), now)
    try:
        conns = await ctx.connections.for_cluster_async(cluster_ns, spec.cluster_ref.name, tc)
    except ConnectionError_ as exc:
        problem = Problem(exc.reason, exc.message, False)
        return await _finish_reconcile(ctx, job, spec, JobObservation(problem=problem, created=created), now)
    except (ValueError, BotoCoreError, redis.RedisError) as exc:  # settings boto3 or redis-py refuse
        problem = Problem("StorageOrQueueInvalid", f"The cluster's queue or store settings are unusable: {exc}", False)
        return await _finish_reconcile(ctx, job, spec, JobObservation(problem=problem, created=created), now)

    down = ctx.redis.down(conns.queue.r)
    if down is not None:  # a Redis that timed out or refused connections lately: not called again before its time
        problem = Problem("QueueUnavailable", down, False)
        return await _finish_reconcile(ctx, job, spec, JobObservation(problem=problem, created=created), now)

    try:
        obs = await _drive(ctx, job, spec, tc, tc_body, conns, now)
    except redis.RedisError as exc:
        ctx.redis.report(conns.queue.r, exc)
        problem = Problem("QueueUnavailable", f"The cluster's Redis cannot be used: {exc}", False)
        obs = JobObservation(problem=problem, created=created)
    except StoreError as exc:
        obs = JobObservation(problem=Problem("StorageUnavailable", str(exc), False), created=created)
    return await _finish_reconcile(ctx, job, spec, obs, now)


async def _drive(
    ctx: JobContext,
    job: Job,
    spec: TranslationJobSpec,
    tc: TranslationClusterSpec,
    tc_body: dict[str, Any],
    conns: ClusterConnections,
    now: datetime,
) -> JobObservation:
    """Plan, enqueue, hold or resume, rebuild, and report; returns what status is computed from."""
    base = {
        "created": job.created,
        "price_per_gpu_hour": price_per_gpu_hour(tc),
        "output_location": _s3(output_bucket(spec), output_prefix(spec, job.key[1])),
    }
    plan_loc = _s3(conns.bucket, plan_key(*job.key, job.uid))
    queue = conns.queue
    stats = await asyncio.to_thread(queue.job_stats, job.uid)
    # a plan can only have been stored by a reconcile that went on to queue items or report it in status
    stored = stats.epoch_present or bool(job.status.get("planLocation") or job.status.get("startTime"))
    plan_or_problem = await _plan(ctx, job, spec, conns, stored)
    if isinstance(plan_or_problem, Problem):
        return JobObservation(problem=plan_or_problem, **base)  # type: ignore[arg-type]
    plan, planned = plan_or_problem
    too_large = {i.item_id: f"larger than the {_mb(i.size_bytes)} limit" for i in plan if i.too_large}
    for item_id, reason in too_large.items():
        await asyncio.to_thread(queue.record_failure, job.uid, item_id, f"too large: {reason}")
    queueable = [i for i in plan if not i.too_large]
    items = [_work_item(job, spec, i) for i in queueable]
    started = bool(job.status.get("startTime")) or stats.epoch_present
    fresh = False
    acted = bool(too_large)  # whether this look changed the job's counters (else the stats read above stand)
    held = budget_hold(spec, job, tc, tc_body, cost_of(stats.gpu_seconds, price_per_gpu_hour(tc)), started)
    holding = spec.suspend or held is not None
    was_held = job.status.get("phase") == "Suspended" or _condition_true(job.status, "BudgetHeld")
    first_queue = not holding and not stats.epoch_present and not job.status.get("startTime")
    if planned is not None and not first_queue:  # (else one Event says both, below: one API write, not two)
        await _event(ctx, job, "Normal", "Planned", f"{planned}.")
    if holding:
        if not was_held and started:
            removed = await asyncio.to_thread(queue.remove_waiting, job.uid)
            acted = True
            why = "spec.suspend is true" if spec.suspend else held.message  # type: ignore[union-attr]
            await _event(ctx, job, "Normal", "Suspended" if spec.suspend else "BudgetHeld",
                         f"Held {removed} queued items ({why}); items in flight finish.")  # fmt: skip
    elif first_queue:  # never queued before
        await asyncio.to_thread(queue.enqueue, job.uid, items, 0)
        queued = f"queued {len(items)} items at priority {spec.priority}"
        if planned is not None:
            await _event(ctx, job, "Normal", "Planned", f"{planned}; {queued}.")
        else:  # the plan was stored by a reconcile that ended before queueing
            await _event(ctx, job, "Normal", "Queued", f"{queued[0].upper()}{queued[1:]}.")
        fresh = not too_large  # (failures recorded for files too large are not in the stats read before)
    elif stats.epoch_present and stats.enqueued < len(items) and not was_held:
        await asyncio.to_thread(queue.enqueue, job.uid, items[stats.enqueued :], stats.enqueued)  # after a crash
        acted = True
    elif not stats.epoch_present:
        restored = await asyncio.to_thread(_rebuild, conns, job, items, spec)
        acted = True
        message = f"The queue lost this job's items; re-queued {restored} unfinished items from the plan in S3."
        await _event(ctx, job, "Warning", "QueueRebuilt", message)
    elif was_held:
        requeued = await asyncio.to_thread(queue.requeue_remaining, job.uid, items)
        acted = True
        await _event(ctx, job, "Normal", "Resumed", f"Re-queued {requeued} held items.")

    # a job queued just now has no progress to read and nothing in flight worth a round trip: a worker beginning
    # or finishing one of its items signals it; a look that changed nothing reports the counters read at its start
    if acted and not fresh:
        stats = await asyncio.to_thread(queue.job_stats, job.uid)
    finished_items = stats.done + stats.failed
    in_flight = 0 if fresh else await _in_flight(ctx, spec, job, conns)
    total = len(plan)
    if (
        not holding and finished_items < total and in_flight == 0 and _stalled(ctx, job, finished_items)
        and await _queue_idle(ctx, spec, job, conns)
    ):  # fmt: skip
        requeued = await asyncio.to_thread(queue.requeue_remaining, job.uid, items)
        if requeued:
            message = f"No progress for {STALL_SECONDS:.0f}s and nothing in flight: re-queued {requeued} items."
            await _event(ctx, job, "Warning", "Requeued", message)
    waiting_turn = (
        not holding and finished_items < total and in_flight == 0 and not await _queue_idle(ctx, spec, job, conns)
    )
    _count_items(ctx, job, spec, stats)
    rate = ctx.rates.setdefault(job.uid, RateTracker()).add(time.monotonic(), finished_items)
    paths = {i.item_id: i.relative_path for i in plan}
    failed_by_path = {paths.get(item_id, item_id): reason for item_id, reason in stats.failed_items.items()}
    finished = finished_items >= total
    report_location = job.status.get("reportLocation")
    if finished and not report_location:
        report_location = await asyncio.to_thread(_write_report, conns, job, plan, stats)
    return JobObservation(
        planned=True,
        total=total,
        done=stats.done,
        failed=stats.failed,
        cached=stats.cached,
        queued=max(total - finished_items - in_flight, 0),
        in_flight=in_flight,
        gpu_seconds=stats.gpu_seconds,
        failed_items=failed_by_path,
        rate_items_per_second=rate,
        plan_location=plan_loc,
        report_location=report_location,
        finished=finished and bool(report_location),
        budget_held=None if spec.suspend else held,
        waiting_turn=waiting_turn,
        **base,  # type: ignore[arg-type]
    )


def _count_items(ctx: JobContext, job: Job, spec: TranslationJobSpec, stats: Any) -> None:
    """portalis_items_total from the job's exactly-once counters (counted from this process' first look)."""
    now = (stats.done - stats.cached, stats.cached, stats.failed)
    before = ctx.counted.get(job.uid)
    ctx.counted[job.uid] = now
    cluster = cluster_key(job.key, spec)
    if before is None:
        for outcome in ("done", "cached", "failed"):  # every series from 0, so that its first items show in rate()
            metrics.ITEMS.labels(*cluster, outcome)
        return
    for outcome, new, old in zip(("done", "cached", "failed"), now, before, strict=True):
        if new > old:
            metrics.ITEMS.labels(*cluster, outcome).inc(new - old)


def _condition_true(status: dict[str, Any], type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in status.get("conditions") or [])


def budget_hold(
    spec: TranslationJobSpec,
    job: Job,
    tc: TranslationClusterSpec,
    tc_body: dict[str, Any],
    spent: Decimal,
    started: bool,
) -> Problem | None:
    """Why the budget holds this job's queued items, if it does (the job's own maxCost or its cluster's)."""
    if spec.max_cost is not None and spent >= Decimal(spec.max_cost):
        message = f"The job has spent {spent} of its maxCost {spec.max_cost}; raise spec.maxCost to go on."
        return Problem("MaxCostReached", message, False)
    if tc.budget is None:
        return None
    action = str(tc.budget.on_exceeded)
    if action == "Alert":
        return None
    status = tc_body.get("status") or {}
    cluster = f"{tc_body['metadata'].get('namespace')}/{tc_body['metadata'].get('name')}"
    exceeded = budget_exceeded(status)
    tenant = spec.tenant or job.key[0]
    tenant_over = tenant in tenants_over_budget(status)
    cluster_over = bool(exceeded and exceeded.get("status") == "True" and exceeded.get("reason") != "TenantLimit")
    if not (cluster_over or tenant_over):
        return None
    whose = f"tenant {tenant}'s budget" if tenant_over and not cluster_over else f"cluster {cluster}'s budget"
    if action == "Suspend":
        return Problem("BudgetExceeded", f"The {whose} is spent (onExceeded: Suspend); the job resumes when the "
                       "window rolls over or the limit is raised.", False)  # fmt: skip
    if not started:  # BlockScaleUp: running work finishes, new jobs wait
        return Problem("BudgetExceeded", f"The {whose} is spent (onExceeded: BlockScaleUp); the job starts when "
                       "the window rolls over or the limit is raised.", False)  # fmt: skip
    return None


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.0f} MB file, over the 10 MB"


def _work_item(job: Job, spec: TranslationJobSpec, item: PlanItem) -> WorkItem:
    return WorkItem(
        job_namespace=job.key[0],
        job_name=job.key[1],
        job_uid=job.uid,
        item_id=item.item_id,
        source_bucket=spec.source.bucket,
        source_key=item.source_key,
        output_bucket=output_bucket(spec),
        output_key=item.output_key,
        size_bytes=item.size_bytes,
        size_class=item.size_class,
        priority=str(spec.priority),
        max_attempts=spec.max_attempts_per_item,
        source_language=str(spec.source_language),
        target_language=str(spec.target_language),
        relative_path=item.relative_path,
    )


async def _plan(
    ctx: JobContext, job: Job, spec: TranslationJobSpec, conns: ClusterConnections, stored: bool
) -> tuple[list[PlanItem], str | None] | Problem:
    """The job's plan: from memory, from S3 when one may be stored there, else built from a listing and stored;
    with the Planned Event's message (no period) when this call wrote the plan, for the caller to post.

    When nothing was queued for the job and its status names no plan, a plan written by an earlier reconcile
    that crashed before queueing is simply written again from a fresh listing (no item of it was used)."""
    cached = ctx.plans.get(job.uid)
    if cached is not None:
        ctx.plans.move_to_end(job.uid)
        return cached, None
    key = plan_key(*job.key, job.uid)
    planned = None
    try:
        if not stored:
            raise StoreError("NotFound", "no plan was queued or reported for this job")
        plan = plan_from_json(await asyncio.to_thread(conns.store.get_json, conns.bucket, key))
    except StoreError as exc:
        if exc.reason not in {"NotFound", "NoSuchKey"}:
            if exc.reason == "NoSuchBucket":
                message = f"The cluster's storage bucket {conns.bucket} does not exist; create it."
                return Problem("StorageBucketNotFound", message, False)
            return Problem("StorageUnavailable", str(exc), False)
        result = await asyncio.to_thread(_build_plan, conns, job, spec)
        if isinstance(result, Problem):
            return result
        plan = result
        await asyncio.to_thread(conns.store.put_json, conns.bucket, key, plan_to_json(plan))
        size = sum(i.size_bytes for i in plan)
        planned = (f"Planned {len(plan)} files ({size / 1024 / 1024:.1f} MB) from "
                   f"{_s3(spec.source.bucket, spec.source.prefix)}; plan at {_s3(conns.bucket, key)}")  # fmt: skip
    ctx.plans[job.uid] = plan
    ctx.plan_items += len(plan)
    while ctx.plan_items > PLAN_CACHE_ITEMS and len(ctx.plans) > 1:
        ctx.plan_items -= len(ctx.plans.popitem(last=False)[1])
    return plan, planned


def _build_plan(conns: ClusterConnections, job: Job, spec: TranslationJobSpec) -> list[PlanItem] | Problem:
    where = _s3(spec.source.bucket, spec.source.prefix)
    try:
        listing = [(o.key, o.size) for o in conns.store.list(spec.source.bucket, spec.source.prefix)]
    except StoreError as exc:
        if exc.reason == "NoSuchBucket":
            return Problem("SourceBucketNotFound", f"Source bucket {spec.source.bucket} does not exist.", True)
        if exc.reason == "CredentialsRejected":  # the cluster's to fix, not the job's: it waits, nothing queued
            return Problem("StorageCredentialsRejected", f"The object store rejected the cluster's S3 credentials "
                           f"({exc}). Fix the Secret in spec.storage.credentialsSecretRef and restart the operator, "
                           "or point that reference at a new Secret.", False)  # fmt: skip
        if exc.reason == "AccessDenied":
            return Problem(
                "SourceUnreadable", f"Access to {where} was denied: check the cluster's S3 credentials.", True
            )
        return Problem("StorageUnavailable", str(exc), False)
    plan = build_plan(
        listing,
        spec.source.prefix,
        spec.source.include,
        spec.source.exclude,
        output_prefix(spec, job.key[1]),
        output_extension(str(spec.target_language)),
    )
    if not plan:
        return Problem(
            "NoSourceFiles",
            f"No files under {where} match include {spec.source.include}"
            + (f" and exclude {spec.source.exclude}" if spec.source.exclude else "")
            + f" ({len(listing)} objects listed).",
            True,
        )
    return plan


def _rebuild(conns: ClusterConnections, job: Job, items: list[WorkItem], spec: TranslationJobSpec) -> int:
    """The queue lost the job: outputs already in S3 count as done, the rest is queued again."""
    present = {o.key for o in conns.store.list(output_bucket(spec), output_prefix(spec, job.key[1]))}
    done = [i.item_id for i in items if i.output_key in present]
    conns.queue.mark_done(job.uid, done)
    return conns.queue.requeue_remaining(job.uid, items)


async def _in_flight(ctx: JobContext, spec: TranslationJobSpec, job: Job, conns: ClusterConnections) -> int:
    """Items of the job that workers are translating now, from their heartbeats: read at most once a second
    per cluster (each of its jobs asks, and a cluster's heartbeats are read in one go)."""

    def read() -> dict[str, int]:
        busy: dict[str, int] = {}
        for hb in conns.queue.workers().values():
            if hb.get("state") == "busy" and hb.get("job"):
                busy[str(hb["job"])] = busy.get(str(hb["job"]), 0) + 1
        return busy

    # a reading under way when a progress signal came is not kept (enqueue_progressed forgets it)
    busy = await ctx.busy.get(cluster_key(job.key, spec), read)
    return busy.get(f"{job.key[0]}/{job.key[1]}", 0) + busy.get(job.uid, 0)


async def _queue_idle(ctx: JobContext, spec: TranslationJobSpec, job: Job, conns: ClusterConnections) -> bool:
    """No item waits in the cluster's queue: a job without progress is then missing items, not waiting its
    turn behind other jobs' items (looking for its own entries means reading the whole queue, so it is not
    done for each of thousands of waiting jobs). Read at most once a second per cluster."""
    waiting = await ctx.waiting.get(cluster_key(job.key, spec), lambda: sum(d.waiting for d in conns.queue.depth()))
    return waiting == 0


def _stalled(ctx: JobContext, job: Job, finished: int) -> bool:
    now = time.monotonic()
    last = ctx.progress_at.get(job.uid)
    if last is None or last[1] != finished:
        ctx.progress_at[job.uid] = (now, finished)
        return False
    if now - last[0] >= STALL_SECONDS:
        ctx.progress_at[job.uid] = (now, finished)
        return True
    return False


def _write_report(conns: ClusterConnections, job: Job, plan: list[PlanItem], stats: Any) -> str:
    done_ids = conns.queue.done_ids(job.uid)
    totals = {
        "total": len(plan),
        "done": stats.done,
        "failed": stats.failed,
        "cached": stats.cached,
        "gpuSeconds": round(stats.gpu_seconds, 3),
        "lines": stats.lines,
    }
    key = report_key(*job.key, job.uid)
    conns.store.put_json(conns.bucket, key, report(plan, done_ids, stats.failed_items, totals))
    return _s3(conns.bucket, key)


async def _cleanup(ctx: JobContext, job: Job, spec: TranslationJobSpec) -> None:
    """The job is being deleted and still carries the finalizer of earlier versions: remove its items from
    the queue, then the finalizer. (Jobs without it are cleaned up when their deletion is seen, or by the sweep.)"""
    finalizers = list(job.meta.get("finalizers") or [])
    if FINALIZER not in finalizers:
        return
    cluster = cluster_key(job.key, spec)
    await _forget_in_queue(ctx, cluster, job.uid, f"{job.key[0]}/{job.key[1]}: deleted")
    remaining = [f for f in finalizers if f != FINALIZER]
    # a JSON merge patch replaces the list; the resourceVersion guard turns a concurrent change into a retry
    await asyncio.to_thread(
        ctx.kube.patch,
        job.ref,
        {"metadata": {"finalizers": remaining, "resourceVersion": job.meta.get("resourceVersion")}},
    )
    _forget_memory(ctx, job.uid)


async def _forget_in_queue(ctx: JobContext, cluster: Key, uid: str, why: str) -> bool:
    """Remove a job's items and counters from its cluster's queue; False when the queue cannot be reached."""
    tc_body = first(ctx.clusters, cluster)
    if tc_body is None or not uid:
        return False
    try:
        tc = SPECS.parse(TranslationClusterSpec, tc_body)
        conns = await ctx.connections.for_cluster_async(cluster[0], cluster[1], tc)
        removed = await asyncio.to_thread(conns.queue.cancel_job, uid)
        await asyncio.to_thread(conns.queue.forget_job, uid)
    except (ValidationError, ConnectionError_, ValueError, redis.RedisError) as exc:
        log.warning("%s; the queue of %s/%s could not be reached to remove its items: %s", why, *cluster, exc)
        return False
    log.info("%s; removed %d queued items from the queue of %s/%s", why, removed, *cluster)
    return True


def _forget_memory(ctx: JobContext, uid: str) -> None:
    ctx.plan_items -= len(ctx.plans.pop(uid, ()))
    ctx.rates.pop(uid, None)
    ctx.progress_at.pop(uid, None)
    ctx.intervals.pop(uid, None)
    ctx.counted.pop(uid, None)


async def sweep_queues(ctx: JobContext) -> None:
    """Every SWEEP_SECONDS, remove from each cluster's queue the jobs that no longer exist: those deleted while
    the operator was down or whose queue could not be reached then. The watch cache can be short of jobs (just
    after a start, while the listing is being read), so a uid is removed only when two sweeps in a row found no
    job for it there and the API server, asked by name, has none with that uid either."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        for cluster in list(ctx.clusters.keys()):
            try:
                await _sweep_cluster(ctx, cluster)
            except Exception as exc:  # one unreachable queue must not stop the sweep of the others
                log.warning("sweeping the queue of %s/%s: %s", *cluster, exc)


async def _sweep_cluster(ctx: JobContext, cluster: Key) -> None:
    tc_body = first(ctx.clusters, cluster)
    if tc_body is None:
        return
    tc = SPECS.parse(TranslationClusterSpec, tc_body)
    conns = await ctx.connections.for_cluster_async(cluster[0], cluster[1], tc)
    held = await asyncio.to_thread(conns.queue.job_uids)
    live = {
        str((body.get("metadata") or {}).get("uid"))
        for job_key in ctx.jobs.group(cluster)
        if (body := ctx.jobs.get(job_key)) is not None
    }
    remove, suspects = orphaned_jobs(set(held), live, ctx.suspects.get(cluster, set()))
    ctx.suspects[cluster] = suspects
    for uid in remove:
        namespace, _, name = held[uid].partition("/")
        ref = Ref(TJ_API_VERSION, "TranslationJob", namespace, name, uid)
        found = await asyncio.to_thread(ctx.kube.get, ref) if namespace and name else None
        if found is not None and (found.get("metadata") or {}).get("uid") == uid:
            continue  # the API server still has it: the watch cache is behind, not the job gone
        await _forget_in_queue(ctx, cluster, uid, f"job {held[uid]} ({uid}) no longer exists")


async def _event(ctx: JobContext, job: Job, type_: str, reason: str, message: str) -> None:
    """Record an Event without waiting for the API server: the reconcile goes on while it is posted, after
    the job's earlier Events of this reconcile (``reconcile`` waits for them all before it returns)."""
    log.info("%s/%s: %s: %s", job.key[0], job.key[1], reason, message)
    previous = job.events[-1] if job.events else None

    async def post() -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await asyncio.to_thread(ctx.kube.event, job.ref, type_, reason, message)

    job.events.append(asyncio.create_task(post()))


async def _finish_reconcile(
    ctx: JobContext, job: Job, spec: TranslationJobSpec | None, obs: JobObservation, now: datetime
) -> Result:
    if spec is None:  # the stored spec does not validate (admission normally prevents this)
        assert obs.problem is not None
        new_status: dict[str, Any] = {
            "observedGeneration": job.generation,
            "phase": "Failed",
            "conditions": compute_conditions(
                job.status.get("conditions"),
                [ConditionUpdate("Failed", TRUE, obs.problem.reason, obs.problem.message)],
                job.generation,
                now,
            ),
        }
    else:
        new_status = compute_job_status(spec, job.generation, job.status, obs, now)
    changed = status_changed(job.status, new_status)
    if changed:
        await asyncio.to_thread(ctx.kube.patch_status, job.ref, new_status)
        if job.body is not None:
            ctx.jobs.wrote_status(job.key, job.body, new_status)
        await _record_transitions(ctx, job, job.status, new_status)
    phase = new_status.get("phase")
    interval = resync_seconds(phase, changed, ctx.intervals.get(job.uid), obs.waiting_turn)
    if interval is None:
        ctx.intervals.pop(job.uid, None)
        ctx.counted.pop(job.uid, None)
        return Result.forget()
    ctx.intervals[job.uid] = interval
    return Result(requeue_after=_until_deadline(spec, job, now, interval))


def _until_deadline(spec: TranslationJobSpec | None, job: Job, now: datetime, interval: float) -> float:
    """``interval``, or less so that a deadline passing is reported when it passes."""
    if spec is None or spec.deadline_seconds is None or job.created is None:
        return interval
    left = (job.created - now).total_seconds() + spec.deadline_seconds
    return min(interval, left + 0.5) if left > -0.5 else interval


async def _record_transitions(ctx: JobContext, job: Job, old: dict[str, Any], new: dict[str, Any]) -> None:
    before = {c.get("type"): (c.get("status"), c.get("reason")) for c in old.get("conditions") or []}
    for c in new.get("conditions") or []:
        if before.get(c["type"]) == (c["status"], c["reason"]):
            continue
        if c["status"] != "True" and c["type"] != "Planned":
            continue
        if c["type"] == "Planned" and c["status"] == "True":
            continue  # the Planned Event is raised when the plan is written
        warning = c["type"] in {"Failed", "AtRisk", "BudgetHeld"} or (c["type"] == "Planned" and c["status"] == "False")
        if c["type"] == "Running" or not c.get("message"):
            continue
        await _event(ctx, job, "Warning" if warning else "Normal", c["reason"], c["message"])
