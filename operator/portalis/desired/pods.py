"""Pod-level pieces shared by the Ray and Dask builders: labels, placement, GPU resources and environment.

Pure: TranslationCluster spec in, Kubernetes manifest fragments out. Secrets are always referenced
(``valueFrom.secretKeyRef``), never copied into a manifest.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from portalis.api.v1alpha1.cluster import GpuType, TranslationClusterSpec, WorkerSpec

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
MANAGED_BY = "portalis-operator"
CLUSTER_LABEL = "portalis.dev/cluster"
ROLE_LABEL = "portalis.dev/role"

# nvidia.com/gpu.product values GPU Feature Discovery reports for each GPU model (SXM, PCIe and NVL forms).
GPU_PRODUCTS: dict[GpuType, tuple[str, ...]] = {
    GpuType.A100: (
        "NVIDIA-A100-SXM4-80GB",
        "NVIDIA-A100-SXM4-40GB",
        "NVIDIA-A100-80GB-PCIe",
        "NVIDIA-A100-PCIE-40GB",
    ),
    GpuType.H100: ("NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-SXM5-80GB", "NVIDIA-H100-PCIe", "NVIDIA-H100-NVL"),
    GpuType.H200: ("NVIDIA-H200", "NVIDIA-H200-141GB-HBM3e", "NVIDIA-H200-NVL"),
    GpuType.L4: ("NVIDIA-L4",),
    GpuType.L40S: ("NVIDIA-L40S",),
    GpuType.A10G: ("NVIDIA-A10G",),
    GpuType.T4: ("Tesla-T4",),
}

# Node labels clouds and provisioners use to mark spot capacity, with the value that means "spot".
SPOT_LABELS: tuple[tuple[str, str], ...] = (
    ("karpenter.sh/capacity-type", "spot"),
    ("eks.amazonaws.com/capacityType", "SPOT"),
    ("cloud.google.com/gke-spot", "true"),
    ("kubernetes.azure.com/scalesetpriority", "spot"),
)

DEFAULT_WORKER_RESOURCES = {"cpu": "4", "memory": "16Gi"}
DEFAULT_HEAD_RESOURCES = {"cpu": "1", "memory": "4Gi"}


@dataclass(frozen=True)
class Owner:
    """The TranslationCluster that owns what the builders make."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": "portalis.dev/v1alpha1",
            "kind": "TranslationCluster",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def labels(owner: Owner, role: str | None = None) -> dict[str, str]:
    out = {
        "app.kubernetes.io/name": "portalis",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        CLUSTER_LABEL: owner.name,
    }
    if role:
        out[ROLE_LABEL] = role
        out["app.kubernetes.io/component"] = role
    return out


def gpu_products(workers: WorkerSpec) -> tuple[str, ...]:
    """The product label values a worker node may have; empty means any GPU node."""
    if workers.gpu_product:
        return (workers.gpu_product,)
    return GPU_PRODUCTS.get(workers.gpu_type, ())


