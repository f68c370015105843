"""TranslationCluster spec -> KubeRay ``ray.io/v1`` RayCluster (pure).

A head group without GPUs (``num-cpus: 0`` keeps translator actors off it) and one GPU worker group whose
containers carry ``nvidia.com/gpu`` limits equal to requests. KubeRay's in-tree autoscaler is off: Portalis owns
``replicas`` and names the workers to remove in ``scaleStrategy.workersToDelete``. The head pod also runs the data
plane's driver as a sidecar, which serves the workers' metrics on a port named ``worker-metrics`` (KubeRay gives the
name ``metrics`` to Ray's own exporter on the Ray container), for a PodMonitor to scrape. A Ray driver attaches to the
raylet of its node, which it finds among the processes it sees and reaches through Ray's session directory: so the
head pod shares its process namespace, and the sidecar mounts the Ray container's ``/tmp/ray``. Every Ray container
gets a memory-backed ``/dev/shm`` for the object store.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.desired.pods import (
    Owner,
    head_resources,
    labels,
    merge_template,
    worker_affinity,
    worker_env,
    worker_resources,
    worker_tolerations,
)

RAY_VERSION = "2.60.0"
WORKER_GROUP = "gpu-workers"
HEAD_CONTAINER = "ray-head"
WORKER_CONTAINER = "ray-worker"
DRIVER_CONTAINER = "portalis-driver"
WORKER_METRICS_PORT = 9090
WORKER_METRICS_PORT_NAME = "worker-metrics"
# The driver sidecar attaches to the head's raylet through Ray's session directory (its sockets and session files),
# so the two containers share it (and the pod its process namespace). Ray's object store lives in /dev/shm, which
# must be memory-backed and larger than a container runtime's default 64 MiB.
RAY_SESSION_VOLUME = {"name": "ray-session", "emptyDir": {}}
RAY_SESSION_MOUNT = {"name": "ray-session", "mountPath": "/tmp/ray"}
SHM_VOLUME = {"name": "dshm", "emptyDir": {"medium": "Memory"}}
SHM_MOUNT = {"name": "dshm", "mountPath": "/dev/shm"}


def raycluster_name(cluster_name: str) -> str:
    """The RayCluster has the TranslationCluster's name, so `kubectl get raycluster NAME` just works."""
    return cluster_name


def named_workers_to_delete(raycluster: Mapping[str, Any] | None) -> frozenset[str]:
    """The worker pods a RayCluster names in its groups' ``scaleStrategy.workersToDelete``."""
    names: set[str] = set()
    for group in ((raycluster or {}).get("spec") or {}).get("workerGroupSpecs") or []:
        names.update((group.get("scaleStrategy") or {}).get("workersToDelete") or [])
    return frozenset(names)


def clamp_replicas(spec: TranslationClusterSpec, replicas: int | None) -> int:
    """The worker count to run: the scaler's choice within [minWorkers, maxWorkers], minWorkers at first."""
    if replicas is None:
        return spec.workers.min_workers
    return max(spec.workers.min_workers, min(spec.workers.max_workers, replicas))


def build_raycluster(
    spec: TranslationClusterSpec,
    owner: Owner,
    replicas: int | None = None,
    workers_to_delete: list[str] | None = None,
) -> dict[str, Any]:
    """The full desired RayCluster, every field Portalis owns (for server-side apply)."""
    env = worker_env(spec, owner)
    head_spec: dict[str, Any] = {
        "containers": [
            {
                "name": HEAD_CONTAINER,
                "image": spec.image,
                "resources": head_resources(spec),
                "env": env,
                "securityContext": {"allowPrivilegeEscalation": False},
                "volumeMounts": [dict(RAY_SESSION_MOUNT), dict(SHM_MOUNT)],
            },
            {
                # the data plane's driver: one translator actor per GPU, following the cluster's size
                "name": DRIVER_CONTAINER,
                "image": spec.image,
                "command": [
                    "portalis",
                    "worker",
                    "ray-driver",
                    "--address",
                    "127.0.0.1:6379",
                    "--metrics-port",
                    str(WORKER_METRICS_PORT),
                ],
                "ports": [{"name": WORKER_METRICS_PORT_NAME, "containerPort": WORKER_METRICS_PORT, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
                "env": copy.deepcopy(env),
                "securityContext": {"allowPrivilegeEscalation": False},
                "volumeMounts": [dict(RAY_SESSION_MOUNT), dict(SHM_MOUNT)],
            },
        ],
        "volumes": [copy.deepcopy(RAY_SESSION_VOLUME), copy.deepcopy(SHM_VOLUME)],
        # a driver finds the node's raylet among the processes it can see
        "shareProcessNamespace": True,
    }
    if spec.head is not None and spec.head.node_selector:
        head_spec["nodeSelector"] = dict(spec.head.node_selector)
    if spec.head is not None and spec.head.tolerations:
        head_spec["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in spec.head.tolerations
        ]

    workers = spec.workers
    worker_spec: dict[str, Any] = {
        "containers": [
            {
                "name": WORKER_CONTAINER,
                "image": spec.image,
                "resources": worker_resources(workers),
                "env": copy.deepcopy(env),
                "securityContext": {"allowPrivilegeEscalation": False},
                "volumeMounts": [dict(SHM_MOUNT)],
            }
        ],
        "volumes": [copy.deepcopy(SHM_VOLUME)],
        "affinity": worker_affinity(workers),
        "tolerations": worker_tolerations(workers),
        # time for an in-flight item to finish or be handed back to the queue on scale-down
        "terminationGracePeriodSeconds": min(spec.engine.timeout_seconds + 30, 3630),
    }
    if workers.node_selector:
        worker_spec["nodeSelector"] = dict(workers.node_selector)
    worker_template = merge_template(
        {"metadata": {"labels": labels(owner, "worker")}, "spec": worker_spec}, workers.pod_template
    )

    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "name": raycluster_name(owner.name),
            "namespace": owner.namespace,
            "labels": labels(owner, "raycluster"),
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "rayVersion": RAY_VERSION,
            "enableInTreeAutoscaling": False,
            # a changed pod template (GPUs per worker, image, engine) needs new pods: KubeRay recreates them
            "upgradeStrategy": {"type": "Recreate"},
            "suspend": spec.suspend,
            "headGroupSpec": {
                "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0", "num-gpus": "0"},
                "template": {"metadata": {"labels": labels(owner, "head")}, "spec": head_spec},
            },
            "workerGroupSpecs": [
                {
                    "groupName": WORKER_GROUP,
                    "replicas": clamp_replicas(spec, replicas),
                    "minReplicas": workers.min_workers,
                    "maxReplicas": workers.max_workers,
                    "rayStartParams": {"num-gpus": str(workers.gpus_per_worker)},
                    "scaleStrategy": {"workersToDelete": sorted(workers_to_delete or [])},
                    "template": worker_template,
                }
            ],
        },
    }
