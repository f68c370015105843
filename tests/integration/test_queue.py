"""The Redis Streams work queue against a real redis-server: ordering, redelivery, counting and recovery."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, overload

import pytest
import redis

from portalis.clients.queue import PRIORITIES, Delivery, RedisQueue, WorkItem, look_many, queue_for
from portalis.clients.queue.base import DEAD_WORKER_MEMORY_SECONDS
from portalis.clients.queue.items import as_str
from portalis_devcluster.servers import RedisServer

VISIBILITY = 1.0  # seconds; short so redelivery tests run fast


def make_items(
    uid: str, n: int, priority: str = "Batch", max_attempts: int = 3, start: int = 0, job: str = "job"
) -> list[WorkItem]:
    return [
        WorkItem(
            job_namespace="team-a",
            job_name=job,
            job_uid=uid,
            item_id=f"{i:06d}",
            source_bucket="src",
            source_key=f"repo/mod_{i}.py",
            output_bucket="out",
            output_key=f"translations/team-a/{job}/mod_{i}.rs",
            size_bytes=100 + i,
            size_class="tiny",
            priority=priority,
            max_attempts=max_attempts,
            relative_path=f"mod_{i}.py",
        )
        for i in range(start, start + n)
    ]


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(redis_server.url)
    yield r
    r.close()


@pytest.fixture
def queue(client: redis.Redis) -> RedisQueue:
    """A queue whose items are never reclaimed during a test (nothing here waits five minutes)."""
    q = RedisQueue(client, "team-a", f"c-{uuid.uuid4().hex[:8]}", visibility_timeout_seconds=300)
    q.ensure_groups()
    return q


@pytest.fixture
def fast_queue(client: redis.Redis) -> RedisQueue:
    """A queue with a short visibility timeout, for the redelivery tests."""
    q = RedisQueue(client, "team-a", f"c-{uuid.uuid4().hex[:8]}", visibility_timeout_seconds=VISIBILITY)
    q.ensure_groups()
    return q


def uid() -> str:
    return str(uuid.uuid4())


def drain(q: RedisQueue, consumer: str = "drain") -> list[Delivery]:
    out = []
    while (d := q.take(consumer, block_ms=0)) is not None:
        out.append(d)
    return out


def entries(q: RedisQueue) -> list[dict[str, str]]:
    found = []
    for stream in q.streams:
        entries: Any = q.r.xrange(stream)
        for _id, raw in entries:
            found.append({k.decode(): v.decode() for k, v in raw.items()})
    return found


def test_work_item_round_trips_through_stream_fields() -> None:
    item = make_items("u", 1)[0]
    fields = item.to_fields()
    assert all(isinstance(v, str) for v in fields.values())
    assert WorkItem.from_fields({k.encode(): v.encode() for k, v in fields.items()}) == item
    assert WorkItem.from_fields({**fields, "unknown": "x"}) == item
    assert item.path == "mod_0.py"
    unchecked = dataclasses.replace(item, verify=False)
    assert WorkItem.from_fields(unchecked.to_fields()) == unchecked
    legacy = {k: v for k, v in fields.items() if k != "verify"}  # an item queued before outcomes were counted
    assert WorkItem.from_fields(legacy).verify is True


def test_outcomes_tokens_and_diagnostics_are_counted_once_with_the_item(queue: RedisQueue) -> None:
    job = uid()
    queue.enqueue(job, make_items(job, 3), 0)
    good, bad, plain = drain(queue)
    assert queue.complete(good, "done", 1.0, verdict="compiles", tokens=120)
    assert queue.complete(bad, "done", 1.0, verdict="translated", diagnostics=["a.rs:1:1: error: x"], tokens=80)
    assert queue.complete(plain, "cached", 0.0)
    assert not queue.complete(good, "done", 1.0, verdict="compiles", tokens=120)  # a duplicate delivery
    assert not queue.complete(bad, "done", 1.0, verdict="compiles", diagnostics=["other"], tokens=80)
    stats = queue.job_stats(job)
    assert (stats.done, stats.compiles, stats.tokens) == (3, 1, 200)
    assert stats.diagnostics == {bad.item.item_id: ["a.rs:1:1: error: x"]}
    assert queue.compiled_ids(job) == {good.item.item_id}
    queue.forget_job(job)
    assert (queue.job_stats(job).diagnostics, queue.compiled_ids(job)) == ({}, set())


class CrashingItems(Sequence[WorkItem]):
    """The plan's items, but the process 'dies' when it reaches the batch starting at ``crash_at``."""

    def __init__(self, items: list[WorkItem], crash_at: int) -> None:
        self.items = items
        self.crash_at = crash_at

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, i: int) -> WorkItem: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[WorkItem]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice) and (i.start or 0) >= self.crash_at:
            raise SystemExit("operator killed")
        return self.items[i]


