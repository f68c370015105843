"""Helpers for tests on the local cluster's real node: its images, pods that run a command to completion, and the
operator installed from its chart and running in a pod."""

from __future__ import annotations

import functools
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from e2e.helpers import Cluster, wait_for
from portalis_devcluster import images
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.node import NODE_NAME, NODE_SELECTOR, TOLERATIONS, RealNode
from portalis_devcluster.operator import ROOT

CHART = ROOT / "charts" / "portalis"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def require_real_node(kube: DevCluster) -> RealNode:
    node = kube.node()
    if node is None:
        pytest.skip(f"the local cluster runs no real node: {kube.state().node.reason}")
    return node


@functools.cache
def _built() -> dict[str, str]:
    return images.build_all()


def require_images(kube: DevCluster) -> dict[str, str]:
    """The project's images, built (cached by their content) and loaded into the real node."""
    node = require_real_node(kube)
    missing = images.missing_tools()
    if missing:
        pytest.skip("this machine cannot build images: " + "; ".join(missing))
    refs = _built()
    images.load_into(node, refs)
    return refs


def create_namespace(kube: DevCluster, prefix: str, labels: dict[str, str] | None = None) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
    kube.kubectl("create", "-f", "-", input=json.dumps(body))
    return name


def on_real_node(spec: dict[str, Any]) -> dict[str, Any]:
    """A pod spec placed on the real node."""
    return {**spec, "nodeSelector": dict(NODE_SELECTOR), "tolerations": list(TOLERATIONS)}


RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def run_to_completion(c: Cluster, name: str, image: str, command: list[str], timeout: float = 180) -> str:
    """Run ``command`` in a pod on the real node under the restricted profile; its log once it Succeeded."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": on_real_node(
            {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "main",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": command,
                        "securityContext": RESTRICTED_CONTAINER,
                    }
                ],
            }
        ),
    }
    c.kubectl("apply", "-f", "-", input=json.dumps(pod))
    phase = wait_for(
        lambda: (
            (c.get("pod", name).get("status") or {}).get("phase") in ("Succeeded", "Failed")
            and c.get("pod", name)["status"]["phase"]
        ),
        timeout=timeout,
        interval=0.5,
    )
    logs = c.kubectl("logs", name).stdout
    assert phase == "Succeeded", f"pod {name} {phase}:\n{logs}\n{json.dumps(c.get('pod', name)['status'])}"
    assert c.get("pod", name)["spec"]["nodeName"] == NODE_NAME
    return logs


@dataclass
class Release:
    """The operator installed from its chart, running in a pod on the real node."""

    kube: DevCluster
    namespace: str
    name: str
    watched: list[str]
    install_seconds: float = 0.0

    def pods(self) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={self.name},app.kubernetes.io/name=portalis"
        out = self.kube.kubectl("-n", self.namespace, "get", "pods", "-l", selector, "-o", "json").stdout
        return [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]

    def logs(self) -> str:
        pods = self.pods()
        if not pods:
            return ""
        name = pods[0]["metadata"]["name"]
        return self.kube.kubectl("-n", self.namespace, "logs", name, "-c", "operator", check=False).stdout

    @property
    def service(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"


def helm(kube: DevCluster, *args: str, check: bool = True, input: str | None = None) -> str:
    proc = subprocess.run(
        [str(kube.tc.helm), *args], input=input, capture_output=True, text=True, env=kube.env(), timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@contextmanager
def chart_release(kube: DevCluster, operator_image: str, watched: list[str]) -> Iterator[Release]:
    """``helm install`` of the chart with the built operator image on the real node, in a namespace that enforces
    the restricted Pod Security profile; uninstalled when the block ends."""
    ns = create_namespace(kube, "rn-portalis", RESTRICTED)
    name = f"portalis-{ns.rsplit('-', 1)[1]}"  # ClusterRoles are cluster-wide: one name per release
    repository, tag = operator_image.rsplit(":", 1)
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        "watchNamespaces": watched,
        "clusterNamespaces": watched,
        "nodeSelector": dict(NODE_SELECTOR),
        "tolerations": list(TOLERATIONS),
        "logFormat": "text",
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    }
    started = time.monotonic()
    helm(kube, "install", name, str(CHART), "-n", ns, "--wait", "--timeout", "5m", "-f", "-", input=json.dumps(values))
    release = Release(kube, ns, name, watched, install_seconds=time.monotonic() - started)
    try:
        yield release
    finally:
        helm(kube, "uninstall", name, "-n", ns, "--wait", "--timeout", "2m", check=False)
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)
