"""The data plane in real pods on the real node: Ray actors in the worker pods translate, the RayCluster scales up for
a backlog and down to idle workers, and a worker container killed mid-item, an ECC alert for the node, the operator's
pod deleted mid-job or a suspended cluster lose nothing. The Dask backend translates on real pods too.

Everything runs as users run it: the operator from its chart, Redis and S3 in the cluster, reached by Service names.
The session's local operator process is paused for the module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.dataplane import RealData, alert_from_a_pod, now, real_data
from e2e.helpers import wait_for
from e2e.realnode import require_real_node
from portalis_devcluster import stack
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.node import NODE_NAME

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]


@pytest.fixture(scope="module")
def data(kube: DevCluster, request: pytest.FixtureRequest) -> Iterator[RealData]:
    request.getfixturevalue("crds")
    request.getfixturevalue("local_operators_paused")
    require_real_node(kube)
    try:
        with real_data(kube, "rn") as data:
            yield data
    except stack.StackError as exc:
        pytest.skip(str(exc))


@pytest.fixture(autouse=True)
def fresh(data: RealData) -> Iterator[None]:
    """Each test's clusters and jobs go when it ends, pass or fail: the real node has room for one cluster at a time."""
    yield
    data.c.kubectl("delete", "tj", "--all", "--timeout=120s", check=False)
    data.c.kubectl("delete", "tc", "--all", "--timeout=180s", check=False)
    wait_for(lambda: not data.c.get("pods", "-l", "portalis.dev/cluster")["items"], timeout=180, interval=1)