def test_enqueue_is_idempotent_across_a_crash(queue: RedisQueue) -> None:
    job = uid()
    items = make_items(job, 100)
    with pytest.raises(SystemExit):
        queue.enqueue(job, CrashingItems(items, crash_at=30), 0, batch_size=10)
    assert queue.job_stats(job).enqueued == 30  # three whole batches, nothing of the fourth
    assert queue.job_stats(job).epoch_present

    assert queue.enqueue(job, items, 0, batch_size=10) == 100  # the restarted controller enqueues everything again
    assert queue.enqueue(job, items, 0) == 100
    assert queue.enqueue(job, items[60:], 60) == 100
    ids = [e["item_id"] for e in entries(queue)]
    assert sorted(ids) == [f"{i:06d}" for i in range(100)]  # each item exactly once

    more = make_items(job, 5, start=100)
    assert queue.enqueue(job, more, 100) == 105
    with pytest.raises(ValueError, match="from index 200"):
        queue.enqueue(job, make_items(job, 1, start=200), 200)
    assert len(entries(queue)) == 105


def test_interactive_items_are_taken_before_waiting_batch_items(queue: RedisQueue) -> None:
    batch_job, interactive_job = uid(), uid()
    queue.enqueue(batch_job, make_items(batch_job, 1000), 0)
    queue.enqueue(interactive_job, make_items(interactive_job, 1, priority="Interactive", job="urgent"), 0)
    first = queue.take("w1")
    assert first is not None and first.item.priority == "Interactive" and first.item.job_uid == interactive_job
    second = queue.take("w1")
    assert second is not None and second.item.job_uid == batch_job and second.item.item_id == "000000"
    low = uid()
    queue.enqueue(low, make_items(low, 1, priority="LowPriority"), 0)
    training = uid()
    queue.enqueue(training, make_items(training, 1, priority="Training"), 0)
    taken = [queue.take("w1") for _ in range(998)]
    assert all(taken)
    assert {d.item.job_uid for d in taken if d} == {batch_job}
    assert len({d.item.item_id for d in taken if d}) == 998
    assert [d.item.priority for d in drain(queue)] == ["Batch", "Training", "LowPriority"]


def test_a_blocking_take_wakes_up_for_a_new_item(queue: RedisQueue) -> None:
    job = uid()
    timer = threading.Timer(0.3, lambda: queue.enqueue(job, make_items(job, 1, priority="Interactive"), 0))
    timer.start()
    started = time.monotonic()
    d = queue.take("w1", block_ms=5000)
    assert d is not None and d.item.job_uid == job
    assert time.monotonic() - started < 3
    assert queue.take("w1", block_ms=200) is None


def test_an_unacknowledged_item_is_redelivered_after_the_visibility_timeout(fast_queue: RedisQueue) -> None:
    queue = fast_queue
    job = uid()
    queue.enqueue(job, make_items(job, 1), 0)
    first = queue.take("w1")
    assert first is not None and first.attempt == 1 and first.consumer == "w1"
    assert queue.take("w2", block_ms=0) is None  # still invisible to others
    time.sleep(VISIBILITY + 0.2)
    second = queue.take("w2", block_ms=0)
    assert second is not None
    assert (second.item, second.entry_id, second.attempt, second.consumer) == (first.item, first.entry_id, 2, "w2")

    # Both deliveries finish (w1 was only slow, not dead): the item is counted once.
    assert queue.complete(second, "done", gpu_seconds=1.5, lines=10) is True
    assert queue.complete(first, "done", gpu_seconds=1.5, lines=10) is False
    stats = queue.job_stats(job)
    assert (stats.done, stats.cached, stats.failed, stats.lines) == (1, 0, 0, 10)
    assert stats.gpu_seconds == pytest.approx(1.5)
    assert queue.backlog() == 0


