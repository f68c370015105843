from __future__ import annotations

from portalis_devcluster.nodes import GPU_PRODUCTS, KWOK_ANNOTATION, FleetSpec, build_nodes


def test_fleet_has_the_requested_nodes_in_a_stable_order() -> None:
    nodes = build_nodes(FleetSpec(h100_nodes=3, a100_nodes=2, cpu_nodes=1))
    names = [n["metadata"]["name"] for n in nodes]
    assert names == ["gpu-h100-0", "gpu-h100-1", "gpu-h100-2", "gpu-a100-0", "gpu-a100-1", "cpu-0"]
    assert build_nodes(FleetSpec(h100_nodes=3, a100_nodes=2, cpu_nodes=1)) == nodes


def test_gpu_nodes_look_like_gpu_feature_discovery_labelled_nodes() -> None:
    spec = FleetSpec(h100_nodes=2, a100_nodes=2, cpu_nodes=0, gpus_per_node=4, spot_every=2)
    for node in build_nodes(spec):
        labels = node["metadata"]["labels"]
        assert node["metadata"]["annotations"][KWOK_ANNOTATION] == "fake"
        assert labels["nvidia.com/gpu.present"] == "true"
        assert labels["nvidia.com/gpu.product"] in {p[0] for p in GPU_PRODUCTS.values()}
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"
        assert node["status"]["capacity"] == node["status"]["allocatable"]
        assert node["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    capacity_types = [n["metadata"]["labels"]["karpenter.sh/capacity-type"] for n in build_nodes(spec)]
    assert capacity_types == ["on-demand", "spot", "on-demand", "spot"]


def test_cpu_nodes_have_no_gpus_and_no_taint() -> None:
    (cpu,) = build_nodes(FleetSpec(h100_nodes=0, a100_nodes=0, cpu_nodes=1))
    assert "nvidia.com/gpu" not in cpu["status"]["capacity"]
    assert cpu["spec"] == {}


def test_untainted_fleet_and_no_spot() -> None:
    nodes = build_nodes(FleetSpec(h100_nodes=2, a100_nodes=0, cpu_nodes=0, spot_every=0, gpu_taint=False))
    assert all(n["spec"] == {} for n in nodes)
    assert {n["metadata"]["labels"]["karpenter.sh/capacity-type"] for n in nodes} == {"on-demand"}
