"""The Dask data plane: a real ``dask scheduler`` and ``dask worker --preload portalis.worker.dask_plugin``, as the
DaskCluster's pods run them, translating from a real Redis queue into a real S3 server."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from portalis.desired.daskcluster import DATA_PLANE_PRELOAD
from portalis.worker.dask_plugin import SetupError, settings_from_env
from portalis_devcluster.cluster import free_port
from portalis_devcluster.servers import RedisServer, S3Server
from tests.integration.worker_kit import REPO, Env, process, sample_values, scrape, terminate

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


@pytest.fixture
def scheduler() -> Iterator[str]:
    assert DASK is not None
    port = free_port()
    proc = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
    env: Env, scheduler: str, redis_server: RedisServer, s3_server: S3Server
) -> None:
    assert DASK is not None
    salt = uuid.uuid4().hex  # sources no other test has put in the result cache
    job, items = env.submit({f"m{i}.py": f"def f{i}_{salt}() -> int:\n    return {i}\n".encode() for i in range(6)})
    port = free_port()
    proc_env = {
        **os.environ,
        **s3_server.client_env(),
        "PORTALIS_S3_FORCE_PATH_STYLE": "true",
        "PORTALIS_NAMESPACE": env.queue.namespace,
        "PORTALIS_CLUSTER": env.queue.cluster,
        "PORTALIS_REDIS_URL": redis_server.url,
        "PORTALIS_ENGINE": "py2many",
        "PORTALIS_GPUS_PER_WORKER": "2",
        "PORTALIS_VISIBILITY_TIMEOUT_SECONDS": "30",
        "POD_NAME": "tc-default-worker-abc",
        "PORTALIS_METRICS_PORT": str(port),
        "PORTALIS_METRICS_HOST": "127.0.0.1",
    }
    # the worker container's command from the DaskCluster, less its dashboard
    with process(
        [
            DASK,
            "worker",
            scheduler,
            "--name",
            "tc-default-worker-abc",
            "--nthreads",
            "1",
            "--no-nanny",
            "--resources",
            "GPU=2",
            "--no-dashboard",
            "--preload",
            DATA_PLANE_PRELOAD,
        ],
        env=proc_env,
    ) as proc:
        deadline = time.monotonic() + 60
        while env.queue.job_stats(job).done < len(items):
            assert proc.poll() is None, proc.communicate()[0].decode()[-3000:]
            assert time.monotonic() < deadline, env.queue.job_stats(job)
            time.sleep(0.2)
        # one loop per GPU, named after the pod as the Ray actors are, so the operator tells busy pods apart
        assert set(env.queue.workers()) == {"tc-default-worker-abc/0", "tc-default-worker-abc/1"}
        done = (
            "portalis_translation_duration_seconds_count",
            frozenset(
                {
                    "namespace": env.queue.namespace,
                    "cluster": env.queue.cluster,
                    "engine": "py2many",
                    "outcome": "done",
                }.items()
            ),
        )
        assert sample_values(scrape(f"http://127.0.0.1:{port}/metrics"))[done] == len(items)
        outputs = env.outputs(items)
        assert set(outputs) == {i.output_key for i in items} and all(k.endswith(".rs") for k in outputs)
        log = terminate(proc, 30)
    assert proc.returncode == 0, log[-3000:]
    assert "2 worker loop(s) on queue" in log and "finishing the items in hand" in log, log[-3000:]
    stats = env.queue.job_stats(job)
    assert (stats.done, stats.failed) == (len(items), 0)