def test_items_are_dead_lettered_after_max_attempts(fast_queue: RedisQueue) -> None:
    queue = fast_queue
    job = uid()
    queue.enqueue(job, make_items(job, 1, max_attempts=2), 0)
    d1 = queue.take("w1")
    assert d1 is not None and d1.attempt == 1
    queue.retry_later(d1, "engine timed out after 300s")
    time.sleep(VISIBILITY + 0.2)
    d2 = queue.take("w2")
    assert d2 is not None and d2.attempt == 2
    queue.retry_later(d2, "HTTP 503 from the model server")
    time.sleep(VISIBILITY + 0.2)
    assert queue.take("w3", block_ms=0) is None  # a third delivery would exceed maxAttemptsPerItem
    [(item, reason)] = queue.dead_letters()
    assert item == d1.item
    assert reason.startswith("exceeded maxAttemptsPerItem (2)")
    assert "HTTP 503" in reason
    stats = queue.job_stats(job)
    assert stats.failed == 1 and stats.done == 0
    assert stats.failed_items == {"000000": reason}
    assert queue.backlog() == 0


def test_fail_counts_once_and_a_later_success_wins(fast_queue: RedisQueue) -> None:
    queue = fast_queue
    job = uid()
    queue.enqueue(job, make_items(job, 2), 0)
    a = queue.take("w1")
    assert a is not None
    time.sleep(VISIBILITY + 0.2)
    a_again = queue.take("w2")
    assert a_again is not None and a_again.item == a.item
    queue.fail(a, "py2many could not translate mod_0.py: unsupported construct")
    queue.fail(a_again, "py2many could not translate mod_0.py: unsupported construct")
    assert queue.job_stats(job).failed == 1
    assert len(queue.dead_letters()) == 1

    b = queue.take("w1")
    assert b is not None and b.item.item_id == "000001"
    time.sleep(VISIBILITY + 0.2)
    b_again = queue.take("w2")
    assert b_again is not None
    queue.fail(b_again, "flaky")  # one delivery fails for good while a slower one succeeds
    assert queue.complete(b, "done", 0.1)
    stats = queue.job_stats(job)
    assert (stats.done, stats.failed) == (1, 1)
    assert list(stats.failed_items) == ["000000"]


def test_release_puts_an_item_back_without_using_an_attempt(fast_queue: RedisQueue) -> None:
    queue = fast_queue
    job = uid()
    queue.enqueue(job, make_items(job, 1, max_attempts=2), 0)
    d = queue.take("w1")
    assert d is not None and d.attempt == 1
    assert queue.release(d) is True
    assert queue.release(d) is False  # no longer held
    again = queue.take("w2", block_ms=0)
    assert again is not None and again.item == d.item and again.attempt == 1 and again.entry_id != d.entry_id

    time.sleep(VISIBILITY + 0.2)
    reclaimed = queue.take("w3", block_ms=0)
    assert reclaimed is not None and reclaimed.attempt == 2
    assert queue.release(again) is False  # w2 lost it to w3: releasing must not duplicate it
    assert queue.release(reclaimed) is True
    last = queue.take("w4", block_ms=0)
    assert last is not None and last.attempt == 2  # the released copy keeps the attempts it used
    assert queue.take("w5", block_ms=0) is None
    assert len(entries(queue)) == 1
    assert queue.complete(last, "cached", gpu_seconds=0.0)
    assert queue.job_stats(job).cached == 1


