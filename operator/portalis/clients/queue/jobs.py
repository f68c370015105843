"""Job bookkeeping: enqueueing a job's plan exactly once, its exactly-once counters, and holding, resuming,
rebuilding, cancelling and forgetting it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any, cast

from redis.exceptions import WatchError

from portalis.clients.queue.base import SCAN_CHUNK, QueueBase
from portalis.clients.queue.items import JobStats, WorkItem, as_int, as_str

CANCELLED_RETENTION_SECONDS = 7 * 24 * 3600


class JobBook(QueueBase):
    """What the job controller does with the queue."""

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
                    current = as_int(pipe.get(counter_key))
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

    def job_stats(self, job_uid: str) -> JobStats:
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.job_key(job_uid, "stats"))
        pipe.hgetall(self.job_key(job_uid, "failed"))
        pipe.get(self.job_key(job_uid, "enqueued"))
        pipe.exists(self.job_key(job_uid, "epoch"))
        pipe.hgetall(self.job_key(job_uid, "diagnostics"))
        stats_raw, failed_raw, enqueued, epoch, diagnostics_raw = pipe.execute()
        stats = {as_str(k): as_int(v) for k, v in stats_raw.items()}
        return JobStats(
            done=stats.get("done", 0),
            failed=stats.get("failed", 0),
            cached=stats.get("cached", 0),
            gpu_seconds=stats.get("gpu_ms", 0) / 1000.0,
            lines=stats.get("lines", 0),
            failed_items={as_str(k): as_str(v) for k, v in failed_raw.items()},
            enqueued=as_int(enqueued),
            epoch_present=bool(epoch),
            compiles=stats.get("compiles", 0),
            tokens=stats.get("tokens", 0),
            diagnostics={as_str(k): _diagnostics(v) for k, v in diagnostics_raw.items()},
        )

    def gpu_ms_by_hour(self, job_uid: str) -> dict[int, int]:
        """GPU milliseconds the job's items used, by the UTC hour (epoch hours) they finished in."""
        raw = self.r.hgetall(self.job_key(job_uid, "gpu_hours"))
        return {int(as_str(k)): int(as_str(v)) for k, v in cast(dict[Any, Any], raw).items()}

    # --- job lifecycle ---

    def _job_entries(self, job_uid: str) -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
        """The job's entries (waiting or in flight) per stream, in chunks, scanning every priority stream."""
        for stream in self.streams:
            start = "-"
            while True:
                chunk: Any = self.r.xrange(stream, min=start, max="+", count=SCAN_CHUNK)
                if not chunk:
                    break
                mine = []
                for entry_id, raw in chunk:
                    data = {as_str(k): as_str(v) for k, v in raw.items()}
                    if data.get("job_uid") == job_uid:
                        mine.append((as_str(entry_id), data))
                if mine:
                    yield stream, mine
                if len(chunk) < SCAN_CHUNK:
                    break
                start = f"({as_str(chunk[-1][0])}"

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
        settled = {as_str(i) for i in done_raw} | {as_str(i) for i in failed_raw}
        present = {data.get("item_id") for _stream, entries in self._job_entries(job_uid) for _e, data in entries}
        missing = [it for it in items if it.item_id not in settled and it.item_id not in present]
        for first in range(0, max(len(missing), 1), 500):
            pipe = self.r.pipeline(transaction=True)
            for item in missing[first : first + 500]:
                pipe.xadd(self.stream(item.priority), cast(Any, item.to_fields()))
            pipe.set(self.job_key(job_uid, "enqueued"), max(as_int(counter), len(items)))
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
        return {as_str(i) for i in self.r.smembers(self.job_key(job_uid, "done"))}

    def compiled_ids(self, job_uid: str) -> set[str]:
        """Ids of the job's done items whose output the target's compiler accepted."""
        return {as_str(i) for i in self.r.smembers(self.job_key(job_uid, "compiles"))}

    def forget_job(self, job_uid: str) -> None:
        """Delete the job's counters and sets (after ``cancel_job``), when its TranslationJob is deleted."""
        self.r.delete(
            *(
                self.job_key(job_uid, what)
                for what in (
                    "stats",
                    "done",
                    "failed",
                    "errors",
                    "enqueued",
                    "epoch",
                    "gpu_hours",
                    "diagnostics",
                    "compiles",
                )
            )
        )
        self.r.hdel(self.jobs_key, job_uid)

    def job_uids(self) -> dict[str, str]:
        """The jobs this queue holds items or counters for (until ``forget_job``): uid -> "namespace/name"."""
        return {as_str(u): as_str(n) for u, n in cast(dict[Any, Any], self.r.hgetall(self.jobs_key)).items()}


def _diagnostics(raw: Any) -> list[str]:
    """A diagnostics hash value: the JSON list the worker stored (anything else as one line)."""
    try:
        decoded = json.loads(as_str(raw))
    except ValueError:
        return [as_str(raw)]
    return [str(d) for d in decoded] if isinstance(decoded, list) else [str(decoded)]
