"""The work queue: Redis Streams per cluster and priority, one consumer group, at-least-once delivery.

The job controller enqueues a job's planned items; workers ``take`` an item, translate it, write the output to S3
and ``complete`` it (or ``fail`` / ``retry_later``); the cluster controller reads ``depth``, ``backlog``,
``job_stats`` and worker heartbeats to scale and report. Nothing here knows Kubernetes.

Keys (the ``{namespace/cluster}`` hash tag keeps a cluster's queue keys in one Redis Cluster slot)::

    portalis:{ns/cluster}:q:<Priority>   stream of items, consumer group "workers"
    portalis:{ns/cluster}:dlq            dead-lettered items with their reason
    portalis:{ns/cluster}:hb:<worker>    worker heartbeat (JSON, expires)
    portalis:{ns/cluster}:cancelled      sorted set of cancelled job uids (score: when)
    portalis:job:<uid>:stats             hash: done, failed, cached, gpu_ms, lines
    portalis:job:<uid>:done              set of item ids counted as done
    portalis:job:<uid>:failed            hash: item id -> reason
    portalis:job:<uid>:errors            hash: item id -> last transient error (named in the dead-letter reason)
    portalis:job:<uid>:gpu_hours         hash: UTC epoch hour -> GPU milliseconds of items finished in it
    portalis:job:<uid>:enqueued          items enqueued so far (the next plan index to enqueue)
    portalis:job:<uid>:epoch             set on first enqueue; missing while the job runs means the queue was lost

Delivery is at least once: an item taken and not acknowledged within the visibility timeout (its worker died)
is reclaimed by another worker with XAUTOCLAIM, and after ``max_attempts`` deliveries it is dead-lettered.
Counting is exactly once: ``complete`` and ``fail`` record the item id in a set or hash and bump the job's
counters in the same Lua script, only when the id was not there yet; an item is done or failed, never both.

The job controller also holds a suspended job's waiting items (``remove_waiting``) and puts back whatever is
neither done, failed nor queued (``requeue_remaining``) on resume, after a stall, or, with ``mark_done`` for
outputs already in S3, when it rebuilds a lost queue from the job's plan.

The per-job keys carry no hash tag, so the Lua scripts that touch a stream and a job's keys together need a
standalone Redis (or a Redis Cluster where both map to one node).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, cast

import redis
from redis.exceptions import ResponseError, WatchError

log = logging.getLogger("portalis.queue")

PRIORITIES: tuple[str, ...] = ("Interactive", "Batch", "Training", "LowPriority")
DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 360.0
DEAD_LETTER_MAXLEN = 100_000
PROGRESS_MAXLEN = 100_000  # finished items whose jobs a reader can still learn of
CANCELLED_RETENTION_SECONDS = 7 * 24 * 3600
PRIOR_ATTEMPTS_FIELD = "prior_attempts"  # attempts used before a release, carried by the re-added copy
_SCAN_CHUNK = 1000


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _int(value: Any, default: int = 0) -> int:
    if value is None:
        return default
    return int(_s(value))


# --- items -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkItem:
    """One source file of a job to translate, as carried by a stream entry."""

    job_namespace: str
    job_name: str
    job_uid: str
    item_id: str
    source_bucket: str
    source_key: str
    output_bucket: str
    output_key: str
    size_bytes: int
    size_class: str
    priority: str
    max_attempts: int
    source_language: str = "python"
    target_language: str = "rust"
    relative_path: str = ""  # path inside the job's source prefix, as the engine sees it; "" means source_key

    def to_fields(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_fields(cls, raw: dict[Any, Any]) -> WorkItem:
        data = {_s(k): _s(v) for k, v in raw.items()}
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in data:
                kwargs[f.name] = int(data[f.name]) if f.name in ("size_bytes", "max_attempts") else data[f.name]
        return cls(**kwargs)

    @property
    def path(self) -> str:
        return self.relative_path or self.source_key


@dataclass(frozen=True)
class Delivery:
    """An item handed to a worker: the stream entry it came from and how many times it was delivered."""

    item: WorkItem
    stream: str
    entry_id: str
    attempt: int
    consumer: str = ""


@dataclass(frozen=True)
class QueueDepth:
    priority: str
    waiting: int
    in_flight: int
    oldest_age_seconds: float


@dataclass(frozen=True)
class JobStats:
    done: int
    failed: int
    cached: int
    gpu_seconds: float
    lines: int
    failed_items: dict[str, str]
    enqueued: int
    epoch_present: bool


# --- Lua: each runs atomically on the server ---------------------------------------------------------------

# KEYS: done set, stats hash, stream, failed hash, gpu-hours hash, progress stream
# ARGV: item id, outcome, gpu ms, lines, group, entry id, epoch hour, job uid, progress maxlen
_COMPLETE = """
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[9], '*', 'job', ARGV[8])
local added = redis.call('SADD', KEYS[1], ARGV[1])
if added == 1 then
  redis.call('HINCRBY', KEYS[2], 'done', 1)
  if ARGV[2] == 'cached' then redis.call('HINCRBY', KEYS[2], 'cached', 1) end
  redis.call('HINCRBY', KEYS[2], 'gpu_ms', ARGV[3])
  redis.call('HINCRBY', KEYS[2], 'lines', ARGV[4])
  redis.call('HINCRBY', KEYS[5], ARGV[7], ARGV[3])
  if redis.call('HDEL', KEYS[4], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[2], 'failed', -1) end
