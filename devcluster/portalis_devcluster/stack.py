"""Portalis as a user runs it, on the local cluster's real node: the images built here, Redis and an S3 server in
the cluster, and the operator from its chart watching one namespace. ``make demo``, the real-node tests and the
real-node benchmarks start from here."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portalis.clients.store import Store
from portalis_devcluster import chart, images, incluster
from portalis_devcluster.node import NODE_SELECTOR, TOLERATIONS

if TYPE_CHECKING:
    from portalis_devcluster.cluster import DevCluster

# what fits the real node's two CPUs: a head, a few GPU workers and the servers
# Ray pods on the real node: it has the machine's cores (two here), and the head's driver sidecar asks for 250m of
# its own, so two clusters with three workers between them still fit beside the stack
SMALL = {"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}


class StackError(RuntimeError):
    """The stack cannot run here; the message says why."""


@dataclass
class Stack:
    kube: DevCluster
    namespace: str
    images: dict[str, str]
    redis: incluster.ServiceAddress
    s3: incluster.S3Address
    release: chart.Release

    def store(self) -> Store:
        """The in-cluster S3 server, from this machine (through its NodePort)."""
        return Store(
            self.s3.from_host, access_key=self.s3.access_key, secret_key=self.s3.secret_key, force_path_style=True
        )

    def cluster_on_real_node(self, manifest: dict[str, Any], workers: int | None = None) -> dict[str, Any]:
        """A TranslationCluster manifest placed on the real node, running the worker image built here, and pointed
        at the stack's Redis and S3 by their Service names."""
        tc = copy.deepcopy(manifest)
        spec = tc["spec"]
        place = {"nodeSelector": dict(NODE_SELECTOR), "tolerations": list(TOLERATIONS)}
        spec["image"] = self.images["worker"]
        spec["head"] = {**spec.get("head", {}), "resources": SMALL, **place}
        spec["workers"] = {**spec["workers"], "resources": SMALL, "gpuType": "H100", **place}
        if workers is not None:
            spec["workers"]["minWorkers"] = workers
        spec["workers"]["maxWorkers"] = max(spec["workers"]["minWorkers"], min(spec["workers"]["maxWorkers"], 4))
        spec["queue"] = {"urlSecretRef": {"name": "portalis-redis", "key": "url"}}
        spec["storage"] = {
            **spec["storage"],
            "endpoint": self.s3.in_cluster,
            "forcePathStyle": True,
            "credentialsSecretRef": {"name": "portalis-s3"},
        }
        return tc


def up(kube: DevCluster, namespace: str, operator_namespace: str = "portalis-system") -> Stack:
    """Build and load the images, run Redis and S3 in ``namespace`` and install the operator watching it."""
    node = kube.node()
    if node is None:
        raise StackError(f"the local cluster runs no real node: {kube.state().node.reason}")
    lacking = images.missing_tools()
    if lacking:
        raise StackError("this machine cannot build the images: " + "; ".join(lacking))
    refs = images.build_all()
    images.load_into(node, refs)
    chart.ensure_namespace(kube, namespace)
    redis = incluster.deploy_redis(kube, namespace, refs["redis"])
    s3 = incluster.deploy_s3(kube, namespace)
    url = base64.b64encode(redis.in_cluster.encode()).decode()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "portalis-redis"}, "data": {"url": url}}
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(secret))
    release = chart.install(kube, refs["operator"], operator_namespace, [namespace])
    return Stack(kube, namespace, refs, redis, s3, release)
