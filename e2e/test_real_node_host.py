"""A second local cluster with a real node comes up beside the session's and goes down leaving the machine as it was:
links, addresses, routes, the host's iptables rules, mounts, cgroups and the sysctls the kubelet sets."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import pytest

from portalis_devcluster import build, host
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.node import NODE_NAME, RealNodeSpec
from portalis_devcluster.nodes import FleetSpec

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]


def _diff(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
    out = {}
    for key in before.keys() | after.keys():
        gone = sorted(set(before.get(key, [])) - set(after.get(key, [])))
        new = sorted(set(after.get(key, [])) - set(before.get(key, [])))
        if gone or new:
            out[key] = {"gone": gone, "left": new}
    return out


def test_up_and_down_of_a_real_node_leave_the_machine_as_it_was(kube: DevCluster) -> None:
    missing = host.missing_for_real_node()
    if missing or not RealNodeSpec.from_env().enabled:
        pytest.skip("no real node here: " + ("; ".join(missing) or "turned off"))
    state = build.cache_root() / "clusters" / f"host-{uuid.uuid4().hex[:6]}"
    cluster = DevCluster(Path(state), FleetSpec(h100_nodes=1, a100_nodes=0, cpu_nodes=0), RealNodeSpec(gpus=2))
    before = host.snapshot()
    try:
        started = time.monotonic()
        cluster.up(load_images=False)
        up_seconds = time.monotonic() - started
        node = json.loads(cluster.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "2"
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://2.")
        # both clusters' nodes run at once, each in its own slot
        assert cluster.state().node.slot != kube.state().node.slot
        during = host.snapshot()
        assert _diff(before, during), "a running real node should show on the machine"
        assert during["iptables"] == before["iptables"], "kube-proxy and the kubelet wrote the host's iptables"
    finally:
        cluster.down()
    after = host.snapshot()
    shutil.rmtree(state, ignore_errors=True)
    assert _diff(before, after) == {}, json.dumps(_diff(before, after), indent=1)
    print(f"second cluster with a real node up in {up_seconds:.1f}s")
