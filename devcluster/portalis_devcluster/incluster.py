"""Servers the data plane needs, run inside the local cluster on the real node, as users run theirs: Redis as a
Deployment behind a Service. Pods reach it by the Service's name; the host's tests reach the same Service through
its NodePort on the real node's address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portalis_devcluster.node import NODE_SELECTOR, TOLERATIONS

if TYPE_CHECKING:
    from portalis_devcluster.cluster import DevCluster

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


# append-only persistence on the pod's emptyDir, so a restarted container keeps what was acknowledged
REDIS_CONFIG = {
    "bind": "0.0.0.0",
    "port": "6379",
    "protected-mode": "no",
    "dir": "/data",
    "appendonly": "yes",
    "appendfsync": "everysec",
    "save": "",
}


@dataclass(frozen=True)
class ServiceAddress:
    """Where a server in the cluster is reached: by pods (its Service's DNS name) and by the host (NodePort)."""

    in_cluster: str
    from_host: str


def build_redis(name: str, namespace: str, image: str) -> list[dict[str, Any]]:
    """A single Redis with append-only persistence on an emptyDir (kept across container restarts)."""
    labels = {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": name}
    container = {
        "name": "redis",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": [arg for key, value in REDIS_CONFIG.items() for arg in (f"--{key}", value)],
        "ports": [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}],
        "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": RESTRICTED_CONTAINER,
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeSelector": dict(NODE_SELECTOR),
                        "tolerations": list(TOLERATIONS),
                        "containers": [container],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                        "enableServiceLinks": False,
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "type": "NodePort",
                "selector": labels,
                "ports": [{"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}],
            },
        },
    ]


def deploy_redis(kube: DevCluster, namespace: str, image: str, name: str = "redis") -> ServiceAddress:
    """Run Redis in ``namespace`` on the real node and wait until it answers."""
    manifest = {"apiVersion": "v1", "kind": "List", "items": build_redis(name, namespace, image)}
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    kube.kubectl("rollout", "status", "-n", namespace, f"deployment/{name}", "--timeout=120s", timeout=150)
    svc = json.loads(kube.kubectl("get", "service", name, "-n", namespace, "-o", "json").stdout)
    node_port = svc["spec"]["ports"][0]["nodePort"]
    node = kube.node()
    assert node is not None, "in-cluster servers run on the real node"
    return ServiceAddress(
        in_cluster=f"redis://{name}.{namespace}.svc.cluster.local:6379/0",
        from_host=f"redis://{node.net.node_ip}:{node_port}/0",
    )
