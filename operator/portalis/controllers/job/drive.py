"""Driving a job through its cluster's queue: enqueue, hold, resume, rebuild, recover a stall, report."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from portalis import metrics
from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.api.v1alpha1.job import TranslationJobSpec
from portalis.clients.connections import ClusterConnections
from portalis.clients.queue import WorkItem
from portalis.controllers.job.context import Job, JobContext
from portalis.controllers.job.events import post_event
from portalis.controllers.job.paths import cluster_key, output_bucket, output_prefix, plan_key, s3_url
from portalis.controllers.job.plan import load_plan, rebuild_queue, write_report
from portalis.desired.job_status import (
    JobObservation,
    Problem,
    RateTracker,
    budget_exceeded,
    cost_of,
    tenants_over_budget,
)
from portalis.desired.plan import PlanItem

STALL_SECONDS = 60.0


def price_per_gpu_hour(tc: TranslationClusterSpec) -> Decimal:
    if tc.pricing is None:
        return Decimal(0)
    if tc.workers.spot and tc.pricing.spot_gpu_hour:
        return Decimal(tc.pricing.spot_gpu_hour)
    return Decimal(tc.pricing.on_demand_gpu_hour)


async def drive(
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
        "output_location": s3_url(output_bucket(spec), output_prefix(spec, job.key[1])),
    }
    plan_loc = s3_url(conns.bucket, plan_key(*job.key, job.uid))
    queue = conns.queue
    stats = await asyncio.to_thread(queue.job_stats, job.uid)
    # a plan can only have been stored by a reconcile that went on to queue items or report it in status
    stored = stats.epoch_present or bool(job.status.get("planLocation") or job.status.get("startTime"))
    plan_or_problem = await load_plan(ctx, job, spec, conns, stored)
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
        await post_event(ctx, job, "Normal", "Planned", f"{planned}.")
    if holding:
        if not was_held and started:
            removed = await asyncio.to_thread(queue.remove_waiting, job.uid)
            acted = True
            why = "spec.suspend is true" if spec.suspend else held.message  # type: ignore[union-attr]
            await post_event(
                ctx,
                job,
                "Normal",
                "Suspended" if spec.suspend else "BudgetHeld",
                f"Held {removed} queued items ({why}); items in flight finish.",
            )
    elif first_queue:  # never queued before
        await asyncio.to_thread(queue.enqueue, job.uid, items, 0)
        queued = f"queued {len(items)} items at priority {spec.priority}"
        if planned is not None:
            await post_event(ctx, job, "Normal", "Planned", f"{planned}; {queued}.")
        else:  # the plan was stored by a reconcile that ended before queueing
            await post_event(ctx, job, "Normal", "Queued", f"{queued[0].upper()}{queued[1:]}.")
        fresh = not too_large  # (failures recorded for files too large are not in the stats read before)
    elif stats.epoch_present and stats.enqueued < len(items) and not was_held:
        await asyncio.to_thread(queue.enqueue, job.uid, items[stats.enqueued :], stats.enqueued)  # after a crash
        acted = True
    elif not stats.epoch_present:
        restored = await asyncio.to_thread(rebuild_queue, conns, job, items, spec)
        acted = True
        message = f"The queue lost this job's items; re-queued {restored} unfinished items from the plan in S3."
        await post_event(ctx, job, "Warning", "QueueRebuilt", message)
    elif was_held:
        requeued = await asyncio.to_thread(queue.requeue_remaining, job.uid, items)
        acted = True
        await post_event(ctx, job, "Normal", "Resumed", f"Re-queued {requeued} held items.")

    # a job queued just now has no progress to read and nothing in flight worth a round trip: a worker beginning
    # or finishing one of its items signals it; a look that changed nothing reports the counters read at its start
    if acted and not fresh:
        stats = await asyncio.to_thread(queue.job_stats, job.uid)
    finished_items = stats.done + stats.failed
    in_flight = 0 if fresh else await _in_flight(ctx, spec, job, conns)
    total = len(plan)
    if (
        not holding
        and finished_items < total
        and in_flight == 0
        and _stalled(ctx, job, finished_items)
        and await _queue_idle(ctx, spec, job, conns)
    ):
        requeued = await asyncio.to_thread(queue.requeue_remaining, job.uid, items)
        if requeued:
            message = f"No progress for {STALL_SECONDS:.0f}s and nothing in flight: re-queued {requeued} items."
            await post_event(ctx, job, "Warning", "Requeued", message)
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
        report_location = await asyncio.to_thread(write_report, conns, job, plan, stats)
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
        return Problem(
            "BudgetExceeded",
            f"The {whose} is spent (onExceeded: Suspend); the job resumes when the "
            "window rolls over or the limit is raised.",
            False,
        )
    if not started:  # BlockScaleUp: running work finishes, new jobs wait
        return Problem(
            "BudgetExceeded",
            f"The {whose} is spent (onExceeded: BlockScaleUp); the job starts when "
            "the window rolls over or the limit is raised.",
            False,
        )
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