def worker_affinity(workers: WorkerSpec) -> dict[str, Any]:
    """Required node affinity: a GPU node of the asked product, spot or on-demand as asked.

    Spot capacity is recognised by any of the common labels; an on-demand worker avoids all of them
    (``NotIn`` also matches nodes that lack the label).
    """
    base: list[dict[str, Any]] = []
    products = gpu_products(workers)
    if products:
        base.append({"key": GPU_PRODUCT_LABEL, "operator": "In", "values": list(products)})
    else:
        base.append({"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]})
    if workers.spot:
        terms = [
            {"matchExpressions": [*copy.deepcopy(base), {"key": k, "operator": "In", "values": [v]}]}
            for k, v in SPOT_LABELS
        ]
    else:
        avoid = [{"key": k, "operator": "NotIn", "values": [v]} for k, v in SPOT_LABELS]
        terms = [{"matchExpressions": [*base, *avoid]}]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}


def worker_tolerations(workers: WorkerSpec) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    if workers.spot:
        out.append({"key": "karpenter.sh/capacity-type", "operator": "Equal", "value": "spot", "effect": "NoSchedule"})
        out.append({"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"})
        out.append(
            {
                "key": "kubernetes.azure.com/scalesetpriority",
                "operator": "Equal",
                "value": "spot",
                "effect": "NoSchedule",
            }
        )
    for t in workers.tolerations or []:
        out.append(t.model_dump(by_alias=True, exclude_none=True, mode="json"))
    return out


def worker_resources(workers: WorkerSpec) -> dict[str, dict[str, str]]:
    """Requests equal limits for GPUs (extended resources cannot be overcommitted)."""
    user = workers.resources
    requests = dict(DEFAULT_WORKER_RESOURCES)
    limits: dict[str, str] = {"memory": DEFAULT_WORKER_RESOURCES["memory"]}
    if user is not None:
        requests.update({k: str(v) for k, v in (user.requests or {}).items()})
        if user.requests and "memory" in user.requests:
            limits["memory"] = str(user.requests["memory"])
        limits.update({k: str(v) for k, v in (user.limits or {}).items()})
    gpus = str(workers.gpus_per_worker)
    requests[GPU_RESOURCE] = gpus
    limits[GPU_RESOURCE] = gpus
    return {"requests": requests, "limits": limits}


def head_resources(spec: TranslationClusterSpec) -> dict[str, dict[str, str]]:
    user = spec.head.resources if spec.head else None
    requests = dict(DEFAULT_HEAD_RESOURCES)
    limits = {"memory": DEFAULT_HEAD_RESOURCES["memory"]}
    if user is not None:
        requests.update({k: str(v) for k, v in (user.requests or {}).items()})
        if user.requests and "memory" in user.requests:
            limits["memory"] = str(user.requests["memory"])
        limits.update({k: str(v) for k, v in (user.limits or {}).items()})
    return {"requests": requests, "limits": limits}


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def worker_env(spec: TranslationClusterSpec, owner: Owner) -> list[dict[str, Any]]:
    """Engine, queue and storage settings for the worker process; secrets by reference only."""
    env: list[dict[str, Any]] = [
        {"name": "PORTALIS_CLUSTER", "value": owner.name},
        {"name": "PORTALIS_NAMESPACE", "value": owner.namespace},
        {"name": "PORTALIS_ENGINE", "value": str(spec.engine.name)},
        {"name": "PORTALIS_ENGINE_TIMEOUT_SECONDS", "value": str(spec.engine.timeout_seconds)},
        {"name": "PORTALIS_ENGINE_MAX_BATCH_SIZE", "value": str(spec.engine.max_batch_size)},
        {"name": "PORTALIS_ENGINE_REPAIR_ATTEMPTS", "value": str(spec.engine.repair_attempts)},
        {"name": "PORTALIS_GPUS_PER_WORKER", "value": str(spec.workers.gpus_per_worker)},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    if spec.engine.model:
        env.append({"name": "PORTALIS_ENGINE_MODEL", "value": spec.engine.model})
    if spec.engine.endpoint:
        env.append({"name": "PORTALIS_ENGINE_ENDPOINT", "value": str(spec.engine.endpoint)})
    if spec.engine.options:
        env.append({"name": "PORTALIS_ENGINE_OPTIONS", "value": json.dumps(spec.engine.options, sort_keys=True)})
    if spec.engine.api_key_secret_ref is not None:
        ref = spec.engine.api_key_secret_ref
        env.append(_secret_env("PORTALIS_ENGINE_API_KEY", ref.name, ref.key))
    if spec.queue.url_secret_ref is not None:
        env.append(_secret_env("PORTALIS_REDIS_URL", spec.queue.url_secret_ref.name, spec.queue.url_secret_ref.key))
    elif spec.queue.url:
        env.append({"name": "PORTALIS_REDIS_URL", "value": str(spec.queue.url)})
    storage = spec.storage
    env.append({"name": "PORTALIS_S3_BUCKET", "value": storage.bucket})
    env.append({"name": "AWS_DEFAULT_REGION", "value": storage.region})
    if storage.endpoint:
        env.append({"name": "PORTALIS_S3_ENDPOINT", "value": str(storage.endpoint)})
    if storage.force_path_style:
        env.append({"name": "PORTALIS_S3_FORCE_PATH_STYLE", "value": "true"})
    if storage.credentials_secret_ref is not None:
        secret = storage.credentials_secret_ref.name
        env.append(_secret_env("AWS_ACCESS_KEY_ID", secret, "AWS_ACCESS_KEY_ID"))
        env.append(_secret_env("AWS_SECRET_ACCESS_KEY", secret, "AWS_SECRET_ACCESS_KEY"))
    return env


def merge_template(base: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """Merge a user's pod template override into the generated one.

    Maps merge recursively; lists of named items (containers, env, volumes, volumeMounts, ports) merge by
    ``name``; other lists and scalars from the override win.
    """
    if not override:
        return base
    out = copy.deepcopy(base)
    _merge_into(out, override)
    return out


def _merge_into(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for key, value in src.items():
        current = dst.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _merge_into(current, value)
        elif isinstance(current, list) and isinstance(value, list) and _named(current) and _named(value):
            by_name = {item["name"]: item for item in current}
            for item in value:
                if item["name"] in by_name:
                    _merge_into(by_name[item["name"]], item)
                else:
                    current.append(copy.deepcopy(item))
        else:
            dst[key] = copy.deepcopy(value)


def _named(items: list[Any]) -> bool:
    return all(isinstance(i, dict) and "name" in i for i in items)
