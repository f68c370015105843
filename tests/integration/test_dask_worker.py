"""The Dask data plane: a real ``dask scheduler`` and ``dask worker --preload portalis.worker.dask_plugin``, as the
DaskCluster's pods run them, translating from a real Redis queue into a real S3 server."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from portalis.clients.queue import RedisQueue, WorkItem
from portalis.clients.store import Store
from portalis.desired.daskcluster import DATA_PLANE_PRELOAD
from portalis.desired.plan import build_plan
from portalis.devcluster.cluster import free_port
from portalis.devcluster.servers import RedisServer, S3Server
from portalis.worker.dask_plugin import SetupError, settings_from_env

REPO = Path(__file__).resolve().parents[2]
DASK = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")

needs_dask = pytest.mark.skipif(
    DASK is None or importlib.util.find_spec("py2many") is None, reason="dask or py2many is not installed"
)


def test_settings_come_from_the_pod_environment_one_loop_per_gpu() -> None:
    base = {"PORTALIS_NAMESPACE": "team-a", "PORTALIS_CLUSTER": "tc", "PORTALIS_REDIS_URL": "redis://r:6379/0"}
    settings, loops = settings_from_env({**base, "PORTALIS_GPUS_PER_WORKER": "4", "PORTALIS_ENGINE": "openai"})
    assert (loops, settings.gpus, settings.engine, settings.cluster) == (4, 1.0, "openai", "tc")
    settings, loops = settings_from_env({**base, "PORTALIS_GPUS_PER_WORKER": "0"})  # a CPU worker: one loop
    assert (loops, settings.gpus, settings.engine) == (1, 0.0, "py2many")
    with pytest.raises(SetupError, match="PORTALIS_REDIS_URL not set: the operator sets them"):
        settings_from_env({k: v for k, v in base.items() if k != "PORTALIS_REDIS_URL"})


def submit(queue: RedisQueue, store: Store, bucket: str, count: int) -> tuple[str, list[WorkItem]]:
    """Upload ``count`` small modules, plan them as the job controller does and enqueue them."""
    job_uid = str(uuid.uuid4())
    prefix = f"repos/{job_uid[:8]}/"
    salt = uuid.uuid4().hex  # sources no other test has put in the result cache
    for i in range(count):
        store.put_bytes(bucket, f"{prefix}m{i}.py", f"def f{i}_{salt}() -> int:\n    return {i}\n".encode())
    listing = [(o.key, o.size) for o in store.list(bucket, prefix)]
    plan = build_plan(listing, prefix, ["**/*.py"], [], f"out/{job_uid[:8]}/", ".rs", 1 << 20)
    items = [
        WorkItem(
            job_namespace=queue.namespace, job_name=f"job-{job_uid[:8]}", job_uid=job_uid, item_id=p.item_id,
            source_bucket=bucket, source_key=p.source_key, output_bucket=bucket, output_key=p.output_key,
            size_bytes=p.size_bytes, size_class=p.size_class, priority="Batch", max_attempts=3,
            relative_path=p.relative_path,
        )
        for p in plan
    ]  # fmt: skip
    queue.enqueue(job_uid, items, 0)
    return job_uid, items


def metric(url: str, name: str, outcome: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and s.labels.get("outcome") == outcome
    )


@pytest.fixture
def scheduler() -> Iterator[str]:
    assert DASK is not None
    port = free_port()
    proc = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@needs_dask
def test_a_dask_worker_translates_from_the_queue_serves_metrics_and_stops_cleanly(
    scheduler: str, redis_server: RedisServer, s3_server: S3Server
) -> None:
    assert DASK is not None
    client = redis.Redis.from_url(redis_server.url)
    queue = RedisQueue(client, "team-a", f"dask-{uuid.uuid4().hex[:8]}", visibility_timeout_seconds=30)
    queue.ensure_groups()
    store = Store(s3_server.endpoint, s3_server.region, s3_server.access_key, s3_server.secret_key)
    bucket = f"dask-{uuid.uuid4().hex[:10]}"
    store.ensure_bucket(bucket)
    job, items = submit(queue, store, bucket, 6)
    port = free_port()
    env = {
        **os.environ, **s3_server.client_env(), "PORTALIS_S3_FORCE_PATH_STYLE": "true",
        "PORTALIS_NAMESPACE": queue.namespace, "PORTALIS_CLUSTER": queue.cluster,
        "PORTALIS_REDIS_URL": redis_server.url, "PORTALIS_ENGINE": "py2many", "PORTALIS_GPUS_PER_WORKER": "2",
        "PORTALIS_VISIBILITY_TIMEOUT_SECONDS": "30", "POD_NAME": "tc-default-worker-abc",
        "PORTALIS_METRICS_PORT": str(port), "PORTALIS_METRICS_HOST": "127.0.0.1",
    }  # fmt: skip
    # the worker container's command from the DaskCluster, less its dashboard
    proc = subprocess.Popen(
        [DASK, "worker", scheduler, "--name", "tc-default-worker-abc", "--nthreads", "1", "--no-nanny",
         "--resources", "GPU=2", "--no-dashboard", "--preload", DATA_PLANE_PRELOAD],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while queue.job_stats(job).done < len(items):
            assert proc.poll() is None, proc.communicate()[0].decode()[-3000:]
            assert time.monotonic() < deadline, queue.job_stats(job)
            time.sleep(0.2)
        # one loop per GPU, named after the pod as the Ray actors are, so the operator tells busy pods apart
        assert set(queue.workers()) == {"tc-default-worker-abc/0", "tc-default-worker-abc/1"}
        url = f"http://127.0.0.1:{port}/metrics"
        assert metric(url, "portalis_translation_duration_seconds_count", "done") == len(items)
        outputs = {o.key for o in store.list(bucket, f"out/{job[:8]}/")}
        assert outputs == {i.output_key for i in items} and all(k.endswith(".rs") for k in outputs)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        client.close()
    log = out.decode()
    assert "2 worker loop(s) on queue" in log and "finishing the items in hand" in log, log[-3000:]
    stats = queue.job_stats(job)
    assert (stats.done, stats.failed) == (len(items), 0)