def test_cancel_job_removes_only_that_jobs_entries(queue: RedisQueue) -> None:
    a, b = uid(), uid()
    queue.enqueue(a, make_items(a, 1500, job="a"), 0)
    queue.enqueue(b, make_items(b, 10, job="b"), 0)
    queue.enqueue(b, [], 10)
    c = uid()
    queue.enqueue(c, make_items(c, 5, priority="Interactive", job="c"), 0)
    held = [queue.take("w1") for _ in range(7)]  # c's five, then two of a's, in flight
    assert [d.item.job_name for d in held if d] == ["c"] * 5 + ["a"] * 2
    assert queue.cancel_job(a) == 1500
    assert queue.cancel_job(a) == 0
    depth = {d.priority: d for d in queue.depth()}
    assert (depth["Batch"].waiting, depth["Batch"].in_flight) == (10, 0)
    rest = drain(queue)
    assert {d.item.job_uid for d in rest} == {b}
    for d in rest:
        assert queue.complete(d, "done", 0.0)

    queue.enqueue(a, make_items(a, 3, start=1500, job="a"), 1500)  # late entries of a cancelled job
    assert drain(queue) == []
    assert queue.backlog() == 5  # c's items, still in flight
    late = held[5]
    assert late is not None
    assert queue.complete(late, "done", 0.0)  # a worker finishing a cancelled item does not break anything
    queue.forget_job(a)
    assert queue.job_stats(a) == queue.job_stats(uid())


def test_depth_and_backlog(queue: RedisQueue) -> None:
    assert [d.priority for d in queue.depth()] == list(PRIORITIES)
    assert queue.backlog() == 0
    batch, interactive = uid(), uid()
    queue.enqueue(batch, make_items(batch, 5), 0)
    queue.enqueue(interactive, make_items(interactive, 3, priority="Interactive"), 0)
    time.sleep(0.3)
    taken = [queue.take("w1"), queue.take("w1")]
    depth = {d.priority: d for d in queue.depth()}
    assert (depth["Interactive"].waiting, depth["Interactive"].in_flight) == (1, 2)
    assert (depth["Batch"].waiting, depth["Batch"].in_flight) == (5, 0)
    assert (depth["Training"].waiting, depth["Training"].in_flight) == (0, 0)
    assert depth["Batch"].oldest_age_seconds >= 0.3
    assert depth["Interactive"].oldest_age_seconds >= 0.3
    assert depth["Training"].oldest_age_seconds == 0.0
    assert queue.backlog() == 8
    assert taken[0] is not None and queue.complete(taken[0], "done", 0.5)
    assert queue.backlog() == 7
    depth = {d.priority: d for d in queue.depth()}
    assert (depth["Interactive"].waiting, depth["Interactive"].in_flight) == (1, 1)


def test_waiting_and_pending_items_survive_a_redis_restart(redis_server: RedisServer) -> None:
    q = queue_for(redis_server.url, "team-a", f"c-{uuid.uuid4().hex[:8]}", visibility_timeout_seconds=VISIBILITY)
    job = uid()
    q.enqueue(job, make_items(job, 10), 0)
    held = [q.take("w1") for _ in range(3)]
    assert all(held)
    assert held[0] is not None and q.complete(held[0], "done", 2.0, lines=3)
    q.r.close()

    redis_server.restart()

    q = queue_for(redis_server.url, q.namespace, q.cluster, visibility_timeout_seconds=VISIBILITY)
    [batch] = [d for d in q.depth() if d.priority == "Batch"]
    assert (batch.waiting, batch.in_flight) == (7, 2)
    stats = q.job_stats(job)
    assert (stats.done, stats.lines, stats.enqueued, stats.epoch_present) == (1, 3, 10, True)
    time.sleep(VISIBILITY + 0.2)
    rest = drain(q, "w2")
    assert sorted(d.item.item_id for d in rest) == [f"{i:06d}" for i in range(1, 10)]
    assert sorted(d.attempt for d in rest) == [1] * 7 + [2] * 2
    for d in rest:
        q.complete(d, "done", 0.1)
    assert q.job_stats(job).done == 10
    q.r.close()


def test_heartbeats_expire(queue: RedisQueue) -> None:
    queue.heartbeat("pod-a-0", "busy", item_id="000042", job="team-a/job", ttl_seconds=1)
    queue.heartbeat("pod-b-0", "idle", ttl_seconds=30)
    other = RedisQueue(queue.r, "team-a", queue.cluster + "-other")
    other.heartbeat("elsewhere", "idle")
    workers = queue.workers()
    assert set(workers) == {"pod-a-0", "pod-b-0"}
    assert workers["pod-a-0"]["state"] == "busy" and workers["pod-a-0"]["item"] == "000042"
    assert workers["pod-a-0"]["job"] == "team-a/job"
    assert abs(workers["pod-b-0"]["ts"] - time.time()) < 5
    time.sleep(1.5)
    assert set(queue.workers()) == {"pod-b-0"}


