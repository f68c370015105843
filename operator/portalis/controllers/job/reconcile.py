"""One look at a job: observe it and its cluster, drive it, and patch its status when it changed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import redis
from botocore.exceptions import BotoCoreError
from pydantic import ValidationError

from portalis.api.meta import API_VERSION, Key, parse_time
from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.api.v1alpha1.job import TranslationJobSpec
from portalis.clients.connections import ConnectionError_
from portalis.clients.kube import Ref
from portalis.clients.store import StoreError
from portalis.controllers.caches import first
from portalis.controllers.job.cleanup import forget_in_queue, forget_memory
from portalis.controllers.job.context import Job, JobContext
from portalis.controllers.job.drive import drive
from portalis.controllers.job.events import record_transitions
from portalis.controllers.runtime import Result
from portalis.desired.cluster_status import status_changed
from portalis.desired.conditions import TRUE, ConditionUpdate, compute_conditions
from portalis.desired.job_status import (
    JobObservation,
    Problem,
    compute_job_status,
    resync_seconds,
)


async def reconcile(ctx: JobContext, key: Key) -> Result:
    """One look at a job; the Events it records are posted while it goes on, and all have been posted (or
    given up on) when it returns."""
    events: list[asyncio.Task[None]] = []
    try:
        return await _reconcile(ctx, key, events)
    finally:
        if events:
            await asyncio.gather(*events, return_exceptions=True)


async def _reconcile(ctx: JobContext, key: Key, events: list[asyncio.Task[None]]) -> Result:
    body = ctx.jobs.get(key)
    gone = ctx.deleted.pop(key, None)
    if gone is not None and (body is None or (body.get("metadata") or {}).get("uid") != gone[0]):
        # deleted (and perhaps created again under the same name since): its items leave the queue
        await forget_in_queue(ctx, gone[1], gone[0], f"{key[0]}/{key[1]}: deleted")
        forget_memory(ctx, gone[0])
    if body is None:
        ctx.loop.forget(key)
        return Result.forget()
    meta = body.get("metadata", {})
    created = parse_time(meta.get("creationTimestamp"))
    job = Job(
        key=key,
        ref=Ref(API_VERSION, "TranslationJob", key[0], key[1], meta.get("uid", "")),
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
        # not kept in the spec cache: parsing a job's spec takes a few microseconds, and 10,000 parsed specs
        # held 35 MB (the cache keeps the clusters' specs, parsed for each of their jobs' looks)
        spec = TranslationJobSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        return await finish_reconcile(
            ctx, job, None, JobObservation(problem=Problem("InvalidSpec", message, True)), now
        )

    if meta.get("deletionTimestamp"):  # its items leave the queue when the watch says it is gone
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
        return await finish_reconcile(ctx, job, spec, JobObservation(problem=problem, created=created), now)
    try:
        tc = ctx.specs.parse(TranslationClusterSpec, tc_body)
    except ValidationError:
        problem = Problem(
            "ClusterInvalid", f"TranslationCluster {cluster_ns}/{spec.cluster_ref.name} is invalid.", False
        )
        return await finish_reconcile(ctx, job, spec, JobObservation(problem=problem, created=created), now)
    if not tc.admits(cluster_ns, key[0]):
        allowed = ", ".join(tc.admit_namespaces or [cluster_ns])
        problem = Problem(
            "NotAdmitted",
            f"TranslationCluster {cluster_ns}/{spec.cluster_ref.name} admits jobs only from namespaces: {allowed}. "
            "Add this namespace to its spec.admitNamespaces.",
            False,
        )
        return await finish_reconcile(ctx, job, spec, JobObservation(problem=problem, created=created), now)
    try:
        conns = await ctx.connections.for_cluster_async(cluster_ns, spec.cluster_ref.name, tc)
    except ConnectionError_ as exc:
        problem = Problem(exc.reason, exc.message, False)
        return await finish_reconcile(ctx, job, spec, JobObservation(problem=problem, created=created), now)
    except (ValueError, BotoCoreError, redis.RedisError) as exc:  # settings boto3 or redis-py refuse
        problem = Problem("StorageOrQueueInvalid", f"The cluster's queue or store settings are unusable: {exc}", False)
        return await finish_reconcile(ctx, job, spec, JobObservation(problem=problem, created=created), now)

    down = ctx.gate.down(conns.queue.r)
    if down is not None:  # a Redis that timed out or refused connections lately: not called again before its time
        problem = Problem("QueueUnavailable", down, False)
        return await finish_reconcile(ctx, job, spec, JobObservation(problem=problem, created=created), now)

    try:
        obs = await drive(ctx, job, spec, tc, tc_body, conns)
    except redis.RedisError as exc:
        ctx.gate.report(conns.queue.r, exc)
        problem = Problem("QueueUnavailable", f"The cluster's Redis cannot be used: {exc}", False)
        obs = JobObservation(problem=problem, created=created)
    except StoreError as exc:
        obs = JobObservation(problem=Problem("StorageUnavailable", str(exc), False), created=created)
    return await finish_reconcile(ctx, job, spec, obs, now)


async def finish_reconcile(
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
        await record_transitions(ctx, job, job.status, new_status)
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
