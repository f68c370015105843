"""TranslationCluster spec -> dask-kubernetes ``kubernetes.dask.org/v1`` DaskCluster (pure).

The Dask backend: a scheduler without GPUs and a default worker group whose containers carry the
``nvidia.com/gpu`` limits, placed like the Ray workers. Each Dask worker runs the Portalis worker loops
(``--preload portalis.worker.dask_plugin``: one per GPU, taking items from the cluster's queue) and serves their
metrics on a port named ``worker-metrics``, as the Ray head's driver does. Portalis owns ``spec.worker.replicas``;
the dask-kubernetes operator turns it into worker Deployments.
"""

from __future__ import annotations

import copy
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
from portalis.desired.raycluster import WORKER_METRICS_PORT, WORKER_METRICS_PORT_NAME, clamp_replicas

SCHEDULER_PORT = 8786
DASHBOARD_PORT = 8787
WORKER_DASHBOARD_PORT = 8788
DATA_PLANE_PRELOAD = "portalis.worker.dask_plugin"


def daskcluster_name(cluster_name: str) -> str:
    return cluster_name


def build_daskcluster(spec: TranslationClusterSpec, owner: Owner, replicas: int | None = None) -> dict[str, Any]:
    env = worker_env(spec, owner)
    name = daskcluster_name(owner.name)
    workers = spec.workers
    worker_pod: dict[str, Any] = {
        "containers": [
            {
                "name": "worker",
                "image": spec.image,
                # no nanny: SIGTERM closes the worker itself, whose loops finish the items in hand
                "command": [
                    "dask",
                    "worker",
                    "--name",
                    "$(DASK_WORKER_NAME)",
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--resources",
                    f"GPU={workers.gpus_per_worker}",
                    "--dashboard",
                    "--dashboard-address",
                    str(WORKER_DASHBOARD_PORT),
                    "--preload",
                    DATA_PLANE_PRELOAD,
                ],
                "ports": [
                    {"name": "http-dashboard", "containerPort": WORKER_DASHBOARD_PORT, "protocol": "TCP"},
                    {"name": WORKER_METRICS_PORT_NAME, "containerPort": WORKER_METRICS_PORT, "protocol": "TCP"},
                ],
                "resources": worker_resources(workers),
                "env": [*copy.deepcopy(env), {"name": "PORTALIS_METRICS_PORT", "value": str(WORKER_METRICS_PORT)}],
                "securityContext": {"allowPrivilegeEscalation": False},
            }
        ],
        "affinity": worker_affinity(workers),
        "tolerations": worker_tolerations(workers),
        "terminationGracePeriodSeconds": min(spec.engine.timeout_seconds + 30, 3630),
    }
    if workers.node_selector:
        worker_pod["nodeSelector"] = dict(workers.node_selector)
    merged = merge_template({"metadata": {"labels": labels(owner, "worker")}, "spec": worker_pod}, workers.pod_template)

    scheduler_pod: dict[str, Any] = {
        "containers": [
            {
                "name": "scheduler",
                "image": spec.image,
                "command": ["dask", "scheduler"],
                "ports": [
                    {"name": "tcp-comm", "containerPort": SCHEDULER_PORT, "protocol": "TCP"},
                    {"name": "http-dashboard", "containerPort": DASHBOARD_PORT, "protocol": "TCP"},
                ],
                "readinessProbe": {
                    "httpGet": {"port": "http-dashboard", "path": "/health"},
                    "initialDelaySeconds": 0,
                    "periodSeconds": 10,
                },
                "resources": head_resources(spec),
                "env": env,
                "securityContext": {"allowPrivilegeEscalation": False},
            }
        ]
    }
    if spec.head is not None and spec.head.node_selector:
        scheduler_pod["nodeSelector"] = dict(spec.head.node_selector)
    if spec.head is not None and spec.head.tolerations:
        scheduler_pod["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in spec.head.tolerations
        ]
    selector = {"dask.org/cluster-name": name, "dask.org/component": "scheduler"}
    return {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskCluster",
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": labels(owner, "daskcluster"),
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "worker": {
                "replicas": 0 if spec.suspend else clamp_replicas(spec, replicas),
                "metadata": merged.get("metadata", {}),
                "spec": merged["spec"],
            },
            "scheduler": {
                "metadata": {"labels": labels(owner, "head")},
                "spec": scheduler_pod,
                "service": {
                    "type": "ClusterIP",
                    "selector": selector,
                    "ports": [
                        {"name": "tcp-comm", "protocol": "TCP", "port": SCHEDULER_PORT, "targetPort": "tcp-comm"},
                        {
                            "name": "http-dashboard",
                            "protocol": "TCP",
                            "port": DASHBOARD_PORT,
                            "targetPort": "http-dashboard",
                        },
                    ],
                },
            },
        },
    }
