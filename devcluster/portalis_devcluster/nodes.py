"""The fake GPU fleet of the local cluster: pure builders of KWOK Node objects.

Nodes carry what GPU Feature Discovery and the NVIDIA device plugin would set on a real GPU node
(``nvidia.com/gpu`` capacity, ``nvidia.com/gpu.product`` and friends) plus a capacity-type label, so the
scheduler, the operator and the cost meter see what they would see on a cloud GPU node pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GPU_PRODUCTS = {
    "H100": ("NVIDIA-H100-80GB-HBM3", "81559", "p5.48xlarge"),
    "A100": ("NVIDIA-A100-SXM4-80GB", "81920", "p4de.24xlarge"),
}
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
FLEET_LABEL = "portalis.dev/devcluster"


@dataclass(frozen=True)
class FleetSpec:
    """How many fake nodes of each kind; every `spot_every`-th GPU node is a spot node."""

    h100_nodes: int = 4
    a100_nodes: int = 4
    cpu_nodes: int = 2
    gpus_per_node: int = 8
    spot_every: int = 2
    gpu_taint: bool = True


def _node(name: str, labels: dict[str, str], capacity: dict[str, str], taints: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "type": "kwok",
                FLEET_LABEL: "true",
                **labels,
            },
        },
        "spec": {"taints": taints} if taints else {},
        "status": {
            "allocatable": capacity,
            "capacity": capacity,
            "phase": "Running",
        },
    }


def build_nodes(spec: FleetSpec) -> list[dict[str, Any]]:
    """Node manifests for the fleet, in a stable order (GPU nodes first, then CPU nodes)."""
    nodes: list[dict[str, Any]] = []
    taints = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}] if spec.gpu_taint else []
    for gpu_type, count in (("H100", spec.h100_nodes), ("A100", spec.a100_nodes)):
        product, memory, instance = GPU_PRODUCTS[gpu_type]
        for i in range(count):
            spot = spec.spot_every > 0 and i % spec.spot_every == spec.spot_every - 1
            capacity_type = "spot" if spot else "on-demand"
            labels = {
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": product,
                "nvidia.com/gpu.count": str(spec.gpus_per_node),
                "nvidia.com/gpu.memory": memory,
                "nvidia.com/gpu.family": "hopper" if gpu_type == "H100" else "ampere",
                "node.kubernetes.io/instance-type": instance,
                "karpenter.sh/capacity-type": capacity_type,
                "topology.kubernetes.io/zone": f"local-{'ab'[i % 2]}",
            }
            capacity = {
                "cpu": "96",
                "memory": "1024Gi",
                "pods": "110",
                "ephemeral-storage": "1Ti",
                "nvidia.com/gpu": str(spec.gpus_per_node),
            }
            nodes.append(_node(f"gpu-{gpu_type.lower()}-{i}", labels, capacity, taints))
    for i in range(spec.cpu_nodes):
        labels = {"node.kubernetes.io/instance-type": "m6i.8xlarge", "karpenter.sh/capacity-type": "on-demand"}
        capacity = {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "500Gi"}
        nodes.append(_node(f"cpu-{i}", labels, capacity, []))
    return nodes
