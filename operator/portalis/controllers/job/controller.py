"""The job controller as the composition root builds it: its reconcile loop, the sweep, and what wakes a job.

Watch events about a job (``on_job``) keep the job cache and enqueue the job when something its reconcile
depends on changed: its spec (generation), deletion or foreign finalizers, not its status, which this
controller writes itself. The other wake-ups come from the cluster's side: the cluster changed in a way its
jobs depend on (``on_cluster``), the queue observer saw items of some jobs begun or finished
(``on_progress``), or the cluster's queue emptied (``on_emptied``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from portalis import metrics
from portalis.api.meta import Key
from portalis.clients.connections import Connections
from portalis.clients.kube import Kube
from portalis.config import OperatorConfig
from portalis.controllers.caches import Index, NodeCache, ObjectCache, SpecCache, cluster_of_job, compact, slim
from portalis.controllers.job.cleanup import sweep_queues
from portalis.controllers.job.context import JobContext
from portalis.controllers.job.reconcile import reconcile
from portalis.controllers.observer import QueueObserver
from portalis.controllers.redis_gate import RedisGate
from portalis.controllers.runtime import Controller, Result, changed
from portalis.desired.job_status import job_fingerprint


class JobController:
    def __init__(
        self,
        *,
        jobs: ObjectCache,
        clusters: Index,
        pods: Index,
        nodes: NodeCache,
        kube: Kube,
        connections: Connections,
        gate: RedisGate,
        observer: QueueObserver,
        specs: SpecCache,
        config: OperatorConfig,
        workers: int = 32,
    ) -> None:
        loop = Controller("translationjob", self._reconcile, workers=workers, observe=metrics.observe_reconcile)
        self.ctx = JobContext(loop, jobs, clusters, pods, nodes, kube, connections, gate, observer, specs, config)

    async def _reconcile(self, key: Key) -> Result:
        return await reconcile(self.ctx, key)

    def enqueue(self, key: Key) -> None:
        self.ctx.loop.enqueue(key)

    def start(self) -> None:
        self.ctx.loop.start()
        self.ctx.tasks.append(asyncio.create_task(sweep_queues(self.ctx), name="portalis-job-sweep"))

    async def stop(self) -> None:
        for task in self.ctx.tasks:
            task.cancel()
        await self.ctx.loop.stop()

    # ---- what wakes a job ----
    def on_job(self, key: Key, body: dict[str, Any], deleted: bool) -> None:
        """A job's watch event: its spec, deletion or arrival needs a look; a change of its status alone (every
        status patch comes back as an event) does not."""
        ctx = self.ctx
        if deleted:
            ctx.jobs.delete(key)
            # the reconcile that finds it gone removes its items from the queue
            uid = str((body.get("metadata") or {}).get("uid") or "")
            ctx.deleted[key] = (uid, cluster_of_job(key, body))
        else:
            ctx.jobs.put(key, compact(slim(body)))  # thousands are held: strings shared
        if changed(ctx.seen, key, None if deleted else job_fingerprint(body)):
            ctx.loop.enqueue(key)

    def on_cluster(self, cluster: Key) -> None:
        """A cluster appeared, went away or changed in a way its jobs depend on."""
        for job_key in self.ctx.jobs.group(cluster):
            self.ctx.loop.enqueue(job_key)

    def on_emptied(self, cluster: Key) -> None:
        """The cluster's queue emptied: its running jobs are looked at (one waiting its turn is otherwise looked at
        only every few minutes, and an empty queue is when a stall or a lost queue shows)."""
        self._enqueue_where(cluster, lambda body: (body.get("status") or {}).get("phase") == "Running")

    def on_progress(self, cluster: Key, uids: set[str]) -> None:
        """Items of these jobs (uids) were begun or finished: report them now rather than at their next resync."""
        self._enqueue_where(cluster, lambda body: (body.get("metadata") or {}).get("uid") in uids)

    def _enqueue_where(self, cluster: Key, wanted: Callable[[dict[str, Any]], bool]) -> None:
        """Enqueue the cluster's jobs whose cached body ``wanted`` accepts."""
        for job_key in self.ctx.jobs.group(cluster):
            body = self.ctx.jobs.get(job_key)
            if body is not None and wanted(body):
                self.ctx.loop.enqueue(job_key)
