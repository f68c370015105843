"""Scaling GPU workers from queue depth, end to end: the operator patches the RayCluster, KubeRay makes pods."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from e2e.helpers import wait_for
from e2e.jobs import ARTIFACTS, JobEnv, job_env
from portalis.clients.queue import RedisQueue, WorkItem
from portalis_devcluster.operator import OperatorProcess
from portalis_devcluster.servers import RedisServer, S3Server

pytestmark = pytest.mark.cluster


@pytest.fixture
def env(operator: OperatorProcess, namespace: str, redis_server: RedisServer, s3_server: S3Server) -> JobEnv:
    return job_env(operator.kube, namespace, redis_server, s3_server, ARTIFACTS)


def items(env: JobEnv, count: int, job_uid: str = "scale-test", priority: str = "Batch") -> list[WorkItem]:
    return [
        WorkItem(
            job_namespace=env.namespace,
            job_name="scale",
            job_uid=job_uid,
            item_id=f"{i:06d}",
            source_bucket="b",
            source_key=f"k{i}.py",
            output_bucket="b",
            output_key=f"o{i}.rs",
            size_bytes=10,
            size_class="tiny",
            priority=priority,
            max_attempts=3,
        )
        for i in range(count)
    ]


def replicas(env: JobEnv, name: str = "tc") -> int:
    rc = env.cluster.get_or_none("raycluster", name)
    return -1 if rc is None else int(rc["spec"]["workerGroupSpecs"][0]["replicas"])


def worker_pods(env: JobEnv, name: str = "tc") -> list[dict[str, Any]]:
    pods = env.cluster.get("pods", "-l", f"portalis.dev/cluster={name},portalis.dev/role=worker")["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def drain(queue: RedisQueue) -> int:
    done = 0
    while True:
        d = queue.take("test-drainer", block_ms=10)
        if d is None:
            return done
        queue.complete(d, "done", gpu_seconds=0.0)
        done += 1


def scale_events(env: JobEnv, name: str = "tc") -> list[dict[str, Any]]:
    return [e for e in env.cluster.events("TranslationCluster", name) if e["reason"] in {"ScaledUp", "ScaledDown"}]


def test_500_items_scale_to_8_workers_and_back_to_min_without_removing_a_busy_worker(env: JobEnv) -> None:
    env.create_cluster(
        workers={"gpuType": "H100", "minWorkers": 1, "maxWorkers": 8},
        autoscaling={"targetItemsPerWorker": 50, "scaleDownStabilizationSeconds": 5},
    )
    wait_for(lambda: env.cluster.condition("tc", "tc", "Ready") == "True", timeout=30)
    queue = env.queue()
    queue.ensure_groups()
    queue.enqueue("scale-test", items(env, 500), 0)
    assert wait_for(lambda: replicas(env) == 8, timeout=10)

    def eight_running() -> list[dict[str, Any]] | None:
        pods = worker_pods(env)
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        return running if len(running) == 8 else None

    pods = wait_for(eight_running, timeout=60)
    for pod in pods:
        node = env.cluster.get_cluster_scoped("node", pod["spec"]["nodeName"])
        assert node["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
    status = env.cluster.get("tc", "tc")["status"]
    assert status["workers"]["desired"] == 8 and status["lastScaleTime"]

    busy = sorted(p["metadata"]["name"] for p in pods)[3]
    stop = threading.Event()

    def keep_busy() -> None:  # a translator on that pod holds an item the whole time
        while not stop.is_set():
            queue.heartbeat(f"{busy}/0", "busy", item_id="000001", job=f"{env.namespace}/scale", ttl_seconds=5)
            stop.wait(1)

    beat = threading.Thread(target=keep_busy, daemon=True)
    beat.start()
    try:
        time.sleep(1.5)
        assert drain(queue) == 500
        assert replicas(env) == 8, "no scale-down before the idle window"
        assert wait_for(lambda: replicas(env) == 1, timeout=30)
        remaining = wait_for(lambda: (lambda p: p if len(p) == 1 else None)(worker_pods(env)), timeout=30)
        assert remaining[0]["metadata"]["name"] == busy
    finally:
        stop.set()
        beat.join()
    removed: list[str] = []
    for event in scale_events(env):
        if event["reason"] == "ScaledDown":
            names = event["message"].split("removing idle ", 1)[1].split(" (")[0]
            removed += [n.strip() for n in names.split(",")]
    assert busy not in removed
    assert len(removed) == len(set(removed)) == 7
    assert any(e["reason"] == "ScaledUp" for e in scale_events(env))


def test_an_oscillating_backlog_causes_no_more_scale_events_than_the_windows_allow(env: JobEnv) -> None:
    up, down, duration = 4, 8, 16
    env.create_cluster(
        workers={"gpuType": "H100", "minWorkers": 1, "maxWorkers": 4},
        autoscaling={
            "targetItemsPerWorker": 50,
            "scaleUpStabilizationSeconds": up,
            "scaleDownStabilizationSeconds": down,
        },
    )
    wait_for(lambda: env.cluster.condition("tc", "tc", "Ready") == "True", timeout=30)
    queue = env.queue()
    queue.ensure_groups()
    queue.enqueue("osc", items(env, 50, "osc"), 0)
    extra = items(env, 60, "osc-extra")[50:]  # 10 more items: 60 needs 2 workers, 50 needs 1
    deadline = time.monotonic() + duration
    flips = 0
    while time.monotonic() < deadline:
        queue.enqueue(f"osc-{flips}", extra, 0)
        time.sleep(0.5)
        queue.cancel_job(f"osc-{flips}")
        time.sleep(0.5)
        flips += 1
    events = scale_events(env)
    allowed = duration // up + duration // down
    assert flips >= 10
    assert len(events) <= allowed, [e["message"] for e in events]


def test_scale_to_zero_and_back_from_zero(env: JobEnv) -> None:
    env.create_cluster(
        workers={"gpuType": "A100", "minWorkers": 0, "maxWorkers": 3},
        autoscaling={"targetItemsPerWorker": 10, "scaleDownStabilizationSeconds": 2},
    )
    assert wait_for(lambda: replicas(env) == 0, timeout=20)
    assert wait_for(lambda: not worker_pods(env), timeout=30)
    queue = env.queue()
    queue.ensure_groups()
    queue.enqueue("wake", items(env, 25, "wake"), 0)
    assert wait_for(lambda: replicas(env) == 3, timeout=10)
    assert wait_for(lambda: len([p for p in worker_pods(env) if p["status"].get("phase") == "Running"]) == 3, 60)
    assert drain(queue) == 25
    assert wait_for(lambda: replicas(env) == 0, timeout=20)

    def messages() -> str:  # the Event is recorded just after the RayCluster is patched
        text = " ".join(e["message"] for e in scale_events(env))
        return text if "scaled to zero" in text else ""

    assert "woke from zero" in wait_for(messages, timeout=10)
