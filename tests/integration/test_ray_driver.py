"""The Ray driver on a local CPU-only Ray: translator actors drain a real job from Redis and S3, then scale down."""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from portalis.clients.queue import RedisQueue, WorkItem
from portalis.clients.store import Store
from portalis.worker.engines.base import Source, Translation
from portalis.worker.local import WorkerSettings
from portalis.worker.ray_driver import ActorPool, DriverConfig, compute_actor_count, run_driver
from portalis_devcluster.servers import RedisServer, S3Server

VISIBILITY = 5.0


@dataclass
class ShoutEngine:
    """A test engine that runs inside the actors (pickled by value, so the workers need not import this file)."""

    name: str = "shout"
    version: str = "ray-test"

    def translate(self, sources: list[Source]) -> list[Translation]:
        time.sleep(0.05)
        return [Translation(ok=True, text=s.text.upper()) for s in sources]


def new_shout_engine() -> Any:
    return ShoutEngine(version=f"ray-test-{uuid.uuid4().hex[:6]}")


def test_actor_count_follows_the_cluster() -> None:
    assert compute_actor_count({"GPU": 8.0, "CPU": 64.0}, gpus_per_actor=1, cpus_per_actor=1) == 8
    assert compute_actor_count({"GPU": 8.0}, gpus_per_actor=2, cpus_per_actor=1) == 4
    assert compute_actor_count({"GPU": 3.0}, gpus_per_actor=2, cpus_per_actor=1) == 1
    assert compute_actor_count({"GPU": 0.3 * 10}, gpus_per_actor=0.3, cpus_per_actor=1) == 10
    assert compute_actor_count({"CPU": 2.0}, gpus_per_actor=1, cpus_per_actor=1) == 0  # no GPUs yet
    assert compute_actor_count({"CPU": 6.0}, gpus_per_actor=0, cpus_per_actor=2) == 3
    assert compute_actor_count({"GPU": 8.0}, gpus_per_actor=1, cpus_per_actor=1, forced=2) == 2


@pytest.fixture(scope="module")
def ray_local(s3_server: S3Server) -> Iterator[Any]:
    try:
        import ray
        from ray import cloudpickle
    except ImportError:
        pytest.skip("ray is not installed: pip install 'portalis[ray]' (ray>=2.40)")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # type: ignore[no-untyped-call]
    env = {**s3_server.client_env(), "PORTALIS_S3_FORCE_PATH_STYLE": "true"}
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": env}, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])  # type: ignore[no-untyped-call]


@pytest.mark.usefixtures("ray_local")
def test_two_cpu_actors_translate_every_item_once_and_scale_down_gracefully(
    redis_server: RedisServer, s3_server: S3Server
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    queue = RedisQueue(client, "team-a", f"ray-{uuid.uuid4().hex[:8]}", visibility_timeout_seconds=VISIBILITY)
    queue.ensure_groups()
    store = Store(s3_server.endpoint, s3_server.region, s3_server.access_key, s3_server.secret_key)
    bucket = f"ray-{uuid.uuid4().hex[:10]}"
    store.ensure_bucket(bucket)
    job_uid = str(uuid.uuid4())
    items = []
    for i in range(10):
        key = f"repo/m{i}.py"
        store.put_bytes(bucket, key, f"def f{i}():\n    return {i}\n".encode())
        items.append(
            WorkItem(
                job_namespace="team-a",
                job_name="ray-job",
                job_uid=job_uid,
                item_id=f"{i:06d}",
                source_bucket=bucket,
                source_key=key,
                output_bucket=bucket,
                output_key=f"out/m{i}.rs",
                size_bytes=30,
                size_class="tiny",
                priority="Batch",
                max_attempts=3,
                relative_path=f"m{i}.py",
            )
        )
    queue.enqueue(job_uid, items, 0)

    config = DriverConfig(
        settings=WorkerSettings(
            namespace=queue.namespace,
            cluster=queue.cluster,
            redis_url=redis_server.url,
            engine="shout",
            gpus=0.0,
            visibility_timeout_seconds=VISIBILITY,
            take_block_ms=200,
        ),
        gpus_per_actor=0,
        cpus_per_actor=1,
        actors=2,
        check_interval_seconds=0.5,
        stop_grace_seconds=20,
        engine_factory=new_shout_engine,
    )
    pool = ActorPool(config)
    stop = threading.Event()
    driver = threading.Thread(target=run_driver, args=(config, stop, pool))
    driver.start()
    try:
        deadline = time.monotonic() + 45
        while queue.job_stats(job_uid).done < 10 and time.monotonic() < deadline:
            time.sleep(0.2)
        stats = queue.job_stats(job_uid)
        assert (stats.done, stats.failed, stats.cached) == (10, 0, 0)
        assert len(pool.active) == 2
        assert len(queue.workers()) == 2  # each actor heartbeats under its own name

        config.actors = 1  # the cluster shrank: one actor is asked to stop and goes once idle
        deadline = time.monotonic() + 20
        while (len(pool.active), len(pool.stopping)) != (1, 0) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (len(pool.active), len(pool.stopping)) == (1, 0)
        assert len(pool.outcomes) == 1
    finally:
        stop.set()
        driver.join(60)
    assert not driver.is_alive()
    assert pool.active == [] and pool.stopping == []

    outcomes = list(pool.outcomes.values())
    assert len(outcomes) == 2
    assert sum(o["done"] for o in outcomes) == 10  # every item translated exactly once across the actors
    assert sum(o["retry"] + o["failed"] + o["cached"] for o in outcomes) == 0
    # the driver collected every actor's metrics, the last of them as each actor stopped
    collected = pool.stats.snapshot()
    assert (collected.items(), collected.items("done")) == (10, 10)
    assert collected.cache_lookups == {("shout", "hit"): 0, ("shout", "miss"): 10}
    assert collected.source_lines == {"shout": 20}
    outputs = {o.key: store.get_bytes(bucket, o.key).decode() for o in store.list(bucket, "out/")}
    assert outputs == {f"out/m{i}.rs": f"DEF F{i}():\n    RETURN {i}\n" for i in range(10)}
    assert queue.backlog() == 0
    client.close()
