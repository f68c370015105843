"""The operator installed from its Helm chart with the image built here, running in a pod on the real node, as a
user's ``helm install`` runs it: in a namespace that enforces the restricted Pod Security profile, with exactly the
chart's RBAC, watching the namespaces it is given."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portalis_devcluster.node import NODE_SELECTOR, TOLERATIONS
from portalis_devcluster.operator import ROOT

if TYPE_CHECKING:
    from portalis_devcluster.cluster import DevCluster

CHART = ROOT / "charts" / "portalis"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


class ChartError(RuntimeError):
    """helm failed; the message has its output."""


def helm(kube: DevCluster, *args: str, check: bool = True, input: str | None = None) -> str:
    proc = subprocess.run(
        [str(kube.tc.helm), *args], input=input, capture_output=True, text=True, env=kube.env(), timeout=600
    )
    if check and proc.returncode != 0:
        raise ChartError(f"helm {' '.join(args[:3])} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def ensure_namespace(kube: DevCluster, name: str, labels: dict[str, str] | None = None) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
    kube.kubectl("apply", "-f", "-", input=json.dumps(body))


@dataclass
class Release:
    """The operator installed from its chart."""

    kube: DevCluster
    namespace: str
    name: str
    watched: list[str]
    install_seconds: float = 0.0

    @property
    def selector(self) -> str:
        return f"app.kubernetes.io/instance={self.name},app.kubernetes.io/name=portalis"

    @property
    def service(self) -> str:
        """The DNS name of its Service (``/metrics`` on 9090, ``/alerts`` on 8443)."""
        return f"{self.name}.{self.namespace}.svc.cluster.local"

    def pods(self) -> list[dict[str, Any]]:
        out = self.kube.kubectl("-n", self.namespace, "get", "pods", "-l", self.selector, "-o", "json").stdout
        return [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]

    def logs(self) -> str:
        pods = self.pods()
        if not pods:
            return ""
        name = pods[0]["metadata"]["name"]
        return self.kube.kubectl("-n", self.namespace, "logs", name, "-c", "operator", check=False).stdout

    def webhook_token(self) -> str:
        secret = json.loads(
            self.kube.kubectl("-n", self.namespace, "get", "secret", f"{self.name}-webhook", "-o", "json").stdout
        )
        return base64.b64decode(secret["data"]["token"]).decode()

    def uninstall(self) -> None:
        helm(self.kube, "uninstall", self.name, "-n", self.namespace, "--wait", "--timeout", "2m", check=False)


def install(
    kube: DevCluster,
    operator_image: str,
    namespace: str,
    watched: list[str],
    name: str | None = None,
    extra_values: dict[str, Any] | None = None,
) -> Release:
    """``helm upgrade --install`` of the chart with ``operator_image``, on the real node, waiting until Ready."""
    ensure_namespace(kube, namespace, RESTRICTED)
    name = name or f"portalis-{namespace}"
    repository, tag = operator_image.rsplit(":", 1)
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        "watchNamespaces": watched,
        "clusterNamespaces": watched,
        "nodeSelector": dict(NODE_SELECTOR),
        "tolerations": list(TOLERATIONS),
        "logFormat": "text",
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        **(extra_values or {}),
    }
    started = time.monotonic()
    args = ["upgrade", "--install", name, str(CHART), "-n", namespace, "--wait", "--timeout", "5m", "-f", "-"]
    helm(kube, *args, input=json.dumps(values))
    return Release(kube, namespace, name, watched, install_seconds=time.monotonic() - started)
