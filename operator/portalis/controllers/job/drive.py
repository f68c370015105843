"""Driving a job through its cluster's queue: plan, then enqueue, hold, resume or rebuild as
``desired.job_actions`` decides, recover a stall, and gather what status is computed from."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

from portalis import metrics
from portalis.api.meta import Key
from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.api.v1alpha1.job import TranslationJobSpec
from portalis.clients.connections import ClusterConnections
from portalis.clients.queue import JobStats, WorkItem
from portalis.controllers.job.context import Job, JobContext
from portalis.controllers.job.events import post_event
from portalis.controllers.job.plan import load_plan, rebuild_queue, write_report
from portalis.controllers.observer import QueueSnapshot
from portalis.desired.budget import gpus_by_capacity, item_price, prices_of
from portalis.desired.job_actions import (
    STALL_SECONDS,
    QueueAction,
    budget_hold,
    queue_action,
    queue_state,
    stall,
    too_large_reason,
)
from portalis.desired.job_paths import cluster_key, output_bucket, output_prefix, plan_key, s3_url
from portalis.desired.job_status import JobObservation, Problem, RateTracker, cost_of
from portalis.desired.plan import PlanItem
from portalis.desired.podview import view_pod

PRICE_SECONDS = 1.0  # how long the jobs of a cluster share one price reading


async def drive(
    ctx: JobContext,
    job: Job,
    spec: TranslationJobSpec,
    tc: TranslationClusterSpec,
    tc_body: dict[str, Any],
    conns: ClusterConnections,
) -> JobObservation:
    """Plan, enqueue, hold or resume, rebuild, and report; returns what status is computed from."""
    cluster = cluster_key(job.key, spec)
    price = item_price_of(ctx, cluster, tc)
    base: dict[str, Any] = {
        "created": job.created,
        "price_per_gpu_hour": price,
        "output_location": s3_url(output_bucket(spec), output_prefix(spec, job.key[1])),
    }
    plan_loc = s3_url(conns.bucket, plan_key(*job.key, job.uid))
    queue = conns.queue
    stats = await asyncio.to_thread(queue.job_stats, job.uid)
    # a plan can only have been stored by a reconcile that went on to queue items or report it in status
    stored = stats.epoch_present or bool(job.status.get("planLocation") or job.status.get("startTime"))
    plan_or_problem = await load_plan(ctx, job, spec, conns, stored)
    if isinstance(plan_or_problem, Problem):
        return JobObservation(problem=plan_or_problem, **base)
    plan, planned = plan_or_problem
    too_large = [i for i in plan if i.too_large]
    for i in too_large:
        await asyncio.to_thread(queue.record_failure, job.uid, i.item_id, too_large_reason(i.size_bytes))
    items = [work_item(job, spec, i) for i in plan if not i.too_large]
    state = queue_state(job.status, stats.epoch_present, stats.enqueued)
    started = state.started or stats.epoch_present
    held = budget_hold(
        job.key, spec, cluster, tc, tc_body.get("status") or {}, cost_of(stats.gpu_seconds, price), started
    )
    holding = spec.suspend or held is not None
    action = queue_action(state, holding, len(items))
    fresh = False
    acted = bool(too_large)  # whether this look changed the job's counters (else the stats read above stand)
    if planned is not None and action != QueueAction.QUEUE:  # (else one Event says both: one API write, not two)
        await post_event(ctx, job, "Normal", "Planned", f"{planned}.")
    if action == QueueAction.HOLD:
        removed = await asyncio.to_thread(queue.remove_waiting, job.uid)
        acted = True
        why = "spec.suspend is true" if spec.suspend or held is None else held.message
        reason = "Suspended" if spec.suspend else "BudgetHeld"
        await post_event(ctx, job, "Normal", reason, f"Held {removed} queued items ({why}); items in flight finish.")
    elif action == QueueAction.QUEUE:
        await asyncio.to_thread(queue.enqueue, job.uid, items, 0)
        queued = f"queued {len(items)} items at priority {spec.priority}"
        if planned is not None:
            await post_event(ctx, job, "Normal", "Planned", f"{planned}; {queued}.")
        else:  # the plan was stored by a reconcile that ended before queueing
            await post_event(ctx, job, "Normal", "Queued", f"{queued[0].upper()}{queued[1:]}.")
        fresh = not too_large  # (failures recorded for files too large are not in the stats read before)
    elif action == QueueAction.QUEUE_REST:  # after a crash
        await asyncio.to_thread(queue.enqueue, job.uid, items[stats.enqueued :], stats.enqueued)
        acted = True
    elif action == QueueAction.REBUILD:
        restored = await asyncio.to_thread(rebuild_queue, conns, job, items, spec)
        acted = True
        message = f"The queue lost this job's items; re-queued {restored} unfinished items from the plan in S3."
        await post_event(ctx, job, "Warning", "QueueRebuilt", message)
    elif action == QueueAction.RESUME:
        requeued = await asyncio.to_thread(queue.requeue_remaining, job.uid, items)
        acted = True
        await post_event(ctx, job, "Normal", "Resumed", f"Re-queued {requeued} held items.")

    # a job queued just now has no progress to read and nothing in flight worth a round trip: a worker beginning
    # or finishing one of its items signals it; a look that changed nothing reports the counters read at its start
    if acted and not fresh:
        stats = await asyncio.to_thread(queue.job_stats, job.uid)
    finished_items = stats.done + stats.failed
    total = len(plan)
    snapshot: QueueSnapshot | None = None

    async def observed() -> QueueSnapshot:
        """The cluster's queue as its jobs share it (read at most once a second, and again after a signal)."""
        nonlocal snapshot
        if snapshot is None:
            snapshot = await ctx.observer.read(cluster, conns, max_age=1.0)
        return snapshot

    in_flight = 0 if fresh else (await observed()).busy_with(f"{job.key[0]}/{job.key[1]}")
    running = not holding and finished_items < total and in_flight == 0
    stalled = False
    if running:
        ctx.progress_at[job.uid], stalled = stall(ctx.progress_at.get(job.uid), finished_items, time.monotonic())
    # a stalled job is missing items only when none waits in the cluster's queue; else it waits its turn behind
    # other jobs' items (looking for its own entries would mean reading the whole queue)
    if stalled and (await observed()).waiting == 0:
        requeued = await asyncio.to_thread(queue.requeue_remaining, job.uid, items)
        if requeued:
            message = f"No progress for {STALL_SECONDS:.0f}s and nothing in flight: re-queued {requeued} items."
            await post_event(ctx, job, "Warning", "Requeued", message)
    waiting_turn = running and (await observed()).waiting > 0
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
        compiles=stats.compiles,
        tokens=stats.tokens,
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
        **base,
    )


def item_price_of(ctx: JobContext, cluster: Key, tc: TranslationClusterSpec) -> Decimal:
    """The GPU-hour price of the cluster's items, as metering prices its GPUs: the cluster's prices (or the
    operator's defaults), spot or on-demand by its running workers' nodes. Read at most once a second per
    cluster: each of its jobs asks."""
    known = ctx.prices.get(cluster)
    now = time.monotonic()
    if known is not None and now - known[0] <= PRICE_SECONDS:
        return known[1]
    pods = [view_pod(p) for p in ctx.pods.get(cluster) or ()]
    labels = {}
    for name in {p.node for p in pods if p.is_worker and p.node}:
        view = ctx.nodes.view(name)
        labels[name] = dict(view.labels) if view is not None else {}
    price = item_price(prices_of(tc, ctx.config.default_prices), *gpus_by_capacity(pods, labels), tc.workers.spot)
    ctx.prices[cluster] = (now, price)
    return price


def _count_items(ctx: JobContext, job: Job, spec: TranslationJobSpec, stats: JobStats) -> None:
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


def work_item(job: Job, spec: TranslationJobSpec, item: PlanItem) -> WorkItem:
    """The queue's item for one file of the job's plan."""
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
        verify=spec.verify.enabled,
    )