end
redis.call('XACK', KEYS[3], ARGV[5], ARGV[6])
redis.call('XDEL', KEYS[3], ARGV[6])
return added
"""

# KEYS: failed hash, stats hash, stream, dead-letter stream, done set, progress stream
# ARGV: item id, reason, group, entry id, dead-letter maxlen, job uid, progress maxlen, then the dead-letter
# entry's field/value pairs
_FAIL = """
local counted = 0
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[7], '*', 'job', ARGV[6])
if redis.call('SISMEMBER', KEYS[5], ARGV[1]) == 0 and redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'failed', 1)
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', unpack(ARGV, 8))
  counted = 1
end
redis.call('XACK', KEYS[3], ARGV[3], ARGV[4])
redis.call('XDEL', KEYS[3], ARGV[4])
return counted
"""

# KEYS: stream
# ARGV: group, entry id, consumer, then the copy's field/value pairs
# Only the consumer that holds the entry may put it back; after a reclaim it belongs to another worker.
_RELEASE = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][2] ~= ARGV[3] then return 0 end
if #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 0 then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  return 0
end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""


# KEYS: failed hash, stats hash, done set
# ARGV: item id, reason
_RECORD_FAILURE = """
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 and redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'failed', 1)
  return 1
end
return 0
"""

# KEYS: done set, stats hash, failed hash
# ARGV: item ids
_MARK_DONE = """
local added = 0
for i = 1, #ARGV do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then
    added = added + 1
    if redis.call('HDEL', KEYS[3], ARGV[i]) == 1 then redis.call('HINCRBY', KEYS[2], 'failed', -1) end
  end
end
if added > 0 then redis.call('HINCRBY', KEYS[2], 'done', added) end
return added
"""

# KEYS: stream
# ARGV: group, then entry ids; deletes those no worker holds
_REMOVE_WAITING = """
local removed = 0
for i = 2, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1) == 0 then
    removed = removed + redis.call('XDEL', KEYS[1], ARGV[i])
  end
end
return removed
"""

# KEYS: workers sorted set
# ARGV: now (epoch seconds), heartbeat key prefix
# The heartbeat keys share the queue's hash tag, so reading them here stays on one slot.
_WORKERS = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local names = redis.call('ZRANGE', KEYS[1], 0, -1)
if #names == 0 then return {} end
local values = {}
for first = 1, #names, 1000 do  -- unpack() takes a bounded number of arguments: read in chunks
  local keys = {}
  for i = first, math.min(first + 999, #names) do keys[#keys + 1] = ARGV[2] .. names[i] end
  for _, v in ipairs(redis.call('MGET', unpack(keys))) do values[#values + 1] = v end
end
return {names, values}
"""


