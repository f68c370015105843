"""The queue observer: one per operator, one snapshot per cluster, feeding both scaling and job progress.

Two readings of each cluster's queue:

- The **look**, every 0.5 s for every cluster watched, one Redis round trip for all the clusters (up to 100)
  that share a Redis (``queue.look_many``): the backlog, and the jobs whose items were begun or finished since
  this process' cursor in the queue's progress stream. A backlog change that moves the scaler's target, or
  empties or starts the queue, asks for the cluster at once (``on_backlog``); other moves only refresh the
  figures in status, at most every ``figures_seconds``. The jobs that progressed are handed on
  (``on_progress``), and a queue that empties brings back the cluster's running jobs (``on_emptied``).
- The **snapshot**: depth per priority and the live workers' heartbeats. The cluster reconcile reads it fresh
  (through the Redis gate: a server that does not answer holds nobody); the job reconciles of the same cluster
  share it for up to a second. A progress signal or a backlog change drops it, so nobody reads it stale.

The observer also keeps why a cluster's queue could not be used, for the cluster's status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError

from portalis.api.meta import Key
from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.clients.connections import ClusterConnections, ConnectionError_, Connections
from portalis.clients.queue import QueueDepth, RedisQueue, look_many
from portalis.controllers.caches import SpecCache, first
from portalis.controllers.redis_gate import RedisGate, Unreachable
from portalis.desired.cluster_status import QueueFigures, QueueProblem
from portalis.desired.scaling import ScalingPolicy, backlog_needs_a_look, figures_seconds, policy_from_spec

log = logging.getLogger("portalis.queue")

LOOK_SECONDS = 0.5
LOOK_BATCH = 100  # queues read in one Redis round trip
RETRY_SECONDS = 10.0  # a cluster whose queue failed is tried again this often
SHARED_SECONDS = 1.0  # how long the job reconciles of a cluster share one snapshot
MESSAGE_LIMIT = 1024


@dataclass(frozen=True)
class QueueSnapshot:
    """One reading of a cluster's queue: depth per priority and the live workers' last heartbeats."""

    depth: tuple[QueueDepth, ...]
    heartbeats: Mapping[str, Mapping[str, Any]]
    at: float  # time.monotonic() of the reading

    @property
    def backlog(self) -> int:
        return sum(d.waiting + d.in_flight for d in self.depth)

    @property
    def waiting(self) -> int:
        return sum(d.waiting for d in self.depth)

    @property
    def figures(self) -> QueueFigures:
        return QueueFigures(
            depth=self.waiting,
            in_flight=sum(d.in_flight for d in self.depth),
            oldest_item_age_seconds=int(max((d.oldest_age_seconds for d in self.depth), default=0)),
        )

    def busy_with(self, job: str) -> int:
        """Workers translating an item of ``job`` ("namespace/name", as heartbeats name it) now."""
        return sum(1 for hb in self.heartbeats.values() if hb.get("state") == "busy" and hb.get("job") == job)


@dataclass(frozen=True)
class QueueError:
    """Why a cluster's queue could not be used, and when (``time.monotonic()``)."""

    reason: str
    message: str
    at: float


def _read(queue: RedisQueue) -> tuple[list[QueueDepth], dict[str, dict[str, Any]]]:
    return queue.depth(), queue.workers()