def test_concurrent_workers_count_every_item_exactly_once(queue: RedisQueue) -> None:
    job = uid()
    queue.enqueue(job, make_items(job, 300), 0)
    seen: list[str] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while (d := queue.take(name, block_ms=200)) is not None:
            queue.complete(d, "done", 0.01, lines=1)
            with lock:
                seen.append(d.item.item_id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(seen) == [f"{i:06d}" for i in range(300)]
    stats = queue.job_stats(job)
    assert (stats.done, stats.lines) == (300, 300)
    assert queue.backlog() == 0 and entries(queue) == []


def test_lost_consumer_group_is_recreated(queue: RedisQueue) -> None:
    queue.r.delete(*queue.streams)  # as if Redis lost its data
    assert queue.take("w1", block_ms=0) is None
    job = uid()
    queue.enqueue(job, make_items(job, 1), 0)
    d = queue.take("w1", block_ms=0)
    assert d is not None and d.item.job_uid == job


def test_suspend_holds_waiting_items_and_resume_requeues_only_what_is_left(queue: RedisQueue) -> None:
    job, other = uid(), uid()
    items = make_items(job, 10)
    queue.enqueue(job, items, 0)
    queue.enqueue(other, make_items(other, 3, job="other"), 0)
    held = [queue.take("w1"), queue.take("w1")]
    assert all(d is not None and d.item.job_uid == job for d in held)

    assert queue.remove_waiting(job) == 8  # suspended: the two in flight finish
    [batch] = [d for d in queue.depth() if d.priority == "Batch"]
    assert (batch.waiting, batch.in_flight) == (3, 2)
    assert held[0] is not None and queue.complete(held[0], "done", 0.1)

    assert queue.requeue_remaining(job, items) == 8  # resumed: not the done one, not the one still in flight
    assert queue.requeue_remaining(job, items) == 0
    enqueued = queue.job_stats(job).enqueued
    assert queue.enqueue(job, items[enqueued:], enqueued) == 10  # the controller's crash-resume path adds nothing
    finished = [d for d in drain(queue) if d.item.job_uid == job]
    assert held[1] is not None
    for d in [*finished, held[1]]:
        assert queue.complete(d, "done", 0.1)
    stats = queue.job_stats(job)
    assert stats.done == 10 and queue.done_ids(job) == {f"{i:06d}" for i in range(10)}


def test_a_lost_queue_is_rebuilt_from_the_plan(queue: RedisQueue) -> None:
    job = uid()
    items = make_items(job, 6)
    queue.enqueue(job, items, 0)
    for d in [queue.take("w1"), queue.take("w1")]:
        assert d is not None and queue.complete(d, "done", 0.1)
    queue.r.delete(*queue.streams)  # Redis lost everything about the job
    queue.forget_job(job)
    stats = queue.job_stats(job)
    assert (stats.enqueued, stats.epoch_present, stats.done) == (0, False, 0)

    # The controller finds outputs of items 0 and 1 in S3, counts them done and queues the rest again.
    assert queue.mark_done(job, ["000000", "000001"]) == 2
    assert queue.mark_done(job, ["000000"]) == 0
    assert queue.requeue_remaining(job, items) == 4
    stats = queue.job_stats(job)
    assert (stats.enqueued, stats.epoch_present, stats.done) == (6, True, 2)
    assert queue.enqueue(job, items[stats.enqueued :], stats.enqueued) == 6  # nothing queued twice
    assert sorted(d.item.item_id for d in drain(queue)) == [f"{i:06d}" for i in range(2, 6)]


def test_record_failure_counts_an_unqueued_item_once(queue: RedisQueue) -> None:
    job = uid()
    assert queue.record_failure(job, "000003", "too large: larger than the 10 MiB limit")
    assert not queue.record_failure(job, "000003", "too large: larger than the 10 MiB limit")
    stats = queue.job_stats(job)
    assert stats.failed == 1 and stats.failed_items == {"000003": "too large: larger than the 10 MiB limit"}
    assert queue.mark_done(job, ["000003"]) == 1  # a later success replaces the failure
    stats = queue.job_stats(job)
    assert (stats.done, stats.failed, stats.failed_items) == (1, 0, {})
    assert not queue.record_failure(job, "000003", "again")


def test_finished_items_name_their_jobs_to_every_reader_of_the_progress_stream(queue: RedisQueue) -> None:
    quiet, busy, failing = uid(), uid(), uid()
    for job in (quiet, busy, failing):
        queue.enqueue(job, make_items(job, 2, job=job), 0)
    first, cursor = queue.progress_since(None)  # a new reader starts from now
    assert first == set()
    taken = [queue.take("w1") for _ in range(6)]
    by_job = {d.item.job_uid: d for d in reversed(taken) if d is not None}
    queue.complete(by_job[busy], "done", 0.1)
    queue.fail(by_job[failing], "unsupported construct")
    seen, cursor = queue.progress_since(cursor)
    assert seen == {busy, failing}
    other, _ = queue.progress_since("0-0")  # another reader (an operator taking over) loses nothing
    assert other == {busy, failing}
    assert queue.progress_since(cursor) == (set(), cursor)
    queue.complete(by_job[busy], "done", 0.1)  # a duplicate delivery still says the job was looked at
    assert queue.progress_since(cursor)[0] == {busy}


def test_one_look_gives_the_backlog_and_the_progress_of_two_separate_reads(queue: RedisQueue) -> None:
    a, b = uid(), uid()
    queue.enqueue(a, make_items(a, 3, job=a), 0)
    queue.enqueue(b, make_items(b, 2, job=b), 0)
    backlog, seen, cursor = queue.look(None)  # a new reader starts from now
    assert (backlog, seen) == (5, set())
    taken = queue.take("w1")
    assert taken is not None
    assert queue.look(cursor)[:2] == (queue.backlog(), set()) == (5, set())  # in flight still counts
    queue.complete(taken, "done", 0.1)
    backlog, seen, after = queue.look(cursor)
    assert (backlog, seen) == (queue.backlog(), {taken.item.job_uid}) == (4, {taken.item.job_uid})
    assert queue.progress_since(cursor) == (seen, after)
    assert queue.look(after) == (4, set(), after)


def test_queues_sharing_a_redis_are_looked_at_in_one_round_trip_with_the_answers_of_separate_looks(
    queue: RedisQueue, client: redis.Redis
) -> None:
    other = RedisQueue(client, "team-b", f"c-{uuid.uuid4().hex[:8]}", visibility_timeout_seconds=300)
    other.ensure_groups()
    idle = RedisQueue(client, "team-c", f"c-{uuid.uuid4().hex[:8]}", visibility_timeout_seconds=300)
    a, b = uid(), uid()
    queue.enqueue(a, make_items(a, 3, job=a), 0)
    other.enqueue(b, make_items(b, 2, job=b), 0)
    starts = look_many([(queue, None), (other, None), (idle, None)])
    assert [look[:2] for look in starts] == [(3, set()), (2, set()), (0, set())]
    done = other.take("w1")
    assert done is not None
    other.complete(done, "done", 0.1)
    cursors = [look[2] for look in starts]
    together = look_many([(queue, cursors[0]), (other, cursors[1]), (idle, cursors[2])])
    alone = [queue.look(cursors[0]), other.look(cursors[1]), idle.look(cursors[2])]
    assert together == alone
    assert [look[:2] for look in together] == [(3, set()), (1, {b}), (0, set())]
    assert look_many([]) == []


def test_a_look_far_behind_the_progress_stream_reads_every_chunk(queue: RedisQueue) -> None:
    _, cursor = queue.progress_since(None)
    pipe = queue.r.pipeline(transaction=False)
    uids = [uid() for _ in range(2500)]
    for job in uids:
        pipe.xadd(queue.progress_key, {"job": job})
    pipe.execute()
    backlog, seen, after = queue.look(cursor)
    assert (backlog, seen) == (0, set(uids))
    assert queue.look(after)[1] == set()


def test_thousands_of_workers_are_read_without_scanning_the_keyspace(queue: RedisQueue) -> None:
    pipe = queue.r.pipeline(transaction=False)
    for i in range(2500):
        pipe.set(queue.heartbeat_key(f"w{i}"), '{"state": "idle"}', ex=30)
        pipe.zadd(queue.workers_key, {f"w{i}": time.time() + 30})
    pipe.execute()
    queue.heartbeat("gone", "idle", ttl_seconds=1)
    queue.r.delete(queue.heartbeat_key("w7"))  # its key expired before its entry in the set
    workers = queue.workers()
    assert len(workers) == 2500 and "w7" not in workers and workers["gone"]["state"] == "idle"
    time.sleep(1.2)
    assert "gone" not in queue.workers()
    # remembered as dead for a while (so that the items it held can be claimed), then pruned from the set
    expired = queue.r.zscore(queue.workers_key, "gone")
    assert expired is not None and expired < time.time()
    queue.r.zadd(queue.workers_key, {"gone": time.time() - DEAD_WORKER_MEMORY_SECONDS - 1})
    assert "gone" not in queue.workers()
    assert queue.r.zscore(queue.workers_key, "gone") is None


def test_a_dead_workers_items_are_claimed_by_the_next_take_long_before_the_visibility_timeout(
    queue: RedisQueue,
) -> None:
    job = uid()
    queue.enqueue(job, make_items(job, 3), 0)
    queue.heartbeat("pod-a/0", "busy", ttl_seconds=1)
    held = queue.take("pod-a/0", block_ms=0)
    assert held is not None and held.attempt == 1
    queue.heartbeat("pod-b/0", "idle", ttl_seconds=60)
    # while pod-a beats, its item is never handed to another worker (the visibility timeout is 300 s)
    others = [queue.take("pod-b/0", block_ms=0) for _ in range(2)]
    assert sorted(d.item.item_id for d in others if d) == sorted({"000000", "000001", "000002"} - {held.item.item_id})
    assert queue.take("pod-b/0", block_ms=0) is None
    time.sleep(1.2)  # pod-a dies: its heartbeat expires
    started = time.monotonic()
    claimed = queue.take("pod-b/0", block_ms=0)
    assert claimed is not None and claimed.item.item_id == held.item.item_id
    assert claimed.attempt == 2 and claimed.consumer == "pod-b/0"
    assert time.monotonic() - started < 2
    assert queue.complete(claimed, "done", 0.1)
    assert not queue.complete(held, "done", 0.1)  # the dead worker's late answer is not counted again
    for d in others:
        assert d is not None
        queue.complete(d, "done", 0.1)
    assert queue.job_stats(job).done == 3 and queue.backlog() == 0 and entries(queue) == []


def test_a_live_worker_keeps_its_items_and_one_that_never_beat_is_left_to_the_visibility_timeout(
    queue: RedisQueue,
) -> None:
    job = uid()
    queue.enqueue(job, make_items(job, 2), 0)
    queue.heartbeat("alive/0", "busy", ttl_seconds=2)
    kept = queue.take("alive/0", block_ms=0)
    silent = queue.take("never-beat", block_ms=0)  # a consumer without heartbeats (a tool, an older worker)
    assert kept is not None and silent is not None
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        queue.heartbeat("alive/0", "busy", ttl_seconds=2)
        queue.heartbeat("other/0", "idle", ttl_seconds=30)
        assert queue.take("other/0", block_ms=0) is None
        time.sleep(0.5)


def test_a_dead_worker_with_nothing_pending_leaves_the_consumer_group(
    queue: RedisQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portalis.clients.queue import consuming

    job = uid()
    queue.enqueue(job, make_items(job, 1), 0)
    queue.heartbeat("gone/0", "idle", ttl_seconds=1)
    d = queue.take("gone/0", block_ms=0)
    assert d is not None
    queue.complete(d, "done", 0.1)
    assert "gone/0" in {as_str(c["name"]) for s in queue.streams for c in queue.r.xinfo_consumers(s, queue.group)}
    time.sleep(1.2)
    monkeypatch.setattr(consuming, "GONE_CONSUMER_IDLE_MS", 0)
    queue.heartbeat("live/0", "idle", ttl_seconds=30)
    assert queue.take("live/0", block_ms=0) is None
    consumers = {as_str(c["name"]) for s in queue.streams for c in queue.r.xinfo_consumers(s, queue.group)}
    assert "gone/0" not in consumers
