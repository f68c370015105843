"""A job's plan: read back from S3 or memory, or built from a listing of its source and stored."""

from __future__ import annotations

import asyncio
from typing import Any

from portalis.api.v1alpha1.job import TranslationJobSpec
from portalis.clients.connections import ClusterConnections
from portalis.clients.queue import WorkItem
from portalis.clients.store import StoreError
from portalis.controllers.job.context import Job, JobContext
from portalis.desired.job_paths import output_bucket, output_extension, output_prefix, plan_key, report_key, s3_url
from portalis.desired.job_status import (
    Problem,
    report,
)
from portalis.desired.plan import PlanItem, build_plan, plan_from_json, plan_to_json

# Plans kept in memory, counted in items (a plan of one file costs as little as a job's other memory; one of
# 100,000 files costs tens of MB): a job reconciled again within it is not read back from S3.
PLAN_CACHE_ITEMS = 50_000


async def load_plan(
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
        planned = (
            f"Planned {len(plan)} files ({size / 1024 / 1024:.1f} MB) from "
            f"{s3_url(spec.source.bucket, spec.source.prefix)}; plan at {s3_url(conns.bucket, key)}"
        )
    ctx.plans[job.uid] = plan
    ctx.plan_items += len(plan)
    while ctx.plan_items > PLAN_CACHE_ITEMS and len(ctx.plans) > 1:
        ctx.plan_items -= len(ctx.plans.popitem(last=False)[1])
    return plan, planned


def _build_plan(conns: ClusterConnections, job: Job, spec: TranslationJobSpec) -> list[PlanItem] | Problem:
    where = s3_url(spec.source.bucket, spec.source.prefix)
    try:
        listing = [(o.key, o.size) for o in conns.store.list(spec.source.bucket, spec.source.prefix)]
    except StoreError as exc:
        if exc.reason == "NoSuchBucket":
            return Problem("SourceBucketNotFound", f"Source bucket {spec.source.bucket} does not exist.", True)
        if exc.reason == "CredentialsRejected":  # the cluster's to fix, not the job's: it waits, nothing queued
            return Problem(
                "StorageCredentialsRejected",
                f"The object store rejected the cluster's S3 credentials ({exc}). Fix the Secret in "
                "spec.storage.credentialsSecretRef and restart the operator, or point that reference at a new Secret.",
                False,
            )
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


def rebuild_queue(conns: ClusterConnections, job: Job, items: list[WorkItem], spec: TranslationJobSpec) -> int:
    """The queue lost the job: outputs already in S3 count as done, the rest is queued again."""
    present = {o.key for o in conns.store.list(output_bucket(spec), output_prefix(spec, job.key[1]))}
    done = [i.item_id for i in items if i.output_key in present]
    conns.queue.mark_done(job.uid, done)
    return conns.queue.requeue_remaining(job.uid, items)


def write_report(conns: ClusterConnections, job: Job, plan: list[PlanItem], stats: Any) -> str:
    done_ids = conns.queue.done_ids(job.uid)
    totals = {
        "total": len(plan),
        "done": stats.done,
        "compiles": stats.compiles,
        "translated": stats.done - stats.compiles,
        "failed": stats.failed,
        "cached": stats.cached,
        "gpuSeconds": round(stats.gpu_seconds, 3),
        "tokens": stats.tokens,
        "lines": stats.lines,
    }
    key = report_key(*job.key, job.uid)
    body = report(plan, done_ids, stats.failed_items, totals, conns.queue.compiled_ids(job.uid), stats.diagnostics)
    conns.store.put_json(conns.bucket, key, body)
    return s3_url(conns.bucket, key)
