"""queue-throughput: items per second through RedisQueue against raw Redis Streams commands, same server.

Each trial enqueues N work items (default 4000, env PORTALIS_BENCH_QUEUE_ITEMS) and has C consumer threads
(default 4, env PORTALIS_BENCH_QUEUE_CONSUMERS) take and complete them all: enqueue -> deliver -> ack, timed
from the first enqueue to the last acknowledgement. Portalis: ``RedisQueue.enqueue`` (batches of 500 in
MULTI/EXEC), then ``take`` + ``complete`` per item. Baseline, on the same redis-server in the same run, with the
same entry fields, the same threads and the same round trips per operation as the queue's raw commands: XADD in
MULTI/EXEC pipelines of 500, XREADGROUP COUNT 1 per item, then XACK + XDEL in one pipelined round trip (the queue
acknowledges and deletes in one Lua call). Trials alternate which side goes first (default 7, env
PORTALIS_BENCH_QUEUE_TRIALS). Goal: ours/baseline >= 0.5 on the p50 of items/s.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from bench.common import Result, percentile, report, summary
from portalis.clients.queue import RedisQueue, WorkItem, queue_for
from portalis_devcluster.servers import RedisServer

ITEMS = int(os.environ.get("PORTALIS_BENCH_QUEUE_ITEMS", "4000"))
CONSUMERS = int(os.environ.get("PORTALIS_BENCH_QUEUE_CONSUMERS", "4"))
TRIALS = int(os.environ.get("PORTALIS_BENCH_QUEUE_TRIALS", "7"))
BATCH = 500  # RedisQueue.enqueue's default batch
PRIORITY = "Batch"  # TranslationJob's default priority
GROUP = "workers"
GOAL_RATIO = 0.5


def work_items(job_uid: str, n: int) -> list[WorkItem]:
    return [
        WorkItem(
            job_namespace="bench",
            job_name="throughput",
            job_uid=job_uid,
            item_id=f"{i:06d}",
            source_bucket="portalis-bench-src",
            source_key=f"repos/acme/pkg{i // 100}/mod_{i}.py",
            output_bucket="portalis-bench-src",
            output_key=f"translations/throughput/pkg{i // 100}/mod_{i}.rs",
            size_bytes=2048,
            size_class="tiny",
            priority=PRIORITY,
            max_attempts=3,
            relative_path=f"pkg{i // 100}/mod_{i}.py",
        )
        for i in range(n)
    ]


class Tickets:
    """Hands out exactly ``n`` tickets across threads, so no consumer waits on an empty stream at the end."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.lock = threading.Lock()

    def claim(self) -> bool:
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


def consume(threads: int, body: Callable[[str, Tickets], None], n: int) -> None:
    tickets = Tickets(n)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            body(name, tickets)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(f"c{i}",)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]


def trial_ours(client: redis.Redis, items_for: Callable[[str], list[WorkItem]]) -> tuple[float, float]:
    """Items/s through RedisQueue, and the enqueue phase's share of the time."""
    cluster = f"q-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue(client, "bench", cluster)
    uid = str(uuid.uuid4())
    items = items_for(uid)

    def body(name: str, tickets: Tickets) -> None:
        while tickets.claim():
            d = None
            while d is None:
                d = queue.take(name, block_ms=1000)
            queue.complete(d, "done", gpu_seconds=0.0, lines=0)

    t0 = time.perf_counter()
    queue.enqueue(uid, items, 0, batch_size=BATCH)
    t1 = time.perf_counter()
    consume(CONSUMERS, body, len(items))
    t2 = time.perf_counter()
    stats = queue.job_stats(uid)
    left = sum(client.xlen(s) for s in queue.streams)
    if stats.done != len(items) or left:
        raise RuntimeError(f"RedisQueue: {stats.done} of {len(items)} done, {left} entries left")
    client.delete(*queue.streams)
    queue.forget_job(uid)
    return len(items) / (t2 - t0), (t1 - t0) / (t2 - t0)


def trial_raw(client: redis.Redis, items_for: Callable[[str], list[WorkItem]]) -> tuple[float, float]:
    """Items/s through raw XADD / XREADGROUP / XACK + XDEL on one stream with one consumer group."""
    stream = f"bench:raw:{uuid.uuid4().hex[:8]}:q:{PRIORITY}"
    client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    items = items_for(str(uuid.uuid4()))

    def body(name: str, tickets: Tickets) -> None:
        while tickets.claim():
            got: Any = None
            while not got:
                got = client.xreadgroup(GROUP, name, {stream: ">"}, count=1, block=1000)
            entry_id, _fields = got[0][1][0]
            pipe = client.pipeline(transaction=False)
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            pipe.execute()

    t0 = time.perf_counter()
    for first in range(0, len(items), BATCH):
        pipe = client.pipeline(transaction=True)
        for item in items[first : first + BATCH]:
            pipe.xadd(stream, item.to_fields())  # type: ignore[arg-type]
        pipe.execute()
    t1 = time.perf_counter()
    consume(CONSUMERS, body, len(items))
    t2 = time.perf_counter()
    left = client.xlen(stream)
    pending = client.xpending(stream, GROUP)["pending"]
    if left or pending:
        raise RuntimeError(f"raw streams: {left} entries left, {pending} pending")
    client.delete(stream)
    return len(items) / (t2 - t0), (t1 - t0) / (t2 - t0)


def main() -> int:
    server = RedisServer().start()
    try:
        client = queue_for(server.url, "bench", "warmup").r  # the queue's own client settings, for both sides
        warm = max(200, ITEMS // 10)
        trial_ours(client, lambda uid: work_items(uid, warm))
        trial_raw(client, lambda uid: work_items(uid, warm))
        ours: list[float] = []
        raw: list[float] = []
        ours_enqueue_share: list[float] = []
        raw_enqueue_share: list[float] = []
        for i in range(TRIALS):
            sides = [("ours", trial_ours), ("raw", trial_raw)]
            if i % 2:
                sides.reverse()
            for side, fn in sides:
                rate, share = fn(client, lambda uid: work_items(uid, ITEMS))
                (ours if side == "ours" else raw).append(rate)
                (ours_enqueue_share if side == "ours" else raw_enqueue_share).append(share)
                print(f"trial {i + 1} {side}: {rate:,.0f} items/s (enqueue {share:.0%} of the time)", flush=True)
    finally:
        server.stop()

    print(summary("Portalis RedisQueue enqueue -> take -> complete", ours, " items/s"))
    print(summary("raw XADD -> XREADGROUP -> XACK+XDEL", raw, " items/s"))
    ratio = percentile(ours, 50) / percentile(raw, 50)
    print(f"ratio (p50 ours/baseline): {ratio:.3f}; goal >= {GOAL_RATIO}")
    report(
        Result(
            bench="queue-throughput",
            metric=f"items/s enqueue -> take -> complete, {ITEMS} items, {CONSUMERS} consumer threads",
            unit="items/s",
            values=ours,
            baseline_name="raw XADD (MULTI/EXEC x500) -> XREADGROUP COUNT 1 -> XACK+XDEL (pipelined), same server",
            baseline_values=raw,
            goal=f"p50 ratio ours/baseline >= {GOAL_RATIO}",
            met=ratio >= GOAL_RATIO,
            higher_is_better=True,
            extra={
                "items": ITEMS,
                "consumers": CONSUMERS,
                "priority": PRIORITY,
                "enqueue_share_ours_p50": round(percentile(ours_enqueue_share, 50), 4),
                "enqueue_share_baseline_p50": round(percentile(raw_enqueue_share, 50), 4),
            },
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