@dataclass
class QueueObserver:
    clusters: Mapping[Key, Iterable[dict[str, Any]]]  # the TranslationCluster index
    specs: SpecCache
    connections: Connections
    gate: RedisGate
    on_backlog: Callable[[Key], None] = lambda _key: None
    on_progress: Callable[[Key, set[str]], None] = lambda _key, _uids: None
    on_emptied: Callable[[Key], None] = lambda _key: None
    snapshots: dict[Key, QueueSnapshot] = field(default_factory=dict)
    dropped: dict[Key, int] = field(default_factory=dict)  # snapshots dropped, so a reading under way is not kept
    seen: dict[Key, int] = field(default_factory=dict)  # the backlog the cluster's last reconcile acted on
    read_at: dict[Key, float] = field(default_factory=dict)  # when that reconcile read it
    looked: dict[Key, int] = field(default_factory=dict)  # the backlog the last look found
    cursors: dict[Key, str] = field(default_factory=dict)  # this process' place in each progress stream
    errors: dict[Key, QueueError] = field(default_factory=dict)  # the last failure, until a reading succeeds

    # ---- the snapshot ----
    async def read(
        self,
        key: Key,
        conns: ClusterConnections,
        max_age: float = 0.0,
        wake: Callable[[], None] | None = None,
    ) -> QueueSnapshot:
        """The cluster's snapshot, read now unless one is at most ``max_age`` seconds old. With ``wake`` (the
        cluster reconcile) it is read through the Redis gate and counts as what scaling acted on; ``wake`` is
        called when a probe of a server not known to answer ends. Raises what the reading raised."""
        known = self.snapshots.get(key)
        now = time.monotonic()
        if known is not None and max_age > 0 and now - known.at <= max_age:
            return known
        dropped = self.dropped.get(key, 0)
        read = partial(_read, conns.queue)
        if wake is not None:
            depth, heartbeats = await self.gate.call(conns.queue.r, read, wake=wake)
        else:
            depth, heartbeats = await asyncio.to_thread(read)
        snapshot = QueueSnapshot(tuple(depth), heartbeats, now)
        if self.dropped.get(key, 0) == dropped:
            self.snapshots[key] = snapshot
        if wake is not None:
            self.errors.pop(key, None)
            self.seen[key] = snapshot.backlog
            self.read_at[key] = time.monotonic()
        return snapshot

    def drop(self, key: Key) -> None:
        """The snapshot is out of date: the next reader reads the queue again."""
        self.snapshots.pop(key, None)
        self.dropped[key] = self.dropped.get(key, 0) + 1

    def forget(self, key: Key) -> None:
        """The cluster is gone: stop looking at its queue."""
        self.drop(key)
        self.dropped.pop(key, None)
        for memory in (self.seen, self.read_at, self.looked, self.cursors, self.errors):
            memory.pop(key, None)

    # ---- failures ----
    def worth_trying(self, key: Key) -> bool:
        """An unreachable queue is tried again every RETRY_SECONDS, not on every reconcile: connect timeouts
        would tie up the workers that other clusters need."""
        failed = self.errors.get(key)
        return failed is None or time.monotonic() - failed.at >= RETRY_SECONDS

    def failed(self, key: Key) -> bool:
        return key in self.errors

    def remember_error(self, key: Key, exc: BaseException, consequence: str) -> None:
        """Keep why the cluster's queue could not be used, for its status; log it when it is new.

        A server that has not answered a probe yet (``Unreachable`` without a message) says nothing new: whatever
        was known before stays, and the cluster is looked at again when the probe ends.
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
        previous = self.errors.get(key)
        if previous is None or previous.message != message:
            log.warning("%s/%s: queue unavailable, %s: %s", key[0], key[1], consequence, message)
        self.errors[key] = QueueError(reason, message[:MESSAGE_LIMIT], time.monotonic())

    def problem(self, key: Key) -> QueueProblem | None:
        failed = self.errors.get(key)
        return None if failed is None else QueueProblem(failed.reason, failed.message)

    # ---- the look ----
    async def run(self, interval: float = LOOK_SECONDS) -> None:
        """Look at every watched cluster's queue every ``interval`` seconds (the clusters whose reconcile has read
        their queue). The clusters are read side by side, through the gate, so one Redis that stops answering
        delays nobody else."""
        while True:
            await asyncio.sleep(interval)
            await self.look_once()

    async def look_once(self) -> None:
        keys = list(self.seen)
        looks = await self._look(keys)
        now = time.monotonic()
        every = figures_seconds(len(keys))
        for key, look in zip(keys, looks, strict=True):
            if look is None or key not in self.seen:
                continue
            backlog, touched, policy = look
            if backlog == 0 and self.looked.get(key, 0) > 0:
                self.on_emptied(key)
            self.looked[key] = backlog
            since = now - self.read_at.get(key, float("-inf"))
            if backlog_needs_a_look(policy, self.seen.get(key), backlog, since, every):
                self.seen[key] = backlog
                self.drop(key)
                self.on_backlog(key)
            if touched:
                self.drop(key)  # a worker began or finished an item: heartbeats and depth moved
                self.on_progress(key, touched)

    async def _look(self, keys: list[Key]) -> list[tuple[int, set[str], ScalingPolicy] | None]:
        """For each cluster: its backlog, the jobs with items finished or begun since the last look (taken from
        the queue), and its scaling policy; None when its queue could not be read. Clusters that share a Redis
        are read in one round trip (up to LOOK_BATCH of them)."""
        found: dict[Key, tuple[RedisQueue, ScalingPolicy]] = {}
        by_client: dict[int, list[Key]] = {}
        for key in keys:
            tc = first(self.clusters, key)
            if tc is None:
                self.seen.pop(key, None)
                self.looked.pop(key, None)
                continue
            try:
                spec = self.specs.parse(TranslationClusterSpec, tc)
                conns = await self.connections.for_cluster_async(key[0], key[1], spec)
            except Exception:  # the next reconcile reports it
                continue
            found[key] = (conns.queue, policy_from_spec(spec))
            by_client.setdefault(id(conns.queue.r), []).append(key)
        batches = [g[i : i + LOOK_BATCH] for g in by_client.values() for i in range(0, len(g), LOOK_BATCH)]
        looked: dict[Key, tuple[int, set[str], ScalingPolicy]] = {}

        async def look(batch: list[Key]) -> None:
            queues = [(found[key][0], self.cursors.get(key)) for key in batch]
            try:
                results = await self.gate.call(queues[0][0].r, partial(look_many, queues))
            except Exception:  # the next reconcile reports it
                return
            for key, (backlog, touched, cursor) in zip(batch, results, strict=True):
                self.cursors[key] = cursor
                looked[key] = (backlog, touched, found[key][1])

        await asyncio.gather(*(look(batch) for batch in batches))
        return [looked.get(key) for key in keys]
