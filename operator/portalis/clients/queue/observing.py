"""Observing: depth per priority, the backlog and the progress stream (what the operator reads to scale and to
report jobs), live workers, and dead letters."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from portalis.clients.queue.base import DEAD_WORKER_MEMORY_SECONDS, SCAN_CHUNK, QueueBase
from portalis.clients.queue.items import PRIORITIES, QueueDepth, WorkItem, as_str


class Observing(QueueBase):
    """What the operator reads from the queue."""

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
                if as_str(g["name"]) == self.group:
                    last = as_str(g["last-delivered-id"])
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
                    ms = int(as_str(first[0][0]).split("-")[0])
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
        """Up to SCAN_CHUNK progress entries after ``cursor`` (``r``: the client or a pipeline)."""
        return r.xrange(self.progress_key, min=f"({cursor}", max="+", count=SCAN_CHUNK)

    def _read_progress(self, cursor: str, entries: Any) -> tuple[set[str], str]:
        """The job uids in ``entries`` (the page read after ``cursor``) and in the pages after it, and the cursor
        past the last of them."""
        uids: set[str] = set()
        while True:
            for entry_id, raw in entries:
                cursor = as_str(entry_id)
                uids.add(as_str(raw.get(b"job", raw.get("job", ""))))
            if len(entries) < SCAN_CHUNK:
                return uids - {""}, cursor
            entries = self._progress_page(self.r, cursor)

    def dead_letters(self, count: int = 100) -> list[tuple[WorkItem, str]]:
        """The oldest ``count`` dead-lettered items with the reason each was set aside."""
        out = []
        entries: Any = self.r.xrange(self.dlq, min="-", max="+", count=count)
        for _id, raw in entries:
            data = {as_str(k): as_str(v) for k, v in raw.items()}
            out.append((WorkItem.from_fields(data), data.get("reason", "")))
        return out

    def workers(self) -> dict[str, dict[str, Any]]:
        """Live workers by name, each with its last heartbeat."""
        found: Any = self._workers(
            keys=[self.workers_key], args=[time.time(), self.heartbeat_key(""), DEAD_WORKER_MEMORY_SECONDS]
        )
        out: dict[str, dict[str, Any]] = {}
        if not found:
            return out
        names, values = found
        for name, value in zip(names, values, strict=True):
            if value is None:
                continue
            try:
                beat = json.loads(as_str(value))
            except ValueError:
                continue
            if isinstance(beat, dict):
                out[as_str(name)] = beat
        return out


def look_many(queues: Sequence[tuple[Observing, str | None]]) -> list[tuple[int, set[str], str]]:
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
    return as_str(entries[0][0]) if entries else "0-0"