class RedisQueue:
    """One cluster's queue on a Redis server; safe to share between threads (redis-py pools connections)."""

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        cluster: str,
        visibility_timeout_seconds: float = DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
        group: str = "workers",
    ) -> None:
        self.r = client
        self.namespace = namespace
        self.cluster = cluster
        self.group = group
        self.visibility_timeout_seconds = visibility_timeout_seconds
        self.prefix = f"portalis:{{{namespace}/{cluster}}}"
        self.dlq = f"{self.prefix}:dlq"
        self.cancelled_key = f"{self.prefix}:cancelled"
        self.progress_key = f"{self.prefix}:progress"  # uids of jobs whose items finished, or that a worker began
        self.workers_key = f"{self.prefix}:workers"  # worker names scored by when their heartbeat expires
        self.jobs_key = f"{self.prefix}:jobs"  # job uid -> "namespace/name", for the jobs with items here
        self._groups_ready = False
        self._last_reclaim = float("-inf")
        self._cancelled_at = float("-inf")
        self._cancelled_cache: set[str] = set()
        self._complete = client.register_script(_COMPLETE)
        self._fail = client.register_script(_FAIL)
        self._release = client.register_script(_RELEASE)
        self._record_failure = client.register_script(_RECORD_FAILURE)
        self._mark_done = client.register_script(_MARK_DONE)
        self._remove_waiting = client.register_script(_REMOVE_WAITING)
        self._workers = client.register_script(_WORKERS)

    # --- keys ---

    def stream(self, priority: str) -> str:
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}; expected one of {', '.join(PRIORITIES)}")
        return f"{self.prefix}:q:{priority}"

    @property
    def streams(self) -> list[str]:
        return [self.stream(p) for p in PRIORITIES]

    def heartbeat_key(self, worker: str) -> str:
        return f"{self.prefix}:hb:{worker}"

    @staticmethod
    def job_key(job_uid: str, what: str) -> str:
        return f"portalis:job:{job_uid}:{what}"

    @property
    def _visibility_ms(self) -> int:
        return max(1, int(self.visibility_timeout_seconds * 1000))

    # --- setup ---

    def ensure_groups(self) -> None:
        """Create every priority stream and its consumer group (reading from the start); idempotent."""
        for stream in self.streams:
            try:
                self.r.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups_ready = True

    def _ready(self) -> None:
        if not self._groups_ready:
            self.ensure_groups()

    # --- producing ---

    def enqueue(self, job_uid: str, items: Sequence[WorkItem], start_index: int, batch_size: int = 500) -> int:
        """Queue ``items`` (the plan's enqueueable items from index ``start_index`` on); returns the job's counter.

        ``items[0]`` is the item at index ``start_index``: pass the whole list with 0, or, to resume,
        ``items[counter:]`` with ``counter`` (``job_stats(uid).enqueued``). Each batch is added and the job's
        ``enqueued`` counter advanced in one MULTI/EXEC under WATCH, and items below the counter are skipped, so
        calling this again after a crash (with the same sequence) never queues an item twice. Raises ValueError
        when ``start_index`` is past the counter (items would be skipped).
        """
        self._ready()
        if items:
            self.r.hset(self.jobs_key, job_uid, f"{items[0].job_namespace}/{items[0].job_name}")
        counter_key = self.job_key(job_uid, "enqueued")
        epoch_key = self.job_key(job_uid, "epoch")
        end = start_index + len(items)
        while True:
            with self.r.pipeline(transaction=True) as pipe:
                try:
                    cast(Any, pipe).watch(counter_key)
                    current = _int(pipe.get(counter_key))
                    if current < start_index:
                        raise ValueError(
                            f"job {job_uid}: {current} items enqueued but asked to enqueue from index {start_index}"
                        )
                    if current >= end:
                        pipe.unwatch()
                        self.r.set(epoch_key, str(time.time()), nx=True)
                        return current
                    batch = items[current - start_index : current - start_index + batch_size]
                    pipe.multi()
                    for item in batch:
                        pipe.xadd(self.stream(item.priority), cast(Any, item.to_fields()))
                    pipe.set(counter_key, current + len(batch))
                    pipe.set(epoch_key, str(time.time()), nx=True)
                    pipe.execute()
                except WatchError:
                    continue
            if current + len(batch) >= end:  # the last batch: counter and epoch were set with it
                return current + len(batch)

    # --- consuming ---

    def take(self, consumer: str, block_ms: int = 1000) -> Delivery | None:
        """The next item for ``consumer``, or None after waiting up to ``block_ms``.

        Order: entries whose worker held them past the visibility timeout (reclaimed, in priority order), then new
        entries in priority order; only when every stream is empty does it block on all of them. Entries of
        cancelled jobs are dropped, and items delivered more than ``max_attempts`` times are dead-lettered.
        """
        self._ready()
        deadline = time.monotonic() + block_ms / 1000.0
        while True:
            try:
                delivery = self._reclaim_due(consumer) or self._read_new(consumer)
                if delivery is None:
                    remaining = int((deadline - time.monotonic()) * 1000)
                    if remaining <= 0:
                        return None
                    delivery = self._read_blocking(consumer, remaining)
                    if delivery is None:
                        return None
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("queue %s: consumer group missing (Redis lost its data?); recreating it", self.prefix)
                self.ensure_groups()
                continue
            admitted = self._admit(delivery)
            if admitted is not None:
                return admitted

    def _delivery(
        self, stream: str, entry_id: Any, raw: dict[Any, Any], times_delivered: int, consumer: str
    ) -> Delivery:
        prior = _int(raw.get(PRIOR_ATTEMPTS_FIELD, raw.get(PRIOR_ATTEMPTS_FIELD.encode())))
        return Delivery(
            item=WorkItem.from_fields(raw),
            stream=stream,
            entry_id=_s(entry_id),
            attempt=prior + times_delivered,
            consumer=consumer,
        )

    def _reclaim(self, consumer: str) -> Delivery | None:
        """Claim one entry idle past the visibility timeout, highest priority first."""
        idle = self._visibility_ms
        pipe = self.r.pipeline(transaction=False)
        for stream in self.streams:
            pipe.xpending_range(stream, self.group, min="-", max="+", count=1, idle=idle)
        candidates = pipe.execute()
        for stream, pending in zip(self.streams, candidates, strict=True):
            for _ in range(3):  # the candidate may have been claimed by another worker or deleted meanwhile
                if not pending:
                    break
                start = _s(pending[0]["message_id"])
                _next, claimed, *_deleted = self.r.xautoclaim(
                    stream, self.group, consumer, min_idle_time=idle, start_id=start, count=1
                )
                for entry_id, raw in claimed:
                    if raw is None:
                        continue
                    info = self.r.xpending_range(stream, self.group, min=entry_id, max=entry_id, count=1)
                    times = int(info[0]["times_delivered"]) if info else 1
                    return self._delivery(stream, entry_id, raw, times, consumer)
                pending = self.r.xpending_range(stream, self.group, min="-", max="+", count=1, idle=idle)
        return None

    def _read_new(self, consumer: str) -> Delivery | None:
        for stream in self.streams:
            got: Any = self.r.xreadgroup(self.group, consumer, {stream: ">"}, count=1)
            for _stream, entries in got or []:
                for entry_id, raw in entries:
                    return self._delivery(stream, entry_id, raw, 1, consumer)
        return None

    def _read_blocking(self, consumer: str, block_ms: int) -> Delivery | None:
        got: Any = self.r.xreadgroup(self.group, consumer, dict.fromkeys(self.streams, ">"), count=1, block=block_ms)
        deliveries = [
            self._delivery(_s(stream), entry_id, raw, 1, consumer)
            for stream, entries in got or []
            for entry_id, raw in entries
        ]
        if not deliveries:
            return None
        # Several streams may answer at once; keep the highest priority and put the others straight back.
        order = {s: i for i, s in enumerate(self.streams)}
        deliveries.sort(key=lambda d: order.get(d.stream, len(order)))
        for extra in deliveries[1:]:
            self.release(extra)
        return deliveries[0]

    def _reclaim_due(self, consumer: str) -> Delivery | None:
        """Reclaim only every so often: an entry can go stale only once per visibility timeout, and looking on
        every take costs four round trips per item."""
        now = time.monotonic()
        if now - self._last_reclaim < min(1.0, self.visibility_timeout_seconds / 2):
            return None
        found = self._reclaim(consumer)
        if found is None:
            self._last_reclaim = now
        return found

    def _cancelled(self, job_uid: str) -> bool:
        """Whether the job was cancelled, from a copy of the cancelled set at most a second old."""
        now = time.monotonic()
        if now - self._cancelled_at > 1.0:
            self._cancelled_cache = {_s(m) for m in cast(list[Any], self.r.zrange(self.cancelled_key, 0, -1))}
            self._cancelled_at = now
        return job_uid in self._cancelled_cache

    def _admit(self, d: Delivery) -> Delivery | None:
        """The delivery if it should be worked on; drops cancelled jobs' entries, dead-letters spent items."""
        if self._cancelled(d.item.job_uid):
            pipe = self.r.pipeline(transaction=True)
            pipe.xack(d.stream, self.group, d.entry_id)
            pipe.xdel(d.stream, d.entry_id)
            pipe.execute()
            log.info("dropped item %s of cancelled job %s", d.item.item_id, d.item.job_uid)
            return None
        if d.attempt > d.item.max_attempts:
            reason = f"exceeded maxAttemptsPerItem ({d.item.max_attempts})"
            last = self.r.hget(self.job_key(d.item.job_uid, "errors"), d.item.item_id)
            if last is not None:
                reason += f"; last error: {_s(last)}"
            self.fail(d, reason)
            log.info("dead-lettered item %s of job %s: %s", d.item.item_id, d.item.job_uid, reason)
            return None
        return d

    # --- outcomes ---

    def complete(self, d: Delivery, outcome: str, gpu_seconds: float, lines: int = 0) -> bool:
        """Count the item as done (``outcome`` "done" or "cached") once, and acknowledge its entry.

        Returns False when the item was already counted (a duplicate delivery); the entry is acknowledged anyway.
        """
        if outcome not in ("done", "cached"):
            raise ValueError(f"outcome must be 'done' or 'cached', not {outcome!r}")
        uid, item_id = d.item.job_uid, d.item.item_id
        added = self._complete(
            keys=[
                self.job_key(uid, "done"), self.job_key(uid, "stats"), d.stream, self.job_key(uid, "failed"),
                self.job_key(uid, "gpu_hours"), self.progress_key,
            ],
            args=[
                item_id, outcome, max(0, round(gpu_seconds * 1000)), max(0, int(lines)), self.group, d.entry_id,
                int(time.time() // 3600), uid, PROGRESS_MAXLEN,
            ],
        )  # fmt: skip
        return bool(added)

    def gpu_ms_by_hour(self, job_uid: str) -> dict[int, int]:
        """GPU milliseconds the job's items used, by the UTC hour (epoch hours) they finished in."""
        raw = self.r.hgetall(self.job_key(job_uid, "gpu_hours"))
        return {int(_s(k)): int(_s(v)) for k, v in cast(dict[Any, Any], raw).items()}

    def fail(self, d: Delivery, reason: str) -> None:
        """Fail the item for good: dead-letter it and record it in the job's failed items once; ack its entry."""
        uid, item_id = d.item.job_uid, d.item.item_id
        dead: dict[str, str] = d.item.to_fields()
        dead.update({"reason": reason, "attempt": str(d.attempt), "failed_at": str(time.time())})
        flat = [part for kv in dead.items() for part in kv]
        self._fail(
            keys=[
                self.job_key(uid, "failed"),
                self.job_key(uid, "stats"),
                d.stream,
                self.dlq,
                self.job_key(uid, "done"),
                self.progress_key,
            ],
            args=[item_id, reason, self.group, d.entry_id, DEAD_LETTER_MAXLEN, uid, PROGRESS_MAXLEN, *flat],
        )

    def retry_later(self, d: Delivery, reason: str) -> None:
        """A transient failure: leave the entry pending, so it is redelivered after the visibility timeout
        (or dead-lettered once its attempts are used up). The reason is kept for the dead-letter record."""
        self.r.hset(self.job_key(d.item.job_uid, "errors"), d.item.item_id, reason[:2000])

    def release(self, d: Delivery) -> bool:
        """Put the item back at once for another worker without using an attempt (graceful shutdown).

        Returns False when this consumer no longer holds the entry (it was reclaimed or finished meanwhile).
        """
        copy = d.item.to_fields()
        copy[PRIOR_ATTEMPTS_FIELD] = str(max(0, d.attempt - 1))
        flat = [part for kv in copy.items() for part in kv]
        consumer = d.consumer
        if not consumer:
            info = self.r.xpending_range(d.stream, self.group, min=d.entry_id, max=d.entry_id, count=1)
            if not info:
                return False
            consumer = _s(info[0]["consumer"])
        return bool(self._release(keys=[d.stream], args=[self.group, d.entry_id, consumer, *flat]))

    # --- observing ---

    def depth(self) -> list[QueueDepth]:
        """Per priority: items waiting to be taken, items in flight, and the age of the oldest waiting item."""
        pipe = self.r.pipeline(transaction=False)
        pipe.time()
        for stream in self.streams:
            pipe.xlen(stream)
            pipe.xpending(stream, self.group)
            pipe.xinfo_groups(stream)
        results = pipe.execute(raise_on_error=False)
        now_s, now_us = results[0]
        now_ms = int(now_s) * 1000 + int(now_us) // 1000
        rows: list[tuple[str, str, int, int, str | None]] = []
        for i, priority in enumerate(PRIORITIES):
            length, pending, groups = results[1 + 3 * i : 4 + 3 * i]
            if isinstance(length, Exception) or isinstance(pending, Exception) or isinstance(groups, Exception):
                rows.append((priority, self.stream(priority), 0, 0, None))
                continue
            in_flight = int(pending["pending"]) if isinstance(pending, dict) else 0
            last = None
            for g in groups:
                if _s(g["name"]) == self.group:
                    last = _s(g["last-delivered-id"])
            rows.append((priority, self.stream(priority), int(length), in_flight, last))
        pipe = self.r.pipeline(transaction=False)
        for _p, stream, length, in_flight, last in rows:
            if length > in_flight:
                pipe.xrange(stream, min=f"({last}" if last and last != "0-0" else "-", max="+", count=1)
        oldest = iter(pipe.execute(raise_on_error=False))
        out = []
        for priority, _stream, length, in_flight, _last in rows:
            age = 0.0
            if length > in_flight:
                first = next(oldest)
                if first and not isinstance(first, Exception):
                    ms = int(_s(first[0][0]).split("-")[0])
                    age = max(0.0, (now_ms - ms) / 1000.0)
            out.append(
                QueueDepth(
                    priority=priority,
                    waiting=max(0, length - in_flight),
                    in_flight=min(in_flight, length),
                    oldest_age_seconds=age,
                )
            )
        return out

    def backlog(self) -> int:
        """Items waiting or in flight, all priorities together."""
        return sum(d.waiting + d.in_flight for d in self.depth())

    def look(self, cursor: str | None) -> tuple[int, set[str], str]:
        """``backlog()`` and ``progress_since(cursor)`` in one round trip (the operator asks every cluster's
        queue for both twice a second). Items waiting or in flight are the entries left in the streams: an
        item's entry is deleted when it is acknowledged."""
        return look_many([(self, cursor)])[0]

    def _ask_look(self, pipe: Any, cursor: str | None) -> int:
        """Queue ``look``'s commands on ``pipe``; returns how many replies they make."""
        for stream in self.streams:
            pipe.xlen(stream)
        if cursor is None:
            pipe.xrevrange(self.progress_key, count=1)
        else:
            self._progress_page(pipe, cursor)
        return len(self.streams) + 1

    def _read_look(self, cursor: str | None, replies: list[Any]) -> tuple[int, set[str], str]:
        *lengths, entries = replies
        backlog = sum(int(n) for n in lengths)
        if cursor is None:
            return backlog, set(), _last_id(entries)
        return backlog, *self._read_progress(cursor, entries)

    def progress_since(self, cursor: str | None) -> tuple[set[str], str]:
        """Uids of the jobs that had an item finished (done or failed) or begun after ``cursor``, and the new
        cursor.

        Completing or failing an item appends its job's uid to the queue's progress stream in the same script
        that counts it; a worker beginning an item of a job after another job's does so with its heartbeat. Each
        reader keeps its own cursor, so an operator reading it takes nothing from another (one taking over, say).
        ``None`` starts from now (a new reader reconciles everything anyway); the stream keeps about
        PROGRESS_MAXLEN entries, and a reader further behind than that waits for its periodic look.
        """
        if cursor is None:
            return set(), _last_id(self.r.xrevrange(self.progress_key, count=1))
        return self._read_progress(cursor, self._progress_page(self.r, cursor))

    def _progress_page(self, r: Any, cursor: str) -> Any:
        """Up to _SCAN_CHUNK progress entries after ``cursor`` (``r``: the client or a pipeline)."""
        return r.xrange(self.progress_key, min=f"({cursor}", max="+", count=_SCAN_CHUNK)

    def _read_progress(self, cursor: str, entries: Any) -> tuple[set[str], str]:
        """The job uids in ``entries`` (the page read after ``cursor``) and in the pages after it, and the cursor
        past the last of them."""
        uids: set[str] = set()
        while True:
            for entry_id, raw in entries:
                cursor = _s(entry_id)
                uids.add(_s(raw.get(b"job", raw.get("job", ""))))
            if len(entries) < _SCAN_CHUNK:
                return uids - {""}, cursor
            entries = self._progress_page(self.r, cursor)

    def dead_letters(self, count: int = 100) -> list[tuple[WorkItem, str]]:
        """The oldest ``count`` dead-lettered items with the reason each was set aside."""
        out = []
        entries: Any = self.r.xrange(self.dlq, min="-", max="+", count=count)
        for _id, raw in entries:
            data = {_s(k): _s(v) for k, v in raw.items()}
            out.append((WorkItem.from_fields(data), data.get("reason", "")))
        return out

    def job_stats(self, job_uid: str) -> JobStats:
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.job_key(job_uid, "stats"))
        pipe.hgetall(self.job_key(job_uid, "failed"))
        pipe.get(self.job_key(job_uid, "enqueued"))
        pipe.exists(self.job_key(job_uid, "epoch"))
        stats_raw, failed_raw, enqueued, epoch = pipe.execute()
        stats = {_s(k): _int(v) for k, v in stats_raw.items()}
        return JobStats(
            done=stats.get("done", 0),
            failed=stats.get("failed", 0),
            cached=stats.get("cached", 0),
            gpu_seconds=stats.get("gpu_ms", 0) / 1000.0,
            lines=stats.get("lines", 0),
            failed_items={_s(k): _s(v) for k, v in failed_raw.items()},
            enqueued=_int(enqueued),
            epoch_present=bool(epoch),
        )

    # --- job lifecycle ---

    def _job_entries(self, job_uid: str) -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
        """The job's entries (waiting or in flight) per stream, in chunks, scanning every priority stream."""
        for stream in self.streams:
            start = "-"
            while True:
                chunk: Any = self.r.xrange(stream, min=start, max="+", count=_SCAN_CHUNK)
                if not chunk:
                    break
                mine = []
                for entry_id, raw in chunk:
                    data = {_s(k): _s(v) for k, v in raw.items()}
                    if data.get("job_uid") == job_uid:
                        mine.append((_s(entry_id), data))
                if mine:
                    yield stream, mine
                if len(chunk) < _SCAN_CHUNK:
                    break
                start = f"({_s(chunk[-1][0])}"

    def cancel_job(self, job_uid: str) -> int:
        """Remove every entry of the job, waiting or in flight, and drop any that workers still hand in.

        Cancellation is final for the job uid: entries of it queued later are dropped when taken.
        Returns how many entries were removed.
        """
        self._cancelled_at = float("-inf")  # this process sees the cancellation at once; others within 1 s
        now = time.time()
        self.r.zadd(self.cancelled_key, {job_uid: now})
        self.r.zremrangebyscore(self.cancelled_key, "-inf", now - CANCELLED_RETENTION_SECONDS)
        removed = 0
        for stream, entries in self._job_entries(job_uid):
            ids = [entry_id for entry_id, _data in entries]
            pipe = self.r.pipeline(transaction=True)
            pipe.xack(stream, self.group, *ids)
            pipe.xdel(stream, *ids)
            removed += int(pipe.execute()[1])
        return removed

    def remove_waiting(self, job_uid: str) -> int:
        """Remove the job's entries that no worker holds (suspending the job); items in flight finish.

        Returns how many were removed; ``requeue_remaining`` puts them back.
        """
        removed = 0
        for stream, entries in self._job_entries(job_uid):
            removed += int(self._remove_waiting(keys=[stream], args=[self.group, *(e for e, _d in entries)]))
        return removed

    def requeue_remaining(self, job_uid: str, items: Sequence[WorkItem]) -> int:
        """Queue again every item of ``items`` (the job's whole queueable plan) that is neither done, failed, nor
        in the queue already: resuming a suspended job, recovering stalled items, rebuilding a lost queue.

        Also records the whole plan as enqueued (and the epoch), so a later ``enqueue`` does not add it twice.
        Returns how many items were queued. Does nothing for a cancelled job.
        """
        self._ready()
        if self.r.zscore(self.cancelled_key, job_uid) is not None:
            return 0
        if items:
            self.r.hset(self.jobs_key, job_uid, f"{items[0].job_namespace}/{items[0].job_name}")
        pipe = self.r.pipeline(transaction=False)
        pipe.smembers(self.job_key(job_uid, "done"))
        pipe.hkeys(self.job_key(job_uid, "failed"))
        pipe.get(self.job_key(job_uid, "enqueued"))
        done_raw, failed_raw, counter = pipe.execute()
        settled = {_s(i) for i in done_raw} | {_s(i) for i in failed_raw}
        present = {data.get("item_id") for _stream, entries in self._job_entries(job_uid) for _e, data in entries}
        missing = [it for it in items if it.item_id not in settled and it.item_id not in present]
        for first in range(0, max(len(missing), 1), 500):
            pipe = self.r.pipeline(transaction=True)
            for item in missing[first : first + 500]:
                pipe.xadd(self.stream(item.priority), cast(Any, item.to_fields()))
            pipe.set(self.job_key(job_uid, "enqueued"), max(_int(counter), len(items)))
            pipe.set(self.job_key(job_uid, "epoch"), str(time.time()), nx=True)
            pipe.execute()
        return len(missing)

    def record_failure(self, job_uid: str, item_id: str, reason: str) -> bool:
        """Count an item that never reaches a worker (too large to queue) as failed, once."""
        return bool(
            self._record_failure(
                keys=[self.job_key(job_uid, "failed"), self.job_key(job_uid, "stats"), self.job_key(job_uid, "done")],
                args=[item_id, reason],
            )
        )

    def mark_done(self, job_uid: str, item_ids: Sequence[str]) -> int:
        """Count items as done without a delivery (their outputs were found when rebuilding a lost queue).

        Returns how many were newly counted.
        """
        added = 0
        ids = list(item_ids)
        for first in range(0, len(ids), 1000):
            added += int(
                self._mark_done(
                    keys=[
                        self.job_key(job_uid, "done"),
                        self.job_key(job_uid, "stats"),
                        self.job_key(job_uid, "failed"),
                    ],
                    args=ids[first : first + 1000],
                )
            )
        return added

    def done_ids(self, job_uid: str) -> set[str]:
        """Ids of the job's items counted as done."""
        return {_s(i) for i in self.r.smembers(self.job_key(job_uid, "done"))}

    def forget_job(self, job_uid: str) -> None:
        """Delete the job's counters and sets (after ``cancel_job``), when its TranslationJob is deleted."""
        self.r.delete(
            *(
                self.job_key(job_uid, what)
                for what in ("stats", "done", "failed", "errors", "enqueued", "epoch", "gpu_hours")
            )
        )
        self.r.hdel(self.jobs_key, job_uid)

    def job_uids(self) -> dict[str, str]:
        """The jobs this queue holds items or counters for (until ``forget_job``): uid -> "namespace/name"."""
        return {_s(u): _s(n) for u, n in cast(dict[Any, Any], self.r.hgetall(self.jobs_key)).items()}

    # --- workers ---

    def heartbeat(
        self,
        worker: str,
        state: str,
        item_id: str | None = None,
        job: str | None = None,
        ttl_seconds: int = 15,
        started: str | None = None,
    ) -> None:
        """Say that ``worker`` is alive and busy or idle; the key expires when heartbeats stop.

        The worker's name also goes into the queue's ``workers`` sorted set, scored by when its heartbeat
        expires, so that ``workers`` reads the live ones in one script instead of scanning the keyspace.
        ``started``: the uid of a job this worker has just begun an item of, after none or another job's; it is
        appended to the progress stream, so that the operator, which does not poll jobs waiting in the queue,
        looks at that job and reports the item in flight."""
        ttl = max(1, int(ttl_seconds))
        body = json.dumps({"state": state, "item": item_id, "job": job, "ts": time.time()})
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.heartbeat_key(worker), body, ex=ttl)
        pipe.zadd(self.workers_key, {worker: time.time() + ttl})
        if started:
            pipe.xadd(self.progress_key, {"job": started}, maxlen=PROGRESS_MAXLEN, approximate=True)
        pipe.execute()

    def workers(self) -> dict[str, dict[str, Any]]:
        """Live workers by name, each with its last heartbeat."""
        found: Any = self._workers(keys=[self.workers_key], args=[time.time(), self.heartbeat_key("")])
        out: dict[str, dict[str, Any]] = {}
        if not found:
            return out
        names, values = found
        for name, value in zip(names, values, strict=True):
            if value is None:
                continue
            try:
                beat = json.loads(_s(value))
            except ValueError:
                continue
            if isinstance(beat, dict):
                out[_s(name)] = beat
        return out


