"""TranslationCluster end to end: the operator, the real KubeRay and dask-kubernetes operators, KWOK GPU nodes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import Cluster, wait_for
from portalis_devcluster.nodes import GPU_PRODUCTS
from portalis_devcluster.operator import OperatorProcess

pytestmark = pytest.mark.cluster

EXAMPLES = Path(__file__).parents[1] / "manifests" / "examples"
H100 = GPU_PRODUCTS["H100"][0]


@pytest.fixture
def tc(operator: OperatorProcess, namespace: str) -> Cluster:
    return Cluster(operator.kube, namespace)


def _worker_pods(c: Cluster, name: str) -> list[dict[str, Any]]:
    pods = c.get("pods", "-l", f"portalis.dev/cluster={name},portalis.dev/role=worker")["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def test_h100_example_becomes_a_ready_gpu_raycluster_within_10s(tc: Cluster) -> None:
    applied = time.monotonic()
    tc.kubectl("apply", "-f", str(EXAMPLES / "translationcluster-h100.yaml"))
    ready = wait_for(lambda: tc.condition("tc", "h100", "Ready") == "True", timeout=10)
    elapsed = time.monotonic() - applied
    assert ready, f"not Ready within 10 s: {tc.get('tc', 'h100').get('status')}"

    rc = tc.get("raycluster", "h100")
    owner = rc["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("TranslationCluster", "h100", True)
    assert rc["spec"]["enableInTreeAutoscaling"] is False
    group = rc["spec"]["workerGroupSpecs"][0]
    assert group["replicas"] == 2 and group["rayStartParams"]["num-gpus"] == "1"

    head = tc.get("pods", "-l", "ray.io/cluster=h100,ray.io/node-type=head")["items"]
    assert len(head) == 1
    assert "nvidia.com/gpu" not in json.dumps(head[0]["spec"]["containers"][0].get("resources", {}))
    # the driver sidecar's worker metrics port, apart from the "metrics" port KubeRay gives Ray's own exporter
    ports = {
        c["name"]: {p["name"]: p["containerPort"] for p in c.get("ports", [])} for c in head[0]["spec"]["containers"]
    }
    assert ports["portalis-driver"] == {"worker-metrics": 9090}
    assert ports["ray-head"].get("metrics") == 8080
    workers = _worker_pods(tc, "h100")
    assert len(workers) == 2
    for pod in workers:
        res = pod["spec"]["containers"][0]["resources"]
        assert res["limits"]["nvidia.com/gpu"] == "1" and res["requests"]["nvidia.com/gpu"] == "1"
        node = tc.get_cluster_scoped("node", pod["spec"]["nodeName"])
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == H100
        assert node["metadata"]["labels"]["karpenter.sh/capacity-type"] == "on-demand"
        assert pod["status"]["phase"] == "Running"

    status = tc.get("tc", "h100")["status"]
    assert status["rayClusterName"] == "h100"
    assert status["workers"] == {"desired": 2, "ready": 2, "busy": 0}
    assert status["gpus"]["allocated"] == 2
    assert status["observedGeneration"] == 1
    print(f"apply -> Ready: {elapsed:.2f}s")

    table = tc.kubectl("get", "tc", "h100").stdout
    header = table.splitlines()[0].split()
    assert header[:5] == ["NAME", "BACKEND", "DESIRED", "READY", "GPUS"]
    assert table.splitlines()[1].split()[1:5] == ["Ray", "2", "2", "2"]


def test_more_gpus_than_the_fleet_has_reports_insufficient_gpus(tc: Cluster) -> None:
    tc.apply_example(EXAMPLES / "translationcluster-h100.yaml", {"spec": {"workers": {"gpusPerWorker": 16}}})

    def insufficient() -> dict[str, Any] | None:
        c = tc.condition_obj("tc", "h100", "Ready")
        return c if c and c["reason"] == "InsufficientGPUs" else None

    cond = wait_for(insufficient, timeout=20)
    assert cond["status"] == "False"
    assert "needs 16 nvidia.com/gpu" in cond["message"]
    assert "Insufficient nvidia.com/gpu" in cond["message"]
    assert "gpusPerWorker" in cond["message"]
    assert tc.condition("tc", "h100", "Degraded") == "True"
    assert any(e["reason"] == "InsufficientGPUs" for e in tc.events("TranslationCluster", "h100")), (
        "a Warning Event names the shortfall"
    )


def test_spec_changes_update_the_raycluster_and_its_pods(tc: Cluster) -> None:
    tc.apply_example(EXAMPLES / "translationcluster-h100.yaml")
    wait_for(lambda: tc.condition("tc", "h100", "Ready") == "True", timeout=20)
    tc.kubectl(
        "patch",
        "tc",
        "h100",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"workers": {"gpusPerWorker": 2, "minWorkers": 3}}}),
    )

    def updated() -> bool:
        group = tc.get("raycluster", "h100")["spec"]["workerGroupSpecs"][0]
        return bool(group["replicas"] == 3 and group["rayStartParams"]["num-gpus"] == "2")

    assert wait_for(updated, timeout=15)

    def pods_recreated() -> bool:
        pods = _worker_pods(tc, "h100")
        return len(pods) == 3 and all(
            p["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
            and p["status"].get("phase") == "Running"
            for p in pods
        )

    assert wait_for(pods_recreated, timeout=30)
    assert wait_for(lambda: tc.get("tc", "h100")["status"].get("gpus", {}).get("allocated") == 6, timeout=15)
    assert tc.get("tc", "h100")["status"]["observedGeneration"] == 2


def test_deleted_or_edited_raycluster_is_restored(tc: Cluster) -> None:
    tc.apply_example(EXAMPLES / "translationcluster-h100.yaml")
    wait_for(lambda: tc.condition("tc", "h100", "Ready") == "True", timeout=20)
    uid = tc.get("raycluster", "h100")["metadata"]["uid"]
    tc.kubectl("delete", "raycluster", "h100", "--wait=false")

    def recreated() -> bool:
        rc = tc.get_or_none("raycluster", "h100")
        return rc is not None and rc["metadata"]["uid"] != uid and not rc["metadata"].get("deletionTimestamp")

    assert wait_for(recreated, timeout=20)
    assert wait_for(lambda: tc.condition("tc", "h100", "Ready") == "True", timeout=30)

    tc.kubectl(
        "patch",
        "raycluster",
        "h100",
        "--type=json",
        "-p",
        json.dumps(
            [
                {
                    "op": "replace",
                    "path": "/spec/workerGroupSpecs/0/template/spec/containers/0/image",
                    "value": "evil:1",
                },
            ]
        ),
    )

    def image_restored() -> bool:
        group = tc.get("raycluster", "h100")["spec"]["workerGroupSpecs"][0]
        return bool(group["template"]["spec"]["containers"][0]["image"] == "ghcr.io/portalis/worker:0.1.0")

    assert wait_for(image_restored, timeout=15)
    reasons = [e["reason"] for e in tc.events("TranslationCluster", "h100")]
    assert reasons.count("Restored") >= 2, reasons


def test_suspend_and_resume(tc: Cluster) -> None:
    tc.apply_example(EXAMPLES / "translationcluster-h100.yaml")
    wait_for(lambda: tc.condition("tc", "h100", "Ready") == "True", timeout=20)
    tc.kubectl("patch", "tc", "h100", "--type=merge", "-p", '{"spec":{"suspend":true}}')
    assert wait_for(lambda: tc.get("raycluster", "h100")["spec"].get("suspend") is True, timeout=10)
    assert wait_for(lambda: not tc.get("pods", "-l", "ray.io/cluster=h100")["items"], timeout=30)
    assert wait_for(lambda: tc.condition("tc", "h100", "Suspended") == "True", timeout=10)
    assert tc.condition("tc", "h100", "Ready") == "False"
    assert tc.get("tc", "h100")["status"]["phase"] == "Suspended"

    tc.kubectl("patch", "tc", "h100", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    assert wait_for(lambda: tc.condition("tc", "h100", "Ready") == "True", timeout=30)
    assert len(_worker_pods(tc, "h100")) == 2
    reasons = [e["reason"] for e in tc.events("TranslationCluster", "h100")]
    assert "Suspended" in reasons and "Resumed" in reasons


def test_deleting_the_translationcluster_leaves_nothing_behind(tc: Cluster) -> None:
    tc.apply_example(EXAMPLES / "translationcluster-h100.yaml")
    wait_for(lambda: tc.condition("tc", "h100", "Ready") == "True", timeout=20)
    tc.kubectl("delete", "tc", "h100", "--wait=true", "--timeout=30s")

    def gone() -> bool:
        return (
            tc.get_or_none("raycluster", "h100") is None
            and not tc.get("pods", "-l", "portalis.dev/cluster=h100")["items"]
            and not tc.get("services", "-l", "ray.io/cluster=h100")["items"]
        )

    assert wait_for(gone, timeout=45)


def test_dask_example_gives_a_daskcluster_with_gpu_workers(tc: Cluster) -> None:
    tc.apply_example(EXAMPLES / "translationcluster-dask.yaml")

    def worker_pods() -> list[dict[str, Any]] | None:
        pods = _worker_pods(tc, "dask")
        return pods or None

    pods = wait_for(worker_pods, timeout=45)
    dc = tc.get("daskcluster", "dask")
    assert dc["metadata"]["ownerReferences"][0]["name"] == "dask"
    for pod in pods:
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == "1"
    assert wait_for(lambda: tc.condition("tc", "dask", "Ready") == "True", timeout=45)
    status = tc.get("tc", "dask")["status"]
    assert status["daskClusterName"] == "dask"
    assert status["gpus"]["allocated"] == 1


def test_any_character_in_the_spec_reaches_the_raycluster_unchanged(tc: Cluster) -> None:
    """Beyond U+FFFF (an emoji), C1 controls and YAML's line separators: the server-side apply body carries them
    as they are or as escapes the apiserver's YAML decoder reads back to the same string."""
    image = "ghcr.io/portalis/worker:0.1.0-\U0001f600\x86\u2028\x85\x7f"
    tc.apply_example(
        EXAMPLES / "translationcluster-h100.yaml", {"spec": {"image": image, "workers": {"minWorkers": 0}}}
    )

    def head_image() -> str | None:
        rc = tc.get_or_none("raycluster", "h100")
        if rc is None:
            return None
        return str(rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"])

    assert wait_for(head_image, timeout=15) == image
    assert tc.get("tc", "h100")["status"]["observedGeneration"] == 1


@pytest.mark.parametrize(
    ("name", "patch", "why"),
    [
        # (names the RayCluster could not have are refused at admission: tests/integration/admission_cases.yaml)
        # podTemplate is free-form; a field the RayCluster's schema lacks fails server-side apply (a 500)
        (
            "extra",
            {"spec": {"workers": {"podTemplate": {"metadata": {"extra": {"a": "b"}}}}}},
            "not declared in schema",
        ),
    ],
)
def test_a_backend_object_the_apiserver_refuses_is_reported(
    tc: Cluster, name: str, patch: dict[str, Any], why: str
) -> None:
    """The apiserver refuses the RayCluster made from the spec, and the TranslationCluster says so instead of the
    operator retrying with tracebacks."""
    tc.apply_example(EXAMPLES / "translationcluster-h100.yaml", {"metadata": {"name": name}, **patch})
    ready = wait_for(lambda: tc.condition_obj("tc", name, "Ready"), timeout=15)
    assert (ready["status"], ready["reason"]) == ("False", "BackendRefused"), ready
    assert "refused the RayCluster" in ready["message"] and why in ready["message"], ready
    assert tc.condition("tc", name, "Degraded") == "True"
    assert tc.get("tc", name)["status"]["phase"] == "Degraded"
    assert wait_for(lambda: [e for e in tc.events("TranslationCluster", name) if e["reason"] == "BackendRefused"])
