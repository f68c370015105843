"""The local GPU cluster behaves like a GPU node pool: real scheduler, KWOK nodes, the real KubeRay operator."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.node import NODE_LABEL
from portalis_devcluster.nodes import GPU_PRODUCTS

pytestmark = pytest.mark.cluster

H100 = GPU_PRODUCTS["H100"][0]


def _get(kube: DevCluster, *args: str) -> Any:
    return json.loads(kube.kubectl("get", *args, "-o", "json").stdout)


def _wait_for(fn: Any, timeout: float = 30, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s; last value: {last!r}")


def _gpu_pod(name: str, gpus: int, product: str | None = None) -> str:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "main",
                "image": "registry.local/cuda-check:1",
                "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
            }
        ]
    }
    if product:
        spec["nodeSelector"] = {"nvidia.com/gpu.product": product}
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


def test_gpu_nodes_are_ready_with_allocatable_gpus(kube: DevCluster) -> None:
    nodes = _get(kube, "nodes", "-l", "nvidia.com/gpu.present=true")["items"]
    assert len(nodes) >= 2
    products = {n["metadata"]["labels"]["nvidia.com/gpu.product"] for n in nodes}
    assert {GPU_PRODUCTS["H100"][0], GPU_PRODUCTS["A100"][0]} <= products
    assert {n["metadata"]["labels"]["karpenter.sh/capacity-type"] for n in nodes} == {"spot", "on-demand"}
    for n in nodes:
        # the KWOK fleet's nodes have 8 GPUs each; the real node has as many as its spec says
        real = n["metadata"]["labels"].get(NODE_LABEL) == "real"
        assert int(n["status"]["allocatable"]["nvidia.com/gpu"]) == (kube.real_node.gpus if real else 8)
        ready = [c for c in n["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", n["metadata"]["name"]


def test_gpu_pod_binds_to_an_h100_node_and_runs(kube: DevCluster, namespace: str) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=_gpu_pod("one-gpu", 1, H100))

    def running() -> dict[str, Any] | None:
        pod: dict[str, Any] = _get(kube, "pod", "-n", namespace, "one-gpu")
        return pod if pod["status"].get("phase") == "Running" else None

    pod = _wait_for(running)
    node = _get(kube, "node", pod["spec"]["nodeName"])
    assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == H100
    # the ExtendedResourceToleration admission plugin tolerates the GPU taint for pods that ask for GPUs
    assert any(t.get("key") == "nvidia.com/gpu" for t in pod["spec"]["tolerations"])


def test_pod_asking_for_more_gpus_than_any_node_stays_pending(kube: DevCluster, namespace: str) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=_gpu_pod("too-many", 64))

    def unschedulable() -> dict[str, Any] | None:
        pod = _get(kube, "pod", "-n", namespace, "too-many")
        for c in pod["status"].get("conditions", []):
            if c["type"] == "PodScheduled" and c["status"] == "False" and c.get("reason") == "Unschedulable":
                return dict(c)
        return None

    cond = _wait_for(unschedulable)
    assert "Insufficient nvidia.com/gpu" in cond["message"]
    assert _get(kube, "pod", "-n", namespace, "too-many")["status"]["phase"] == "Pending"


SAMPLE_RAYCLUSTER = {
    "apiVersion": "ray.io/v1",
    "kind": "RayCluster",
    "metadata": {"name": "sample"},
    "spec": {
        "rayVersion": "2.46.0",
        "headGroupSpec": {
            "rayStartParams": {},
            "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.46.0"}]}},
        },
        "workerGroupSpecs": [
            {
                "groupName": "gpu",
                "replicas": 2,
                "minReplicas": 0,
                "maxReplicas": 4,
                "rayStartParams": {"num-gpus": "1"},
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "ray-worker",
                                "image": "rayproject/ray:2.46.0",
                                "resources": {"limits": {"nvidia.com/gpu": "1"}},
                            }
                        ]
                    }
                },
            }
        ],
    },
}


def test_kuberay_turns_a_raycluster_into_head_and_worker_pods(kube: DevCluster, namespace: str) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(SAMPLE_RAYCLUSTER))

    def pods_running() -> list[dict[str, Any]] | None:
        pods = _get(kube, "pods", "-n", namespace, "-l", "ray.io/cluster=sample")["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        return running if len(running) == 3 else None

    pods = _wait_for(pods_running, timeout=60)
    kinds = sorted(p["metadata"]["labels"]["ray.io/node-type"] for p in pods)
    assert kinds == ["head", "worker", "worker"]
    for p in pods:
        if p["metadata"]["labels"]["ray.io/node-type"] == "worker":
            assert p["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
            node = _get(kube, "node", p["spec"]["nodeName"])
            assert node["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"


def test_up_is_idempotent(kube: DevCluster) -> None:
    pids = dict(kube.state().pids)
    kube.up(build_if_missing=False)
    assert kube.state().pids == pids
    assert kube.healthy()
