"""Consuming: workers take items (first those a dead worker held, then those whose worker went quiet past the
visibility timeout, then new ones), complete, fail, retry or release them, and say they are alive with heartbeats.

A worker's heartbeat key expires a few seconds after its last beat. Once it has, the worker is dead (crashed, OOM
killed, its node lost) and the next worker that takes an item claims what the dead one held, within seconds rather
than after the visibility timeout. A worker that beats is never robbed: its items wait for it however long they take.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any, cast

from redis.exceptions import ResponseError

from portalis.clients.queue.base import PROGRESS_MAXLEN, QueueBase
from portalis.clients.queue.items import PRIOR_ATTEMPTS_FIELD, Delivery, WorkItem, as_int, as_str

log = logging.getLogger("portalis.queue")

DEAD_LETTER_MAXLEN = 100_000
GONE_CONSUMER_IDLE_MS = 600_000  # a dead worker with nothing pending leaves the consumer group after this


class Consuming(QueueBase):
    """What a worker does with the queue."""

    def take(self, consumer: str, block_ms: int = 1000) -> Delivery | None:
        """The next item for ``consumer``, or None after waiting up to ``block_ms``.

        Order: entries held by a worker whose heartbeat expired, then entries whose worker held them past the
        visibility timeout (both reclaimed in priority order), then new entries in priority order; only when every
        stream is empty does it block on all of them. Entries of
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
        prior = as_int(raw.get(PRIOR_ATTEMPTS_FIELD, raw.get(PRIOR_ATTEMPTS_FIELD.encode())))
        return Delivery(
            item=WorkItem.from_fields(raw),
            stream=stream,
            entry_id=as_str(entry_id),
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
                start = as_str(pending[0]["message_id"])
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
            self._delivery(as_str(stream), entry_id, raw, 1, consumer)
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

    def _orphaned(self, consumer: str) -> Delivery | None:
        """Claim one entry a dead worker (its heartbeat expired) held, highest priority first."""
        found: Any = self._orphan(
            keys=[self.workers_key, *self.streams], args=[self.group, time.time(), consumer, GONE_CONSUMER_IDLE_MS]
        )
        if not found:
            return None
        stream, entry_id, flat, times, dead = found
        raw = {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
        log.info("claimed %s from worker %s, whose heartbeat expired", as_str(entry_id), as_str(dead))
        return self._delivery(as_str(stream), entry_id, raw, int(times), consumer)

    def _reclaim_due(self, consumer: str) -> Delivery | None:
        """Reclaim only every so often: a worker dies or an entry goes stale rarely, and looking on every take costs
        round trips per item. While a look finds something, the next take looks again at once."""
        now = time.monotonic()
        if now - self._last_reclaim < min(1.0, self.visibility_timeout_seconds / 2):
            return None
        found = self._orphaned(consumer) or self._reclaim(consumer)
        if found is None:
            self._last_reclaim = now
        return found

    def _cancelled(self, job_uid: str) -> bool:
        """Whether the job was cancelled, from a copy of the cancelled set at most a second old."""
        now = time.monotonic()
        if now - self._cancelled_at > 1.0:
            self._cancelled_cache = {as_str(m) for m in cast(list[Any], self.r.zrange(self.cancelled_key, 0, -1))}
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
                reason += f"; last error: {as_str(last)}"
            self.fail(d, reason)
            log.info("dead-lettered item %s of job %s: %s", d.item.item_id, d.item.job_uid, reason)
            return None
        return d

    # --- outcomes ---

    def complete(
        self,
        d: Delivery,
        outcome: str,
        gpu_seconds: float,
        lines: int = 0,
        *,
        verdict: str = "",
        diagnostics: Sequence[str] = (),
        tokens: int = 0,
    ) -> bool:
        """Count the item as done (``outcome`` "done" or "cached") once, and acknowledge its entry.

        ``verdict`` is what the compile check said ("compiles", "translated", or "" when the job does not check),
        ``diagnostics`` the compiler's first errors and ``tokens`` the model tokens the item used; they are
        counted with the item, once. Returns False when the item was already counted (a duplicate delivery); the
        entry is acknowledged anyway.
        """
        if outcome not in ("done", "cached"):
            raise ValueError(f"outcome must be 'done' or 'cached', not {outcome!r}")
        uid, item_id = d.item.job_uid, d.item.item_id
        added = self._complete(
            keys=[
                self.job_key(uid, "done"),
                self.job_key(uid, "stats"),
                d.stream,
                self.job_key(uid, "failed"),
                self.job_key(uid, "gpu_hours"),
                self.progress_key,
                self.job_key(uid, "diagnostics"),
                self.job_key(uid, "compiles"),
            ],
            args=[
                item_id,
                outcome,
                max(0, round(gpu_seconds * 1000)),
                max(0, int(lines)),
                self.group,
                d.entry_id,
                int(time.time() // 3600),
                uid,
                PROGRESS_MAXLEN,
                verdict,
                max(0, int(tokens)),
                json.dumps(list(diagnostics)) if diagnostics else "",
            ],
        )
        return bool(added)

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
            consumer = as_str(info[0]["consumer"])
        return bool(self._release(keys=[d.stream], args=[self.group, d.entry_id, consumer, *flat]))

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
