"""Shared plumbing of the GPU health benchmarks (ecc-cordon, ecc-drain): bench nodes, the operator with its
webhook, alerts posted the way Alertmanager posts them, and a watch that timestamps what happens to nodes and pods."""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import kubernetes

from bench.watch import Watcher, api_client
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.nodes import FleetSpec, build_nodes
from portalis_devcluster.operator import OperatorProcess

BENCH_LABEL = "portalis.dev/bench-fleet"
TOKEN = "bench-" + uuid.uuid4().hex


@contextmanager
def health_operator(kube: DevCluster, fleet: str, extra_env: dict[str, str] | None = None) -> Iterator[OperatorProcess]:
    """The operator with ``POST /alerts`` on, managing only this run's bench nodes, with no fleet-wide cap."""
    workdir = Path(tempfile.mkdtemp(prefix="portalis-bench-ecc-"))
    token = workdir / "token"
    token.write_text(TOKEN)
    proc = OperatorProcess(kube, workdir / "operator.log", webhook_token_file=token)
    env = {
        "PORTALIS_MANAGED_NODE_SELECTOR": f"{BENCH_LABEL}={fleet}",
        "PORTALIS_FLEET_MAX_UNAVAILABLE": "100%",
        **(extra_env or {}),
    }
    proc.start(env)
    try:
        yield proc
    finally:
        proc.stop()


def create_nodes(kube: DevCluster, fleet: str, names: list[str]) -> None:
    template = build_nodes(FleetSpec(h100_nodes=1, a100_nodes=0, cpu_nodes=0, spot_every=0))[0]
    items = []
    for name in names:
        body = json.loads(json.dumps(template))
        body["metadata"]["name"] = name
        body["metadata"]["labels"].pop("nvidia.com/gpu.present", None)  # only this run's operator acts on them
        body["metadata"]["labels"].update({"kubernetes.io/hostname": name, BENCH_LABEL: fleet})
        body["spec"]["taints"].append({"key": BENCH_LABEL, "value": fleet, "effect": "NoSchedule"})
        items.append(body)
    kube.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def delete_nodes(kube: DevCluster, names: list[str]) -> None:
    if names:
        kube.kubectl("delete", "node", *names, "--wait=false", check=False)


def alert(node: str) -> bytes:
    labels = {
        "alertname": "PortalisGpuEccDoubleBitErrors",
        "severity": "critical",
        "portalis_action": "quarantine",
        "Hostname": node,
        "gpu": "0",
        "UUID": f"GPU-{node}",
        "modelName": "NVIDIA H100 80GB HBM3",
    }
    body = {
        "version": "4",
        "status": "firing",
        "receiver": "portalis",
        "groupLabels": {"alertname": labels["alertname"], "Hostname": node, "gpu": "0"},
        "commonLabels": labels,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"DBE on {node}"},
                "fingerprint": uuid.uuid4().hex[:16],
            }
        ],
    }
    return json.dumps(body).encode()


def post_alert(url: str, node: str) -> None:
    req = urllib.request.Request(
        url,
        data=alert(node),
        method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        if resp.status != 202:
            raise RuntimeError(f"webhook answered {resp.status}")


def _rv(obj: dict[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


class Seen:
    """Timestamps (monotonic, as the watching client sees them) of what the watches report, with waits on them."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.nodes: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, set[str]] = {}  # node -> pods on it
        self.cordoned_at: dict[str, float] = {}  # node -> when the watch first showed it unschedulable
        self.emptied_at: dict[str, float] = {}  # node -> when the watch saw its last pod deleted

    def on_node(self, _kind: str, obj: dict[str, Any], t: float) -> None:
        with self.cond:
            old = self.nodes.get(obj["metadata"]["name"])
            if old is not None and _rv(old) > _rv(obj):
                return  # a listing older than what the watch already reported
            name = obj["metadata"]["name"]
            self.nodes[name] = obj
            if (obj.get("spec") or {}).get("unschedulable"):
                self.cordoned_at.setdefault(name, t)
            else:
                self.cordoned_at.pop(name, None)
            self.cond.notify_all()

    def on_pod(self, kind: str, obj: dict[str, Any], t: float) -> None:
        node = obj.get("spec", {}).get("nodeName")
        if not node:
            return
        name = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        with self.cond:
            pods = self.pods.setdefault(node, set())
            if kind == "DELETED":
                pods.discard(name)
            else:
                pods.add(name)
            if pods:
                self.emptied_at.pop(node, None)
            else:
                self.emptied_at.setdefault(node, t)
            self.cond.notify_all()

    def wait(self, check: Callable[[], bool], timeout: float = 60) -> None:
        """Wait until ``check()`` (called under the lock) holds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not check():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the watched state was not reached in time")
                self.cond.wait(left)

    def when(self, stamp: Callable[[], float | None], timeout: float = 60) -> float:
        """Wait until ``stamp()`` has a time, and return it: when the watch saw the state reached."""
        found: list[float] = []

        def check() -> bool:
            value = stamp()
            if value is not None:
                found.append(value)
            return value is not None

        self.wait(check, timeout)
        return found[-1]

    def cordoned(self, node: str) -> bool:
        body = self.nodes.get(node) or {}
        spec = body.get("spec") or {}
        return bool(spec.get("unschedulable"))

    def uncordoned(self, node: str) -> bool:
        return not self.cordoned(node)

    def released(self, node: str) -> bool:
        body = self.nodes.get(node) or {}
        labels = (body.get("metadata") or {}).get("labels") or {}
        taints = [t for t in (body.get("spec") or {}).get("taints") or [] if t["key"] == "portalis.dev/gpu-unhealthy"]
        return not self.cordoned(node) and "portalis.dev/quarantined" not in labels and not taints


@contextmanager
def watching(kube: DevCluster, fleet: str, namespace: str | None = None) -> Iterator[Seen]:
    """Watch the bench nodes (and the pods of ``namespace``) into a ``Seen``; the time of each event is taken
    when the event arrives, so the watch's own latency counts the same for Portalis and the baseline."""
    client = api_client(kube)
    core = kubernetes.client.CoreV1Api(client)
    seen = Seen()

    def on_node(kind: str, obj: dict[str, Any], t: float) -> None:
        seen.on_node(kind, obj, t)

    watchers = [Watcher(core.list_node, on_node, label_selector=f"{BENCH_LABEL}={fleet}")]
    if namespace is not None:
        watchers.append(Watcher(core.list_namespaced_pod, seen.on_pod, namespace=namespace))
    for w in watchers:
        w.start()
        w.ready.wait(10)
    # a watch reports changes only: seed what exists already
    listing = json.loads(
        cast(Any, core.list_node(label_selector=f"{BENCH_LABEL}={fleet}", _preload_content=False)).data
    )
    for item in listing["items"]:
        seen.on_node("ADDED", item, time.monotonic())
    if namespace is not None:
        listing = json.loads(cast(Any, core.list_namespaced_pod(namespace, _preload_content=False)).data)
        for item in listing["items"]:
            seen.on_pod("ADDED", item, time.monotonic())
    try:
        yield seen
    finally:
        for w in watchers:
            w.stop()
