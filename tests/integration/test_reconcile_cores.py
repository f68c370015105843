"""The three reconcile cores (clusters, jobs, GPU health) under ``kopf.testing.KopfRunner``: the operator runs in
this process, built by its composition root (``portalis.controllers.root``), against the local cluster's real
kube-apiserver, KWOK nodes and KubeRay, and real Redis and S3 servers.

One operator at a time acts on the local cluster: the operator process the other tests share steps aside while
these tests run, and is started again after them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from e2e.gpu_health import Pool, fake_dcgm, is_quarantined, node, operator_env
from e2e.helpers import wait_for
from e2e.jobs import ARTIFACTS, JobEnv, job_env, simple_module
from kopf.testing import KopfRunner

from portalis.clients.queue import WorkItem
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.dcgm import FakeDcgmExporter
from portalis_devcluster.operator import OperatorProcess
from portalis_devcluster.servers import RedisServer, S3Server

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("in_process")]

FLEET = "cores-" + uuid.uuid4().hex[:6]
DEFAULT_PRICE = "3.60"  # PORTALIS_DEFAULT_ON_DEMAND_GPU_HOUR of the operator under test
WORKERS_ANNOTATION = "portalis.dev/workers"


@pytest.fixture(scope="module")
def dcgm() -> Iterator[FakeDcgmExporter]:
    with fake_dcgm() as exporter:
        yield exporter


@pytest.fixture(scope="module")
def in_process(crds: DevCluster, operator: OperatorProcess, dcgm: FakeDcgmExporter) -> Iterator[KopfRunner]:
    """The operator in this process, managing only this module's GPU nodes, with a default GPU-hour price and
    the fake dcgm-exporter as its alert input."""
    env = {
        "KUBECONFIG": str(crds.kubeconfig),
        **operator_env(FLEET),
        "PORTALIS_DEFAULT_ON_DEMAND_GPU_HOUR": DEFAULT_PRICE,
        "PORTALIS_DCGM_ENDPOINTS": dcgm.url,
        "PORTALIS_DCGM_POLL_SECONDS": "0.5",
    }
    operator.stop()
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            args = ["run", "--standalone", "--all-namespaces", "-m", "portalis.controllers.root"]
            with KopfRunner(args, timeout=60) as runner:
                yield runner
        assert runner.exception is None
    finally:
        operator.start()


@pytest.fixture
def env(crds: DevCluster, namespace: str, redis_server: RedisServer, s3_server: S3Server) -> JobEnv:
    return job_env(crds, namespace, redis_server, s3_server, ARTIFACTS)


@pytest.fixture
def pool(crds: DevCluster, dcgm: FakeDcgmExporter) -> Iterator[Pool]:
    p = Pool(crds, FLEET, 3, dcgm).create()
    yield p
    p.delete()


def raycluster(env: JobEnv, name: str = "tc") -> dict[str, Any] | None:
    return env.cluster.get_or_none("raycluster", name)


def worker_group(env: JobEnv) -> dict[str, Any]:
    rc = raycluster(env)
    assert rc is not None
    group: dict[str, Any] = rc["spec"]["workerGroupSpecs"][0]
    return group


def workers_to_delete(env: JobEnv) -> set[str]:
    return set((worker_group(env).get("scaleStrategy") or {}).get("workersToDelete") or [])


def running_workers(env: JobEnv, count: int) -> list[dict[str, Any]]:
    def running() -> list[dict[str, Any]] | None:
        pods = env.cluster.get("pods", "-l", "portalis.dev/cluster=tc,portalis.dev/role=worker")["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running"]
        return sorted(live, key=lambda p: p["metadata"]["name"]) if len(live) == count else None

    return wait_for(running, timeout=60, interval=0.3)


def items(env: JobEnv, count: int) -> list[WorkItem]:
    return [
        WorkItem(env.namespace, "cores", "cores-uid", f"i{i}", "b", f"k{i}", "b", f"o{i}", 10, "small", "Batch", 3)
        for i in range(count)
    ]


# ---- the cluster core ----------------------------------------------------------------------------------------


def test_cluster_core_scales_from_the_queue_and_reads_quarantines_from_the_node(env: JobEnv, pool: Pool) -> None:
    env.create_cluster(
        workers=pool.workers_spec(minWorkers=1, maxWorkers=3),
        autoscaling={"enabled": True, "targetItemsPerWorker": 10, "scaleDownStabilizationSeconds": 600},
    )
    # created at once with minWorkers; the count Portalis chose is kept on the RayCluster itself
    rc = wait_for(lambda: raycluster(env), timeout=20)
    assert worker_group(env)["replicas"] == 1
    assert rc["metadata"]["annotations"][WORKERS_ANNOTATION] == "1"
    wait_for(lambda: env.cluster.condition("tc", "tc", "Ready") == "True", timeout=60)

    # 25 items waiting: ceil(25 / 10) = 3 workers, on the RayCluster and in status
    env.queue().enqueue("cores-uid", items(env, 25), 0)
    wait_for(lambda: worker_group(env)["replicas"] == 3, timeout=15)
    annotations = (raycluster(env) or {})["metadata"]["annotations"]
    assert annotations[WORKERS_ANNOTATION] == "3"
    wait_for(lambda: (env.cluster.get("tc", "tc").get("status") or {}).get("workers", {}).get("desired") == 3)

    # a Node quarantined for this cluster, written as the health controller writes it: the cluster controller
    # reads it from the Node and names the worker there in the RayCluster's workersToDelete
    workers = running_workers(env, 3)
    victim = workers[0]
    victim_node = victim["spec"]["nodeName"]
    quarantine = {
        "metadata": {
            "labels": {"portalis.dev/quarantined": "true"},
            "annotations": {"portalis.dev/quarantine-clusters": f"{env.namespace}/tc"},
        },
        "spec": {
            "unschedulable": True,
            "taints": [
                *node(env.cluster.kube, victim_node)["spec"].get("taints", []),
                {"key": "portalis.dev/gpu-unhealthy", "value": "test", "effect": "NoSchedule"},
            ],
        },
    }
    env.cluster.kube.kubectl("patch", "node", victim_node, "--type=merge", "-p", json.dumps(quarantine))

    # nothing else removes it: the queue still holds 25 items for 3 workers, and KubeRay restarts no worker of
    # its own on a cordoned node; KubeRay removes it when the RayCluster names it (and clears the name again)
    def victim_leaves() -> bool:
        pods = env.cluster.get("pods", "-l", "portalis.dev/cluster=tc,portalis.dev/role=worker")["items"]
        here = [p for p in pods if p["metadata"]["name"] == victim["metadata"]["name"]]
        return not here or bool(here[0]["metadata"].get("deletionTimestamp"))

    wait_for(victim_leaves, timeout=20)
    assert worker_group(env)["replicas"] == 3  # removed from its node, not scaled away
    # once the pod is gone it drops out of workersToDelete, and no worker runs on the quarantined node
    wait_for(lambda: not workers_to_delete(env), timeout=60)
    pods = env.cluster.get("pods", "-l", "portalis.dev/cluster=tc,portalis.dev/role=worker")["items"]
    assert victim_node not in {p["spec"].get("nodeName") for p in pods if not p["metadata"].get("deletionTimestamp")}


# ---- the job core ----------------------------------------------------------------------------------------------


def test_job_core_queues_the_plan_and_costs_items_at_the_price_the_cluster_is_metered_at(env: JobEnv) -> None:
    # no spec.pricing: the cluster is metered at the operator's default price, and so are its jobs' items
    env.create_cluster(pricing=None)
    stored = env.cluster.get("tc", "tc")["spec"]
    assert "pricing" not in stored
    bucket = f"src-{env.namespace}"
    env.upload(bucket, "repo/", {f"m{i}.py": simple_module(i, env.namespace) for i in range(3)})
    env.submit("cost", bucket, "repo/", output={"prefix": "out/"})
    status = env.wait_phase("cost", {"Running"}, timeout=60)
    assert status["items"]["total"] == 3

    # a worker (this test) takes each item and reports 100 GPU-seconds for it
    queue = env.queue()
    for _ in range(3):
        delivery = wait_for(lambda: queue.take("w-cores", block_ms=200), timeout=30)
        assert delivery.item.job_name == "cost"
        assert queue.complete(delivery, "done", 100.0)
    status = env.wait_phase("cost", {"Succeeded"}, timeout=60)
    assert status["items"]["done"] == 3
    assert status["cost"]["gpuSeconds"] == 300
    assert status["cost"]["spent"] == "0.30"  # 300 GPU-seconds at 3.60 an hour
    assert status["cost"]["perItem"] == "0.10"


# ---- the GPU health core -------------------------------------------------------------------------------------


def test_health_core_quarantines_on_an_ecc_error_and_the_worker_leaves_through_the_raycluster(
    env: JobEnv, pool: Pool, dcgm: FakeDcgmExporter
) -> None:
    env.create_cluster(workers=pool.workers_spec(minWorkers=1, maxWorkers=1), health={"eccAction": "Cordon"})
    [worker] = running_workers(env, 1)
    victim = worker["spec"]["nodeName"]
    scraped = dcgm.scrapes
    wait_for(lambda: dcgm.scrapes >= scraped + 2, timeout=10)  # the poller has its baseline for the new nodes

    dcgm.bump_dbe(victim, gpu=1)
    body = wait_for(lambda: (lambda b: b if is_quarantined(b) else None)(node(env.cluster.kube, victim)), 20, 0.1)
    assert body["metadata"]["annotations"]["portalis.dev/quarantine-clusters"] == f"{env.namespace}/tc"

    def removed() -> list[str] | None:
        texts = [
            e["message"] for e in env.cluster.events("TranslationCluster", "tc") if e["reason"] == "RayWorkersRemoved"
        ]
        return texts or None

    [text] = wait_for(removed, timeout=30)
    assert worker["metadata"]["name"] in text and "through the RayCluster's workersToDelete" in text

    def listed() -> list[dict[str, Any]] | None:
        entries = (env.cluster.get("tc", "tc").get("status") or {}).get("quarantinedNodes") or []
        return [e for e in entries if e["name"] == victim and e.get("phase") == "Cordoned"] or None

    wait_for(listed, timeout=20)

    # a person releases the repaired node
    env.cluster.kube.kubectl("annotate", "node", victim, "portalis.dev/release=true")
    released = wait_for(
        lambda: (lambda b: b if not is_quarantined(b) and not b["spec"].get("unschedulable") else None)(
            node(env.cluster.kube, victim)
        ),
        timeout=20,
    )
    assert "portalis.dev/quarantined" not in released["metadata"].get("labels", {})
    wait_for(lambda: not (env.cluster.get("tc", "tc").get("status") or {}).get("quarantinedNodes"), timeout=20)