def _ready(pod: dict[str, object]) -> bool:
    status = pod.get("status") or {}
    assert isinstance(status, dict)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def test_a_backlog_scales_the_raycluster_up_and_idle_workers_are_scaled_away(data: RealData) -> None:
    engine = data.slow_engine(2.0)
    data.create_cluster(
        "scale",
        workers=1,
        max_workers=3,
        engine=engine,
        autoscaling={
            "enabled": True,
            "targetItemsPerWorker": 4,
            "scaleUpStabilizationSeconds": 0,
            "scaleDownStabilizationSeconds": 15,
        },
    )
    data.wait_ready("scale")
    (first,) = [p["metadata"]["name"] for p in data.ray_pods("scale", "worker")]
    data.submit("scale", "backlog", 24)

    # the backlog raises the RayCluster's replicas at once; the new pods join Ray and their actors take items
    wait_for(lambda: data.c.get("raycluster", "scale")["spec"]["workerGroupSpecs"][0]["replicas"] == 3, timeout=60)
    wait_for(lambda: len([p for p in data.ray_pods("scale", "worker") if _ready(p)]) == 3, timeout=180, interval=1)
    busy_pods: set[str] = set()

    def a_new_pod_works() -> bool:
        busy_pods.update(name.split("/")[0] for name in data.busy_workers("scale"))
        return bool(busy_pods - {first})

    wait_for(a_new_pod_works, timeout=120, interval=0.5)
    data.assert_finished_once("scale", "backlog", 24)

    # with the queue empty, after the scale-down stabilization only idle workers are named for removal
    wait_for(lambda: data.c.get("raycluster", "scale")["spec"]["workerGroupSpecs"][0]["replicas"] == 1, timeout=120)
    wait_for(lambda: len(data.ray_pods("scale", "worker")) == 1, timeout=120, interval=1)
    events = data.c.kubectl("get", "events", "--field-selector", "involvedObject.name=scale", "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"ScaledUp", "ScaledDown"} <= reasons, reasons
    head = data.ray_pods("scale", "head")[0]["metadata"]["name"]

    def dead_ray_nodes() -> list[dict[str, object]]:
        listed = data.c.kubectl(
            "exec", head, "-c", "ray-head", "--", "ray", "list", "nodes", "--detail", "--format", "json"
        ).stdout
        dead = [n for n in json.loads(listed) if n.get("state") == "DEAD"]
        return dead if len(dead) == 2 else []

    # the removed workers' raylets were told to stop (SIGTERM) and drained before they exited
    for n in wait_for(dead_ray_nodes, timeout=60, interval=2):
        assert "received SIGTERM" in str(n.get("state_message")), n


def test_a_worker_container_sigkilled_mid_item_loses_nothing(kube: DevCluster, data: RealData) -> None:
    node = require_real_node(kube)
    data.create_cluster("crash", workers=2, max_workers=2, engine=data.slow_engine(6.0))
    data.wait_ready("crash")
    data.submit("crash", "crashjob", 8)
    busy = wait_for(lambda: data.busy_workers("crash"), timeout=120, interval=0.3)
    victim_worker = next(iter(busy))
    victim_pod = victim_worker.split("/")[0]
    pod = data.c.get("pod", victim_pod)
    container = pod["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    killed = node.ctr("tasks", "kill", "--signal", "SIGKILL", container)
    assert killed.returncode == 0, killed.stderr
    started = now()
    data.assert_finished_once("crash", "crashjob", 8)
    print(f"job finished {now() - started:.1f}s after the kill")
    restarted = data.c.get("pod", victim_pod)["status"]["containerStatuses"][0]
    assert restarted["restartCount"] >= 1 and restarted["lastState"]["terminated"]["exitCode"] == 137


def test_an_ecc_alert_for_the_real_node_returns_the_items_in_flight_and_nothing_is_lost(data: RealData) -> None:
    data.create_cluster("ecc", workers=2, max_workers=2, engine=data.slow_engine(6.0), health={"eccAction": "Cordon"})
    data.wait_ready("ecc")
    data.submit("ecc", "eccjob", 30)
    wait_for(lambda: data.busy_workers("ecc"), timeout=120, interval=0.3)
    before = {p["metadata"]["name"] for p in data.ray_pods("ecc", "worker")}
    try:
        out = alert_from_a_pod(data, NODE_NAME)
        assert "status 200" in out or "status 202" in out, out
        node = wait_for(
            lambda: (
                (n := json.loads(data.stack.kube.kubectl("get", "node", NODE_NAME, "-o", "json").stdout))
                and n["spec"].get("unschedulable")
                and n
            ),
            timeout=30,
        )
        assert node["metadata"]["labels"].get("portalis.dev/quarantined") == "true"
        # KubeRay removes the node's workers; their replacements cannot be placed on the cordoned node
        wait_for(lambda: not before & {p["metadata"]["name"] for p in data.ray_pods("ecc", "worker")}, timeout=120)
        wait_for(lambda: not data.busy_workers("ecc"), timeout=60)
        assert data.status("eccjob").get("phase") == "Running"
        events = data.c.kubectl("get", "events", "-o", "json").stdout
        assert "ItemsRequeued" in {e["reason"] for e in json.loads(events)["items"]}, events[-2000:]
    finally:
        plugin = str(Path(sys.executable).with_name("kubectl-portalis"))
        release = subprocess.run(
            [plugin, "release-node", NODE_NAME, "--yes"],
            capture_output=True,
            text=True,
            env=data.stack.kube.env(),
        )
    assert release.returncode == 0, release.stdout + release.stderr
    data.assert_finished_once("ecc", "eccjob", 30)
    node = json.loads(data.stack.kube.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
    assert not node["spec"].get("unschedulable") and "portalis.dev/quarantined" not in node["metadata"]["labels"]


def test_deleting_the_operator_pod_mid_job_loses_nothing(data: RealData) -> None:
    data.create_cluster("opkill", workers=1, max_workers=1, engine=data.slow_engine(2.0))
    data.wait_ready("opkill")
    data.submit("opkill", "opjob", 10)
    wait_for(lambda: (data.status("opjob").get("items") or {}).get("done", 0) >= 2, timeout=120, interval=0.5)
    release = data.stack.release
    (old,) = [p["metadata"]["name"] for p in release.pods()]
    release.kube.kubectl("-n", release.namespace, "delete", "pod", old, "--wait=false")
    new = wait_for(
        lambda: [p["metadata"]["name"] for p in release.pods() if p["metadata"]["name"] != old and _ready(p)],
        timeout=180,
        interval=1,
    )
    data.assert_finished_once("opkill", "opjob", 10)
    lease = json.loads(
        release.kube.kubectl("-n", release.namespace, "get", "lease", "portalis-operator", "-o", "json").stdout
    )
    assert lease["spec"]["holderIdentity"] == new[0]


def test_a_suspended_clusters_pods_go_and_come_back(data: RealData) -> None:
    data.create_cluster("susp", workers=1, max_workers=1)
    data.wait_ready("susp")
    data.c.kubectl("patch", "tc", "susp", "--type=merge", "-p", '{"spec":{"suspend":true}}')
    wait_for(lambda: data.c.condition("tc", "susp", "Suspended") == "True", timeout=60)
    wait_for(lambda: not data.ray_pods("susp", "worker") and not data.ray_pods("susp", "head"), timeout=180, interval=1)
    data.c.kubectl("patch", "tc", "susp", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    data.wait_ready("susp")
    assert len([p for p in data.ray_pods("susp", "worker") if _ready(p)]) == 1


def test_the_dask_backend_translates_on_real_pods(data: RealData) -> None:
    data.create_cluster("dask", workers=1, max_workers=1, backend="Dask")
    data.wait_ready("dask")
    pods = data.pods("dask")
    assert pods and all(p["spec"]["nodeName"] == NODE_NAME and _ready(p) for p in pods), pods
    data.submit("dask", "daskjob", 6)
    data.assert_finished_once("dask", "daskjob", 6)
