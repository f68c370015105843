"""Removing a deleted job's items and counters from its cluster's queue, at once or by the sweep."""

from __future__ import annotations

import asyncio

import redis
from pydantic import ValidationError

from portalis.api.meta import API_VERSION, Key
from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.clients.connections import ConnectionError_
from portalis.clients.kube import Ref
from portalis.controllers.caches import first
from portalis.controllers.job.context import JobContext, log
from portalis.desired.job_status import (
    orphaned_jobs,
)


async def forget_in_queue(ctx: JobContext, cluster: Key, uid: str, why: str) -> bool:
    """Remove a job's items and counters from its cluster's queue; False when the queue cannot be reached."""
    tc_body = first(ctx.clusters, cluster)
    if tc_body is None or not uid:
        return False
    try:
        tc = ctx.specs.parse(TranslationClusterSpec, tc_body)
        conns = await ctx.connections.for_cluster_async(cluster[0], cluster[1], tc)
        removed = await asyncio.to_thread(conns.queue.cancel_job, uid)
        await asyncio.to_thread(conns.queue.forget_job, uid)
    except (ValidationError, ConnectionError_, ValueError, redis.RedisError) as exc:
        log.warning("%s; the queue of %s/%s could not be reached to remove its items: %s", why, *cluster, exc)
        return False
    log.info("%s; removed %d queued items from the queue of %s/%s", why, removed, *cluster)
    return True


def forget_memory(ctx: JobContext, uid: str) -> None:
    ctx.plan_items -= len(ctx.plans.pop(uid, ()))
    ctx.rates.pop(uid, None)
    ctx.progress_at.pop(uid, None)
    ctx.intervals.pop(uid, None)
    ctx.counted.pop(uid, None)


async def sweep_queues(ctx: JobContext) -> None:
    """Every ``PORTALIS_JOB_SWEEP_SECONDS``, remove from each cluster's queue the jobs that no longer exist:
    those deleted while the operator was down or whose queue could not be reached then. The watch cache can be
    short of jobs (just after a start, while the listing is being read), so a uid is removed only when two sweeps
    in a row found no job for it there and the API server, asked by name, has none with that uid either."""
    while True:
        await asyncio.sleep(ctx.config.job_sweep_seconds)
        for cluster in list(ctx.clusters.keys()):
            try:
                await _sweep_cluster(ctx, cluster)
            except Exception as exc:  # one unreachable queue must not stop the sweep of the others
                log.warning("sweeping the queue of %s/%s: %s", *cluster, exc)


async def _sweep_cluster(ctx: JobContext, cluster: Key) -> None:
    tc_body = first(ctx.clusters, cluster)
    if tc_body is None:
        return
    tc = ctx.specs.parse(TranslationClusterSpec, tc_body)
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
        ref = Ref(API_VERSION, "TranslationJob", namespace, name, uid)
        found = await asyncio.to_thread(ctx.kube.get, ref) if namespace and name else None
        if found is not None and (found.get("metadata") or {}).get("uid") == uid:
            continue  # the API server still has it: the watch cache is behind, not the job gone
        await forget_in_queue(ctx, cluster, uid, f"job {held[uid]} ({uid}) no longer exists")
