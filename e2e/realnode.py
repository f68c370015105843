"""Helpers for tests on the local cluster's real node: its images, pods that run a command to completion, and the
operator installed from its chart and running in a pod."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from e2e.helpers import Cluster, wait_for
from portalis_devcluster import chart, images
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.incluster import RESTRICTED_CONTAINER
from portalis_devcluster.node import NODE_NAME, NODE_SELECTOR, TOLERATIONS, RealNode


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


@contextmanager
def chart_release(kube: DevCluster, operator_image: str, watched: list[str]) -> Iterator[chart.Release]:
    """``helm install`` of the chart with the built operator image on the real node, in a namespace of its own that
    enforces the restricted Pod Security profile; uninstalled when the block ends."""
    ns = f"rn-portalis-{uuid.uuid4().hex[:6]}"
    release = chart.install(kube, operator_image, ns, watched, name=f"portalis-{ns.rsplit('-', 1)[1]}")
    try:
        yield release
    finally:
        release.uninstall()
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)