def look_many(queues: Sequence[tuple[RedisQueue, str | None]]) -> list[tuple[int, set[str], str]]:
    """``queue.look(cursor)`` for each of ``queues``, which share one Redis client, in one round trip: the
    operator looks at every cluster's queue twice a second, and clusters commonly share a Redis."""
    if not queues:
        return []
    pipe = queues[0][0].r.pipeline(transaction=False)
    counts = [queue._ask_look(pipe, cursor) for queue, cursor in queues]
    replies = pipe.execute()
    out, at = [], 0
    for (queue, cursor), n in zip(queues, counts, strict=True):
        out.append(queue._read_look(cursor, replies[at : at + n]))
        at += n
    return out


def _last_id(entries: Any) -> str:
    """The id of the first of ``entries`` (an XREVRANGE's newest), or "0-0" when there is none."""
    return _s(entries[0][0]) if entries else "0-0"


def redis_client(url: str, max_connections: int | None = None, socket_timeout: float = 30) -> redis.Redis:
    """A client for the Redis at ``url``. Workers keep the default 30 s so a blocking take finishes before the
    socket gives up; the operator, which never blocks on the queue, passes a short timeout so a Redis that
    accepts connections but never answers cannot hold its reconcile workers."""
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=min(5, socket_timeout),
        socket_keepalive=True,
        health_check_interval=15,
        retry_on_timeout=socket_timeout >= 30,
        max_connections=max_connections,
    )


def queue_for(url: str, namespace: str, cluster: str, **kw: Any) -> RedisQueue:
    """A queue on the Redis at ``url`` with a client of its own."""
    return RedisQueue(redis_client(url), namespace, cluster, **kw)
