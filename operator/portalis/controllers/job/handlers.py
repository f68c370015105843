"""The job controller's kopf handlers: watch events only enqueue jobs; start-up and clean-up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import kopf

from portalis import GROUP, VERSION, metrics
from portalis.clients.connections import Connections
from portalis.clients.kube import Kube
from portalis.controllers import cluster as cluster_controller
from portalis.controllers.caches import JOBS, cluster_of_job, slim
from portalis.controllers.job.cleanup import sweep_queues
from portalis.controllers.job.context import FINALIZER, JobContext
from portalis.controllers.job.reconcile import reconcile
from portalis.controllers.runtime import Controller, Key, Result, changed
from portalis.desired.job_status import (
    cluster_fingerprint,
    job_fingerprint,
)

CONTEXT: JobContext | None = None


async def _reconcile(key: Key) -> Result:
    assert CONTEXT is not None
    return await reconcile(CONTEXT, key)


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
    controller = Controller("translationjob", _reconcile, workers=32, observe=metrics.observe_reconcile)
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
