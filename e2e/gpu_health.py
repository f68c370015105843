"""Shared pieces of the GPU health end-to-end tests.

Every test gets its own pool of KWOK GPU nodes (labelled like GPU Feature Discovery, plus a pool label and a pool
taint that only its TranslationCluster tolerates), so cordoning them never disturbs other tests on the shared
local cluster. The operator under test manages only the nodes of its test module (``portalis.dev/test-fleet``),
serves ``POST /alerts`` with a bearer token from a file, and runs with the fleet-wide limit at 50%.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.dcgm import FakeDcgmExporter
from portalis_devcluster.nodes import FleetSpec, build_nodes
from portalis_devcluster.operator import OperatorProcess
from portalis_devcluster.servers import RedisServer, S3Server

FLEET_LABEL = "portalis.dev/test-fleet"
POOL_LABEL = "portalis.dev/test-pool"
TOKEN = "e2e-" + uuid.uuid4().hex
DBE = "PortalisGpuEccDoubleBitErrors"


def operator_env(fleet: str, **extra: str) -> dict[str, str]:
    """The operator manages only the test module's nodes (labelled like GPU nodes but for
    ``nvidia.com/gpu.present``, so that no other operator on the shared cluster acts on them); at most half of
    them may be quarantined at once."""
    return {
        "PORTALIS_MANAGED_NODE_SELECTOR": f"{FLEET_LABEL}={fleet}",
        "PORTALIS_FLEET_MAX_UNAVAILABLE": "50%",
        **extra,
    }


def start_health_operator(
    kube: DevCluster, workdir: Path, fleet: str, env: dict[str, str] | None = None
) -> tuple[OperatorProcess, Path]:
    token = workdir / "webhook-token"
    token.write_text(TOKEN + "\n")
    proc = OperatorProcess(kube, workdir / "operator.log", webhook_token_file=token)
    proc.start({**operator_env(fleet), **(env or {})})
    return proc, token


@contextmanager
def fake_dcgm() -> Iterator[FakeDcgmExporter]:
    """A fake dcgm-exporter on loopback for as long as the block runs."""
    exporter = FakeDcgmExporter().start()
    try:
        yield exporter
    finally:
        exporter.stop()


@dataclass
class Pool:
    """KWOK H100 nodes for one test: ``gpus`` GPUs each, in the fake dcgm-exporter too when one is given."""

    kube: DevCluster
    fleet: str
    size: int
    dcgm: FakeDcgmExporter | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    names: list[str] = field(default_factory=list)

    def create(self) -> Pool:
        template = build_nodes(FleetSpec(h100_nodes=1, a100_nodes=0, cpu_nodes=0, spot_every=0))[0]
        manifests = []
        for i in range(self.size):
            body = json.loads(json.dumps(template))
            name = f"ecc-{self.id}-{i}"
            body["metadata"]["name"] = name
            labels = body["metadata"]["labels"]
            # not nvidia.com/gpu.present: operators with the default selector (other tests') leave these alone
            labels.pop("nvidia.com/gpu.present", None)
            labels.update({"kubernetes.io/hostname": name, FLEET_LABEL: self.fleet, POOL_LABEL: self.id})
            body["spec"]["taints"].append({"key": POOL_LABEL, "value": self.id, "effect": "NoSchedule"})
            manifests.append(body)
            self.names.append(name)
            if self.dcgm is not None:
                self.dcgm.add_node(name, 8, body["metadata"]["labels"]["nvidia.com/gpu.product"])
        self.kube.kubectl(
            "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests})
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            nodes = self.kube.kubectl("get", "nodes", "-l", f"{POOL_LABEL}={self.id}", "-o", "json").stdout
            ready = [n for n in json.loads(nodes)["items"] if _ready(n)]
            if len(ready) == self.size:
                return self
            time.sleep(0.2)
        raise AssertionError(f"pool {self.id}: nodes not Ready in 30 s")

    def delete(self) -> None:
        for name in self.names:
            if self.dcgm is not None:
                self.dcgm.remove_node(name)
        if self.names:
            self.kube.kubectl("delete", "node", *self.names, "--wait=false", check=False)

    def workers_spec(self, **extra: Any) -> dict[str, Any]:
        """``spec.workers`` that places one worker per node of this pool (8 GPUs each)."""
        return {
            "gpuType": "H100",
            "gpusPerWorker": 8,
            "nodeSelector": {POOL_LABEL: self.id},
            "tolerations": [{"key": POOL_LABEL, "operator": "Equal", "value": self.id, "effect": "NoSchedule"}],
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
            **extra,
        }


def _ready(body: dict[str, Any]) -> bool:
    conditions = body.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def node(kube: DevCluster, name: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(kube.kubectl("get", "node", name, "-o", "json").stdout)
    return out


def is_quarantined(body: dict[str, Any]) -> bool:
    taints = {t["key"]: t for t in body["spec"].get("taints") or []}
    return bool(
        body["spec"].get("unschedulable")
        and "portalis.dev/gpu-unhealthy" in taints
        and taints["portalis.dev/gpu-unhealthy"]["effect"] == "NoSchedule"
        and body["metadata"]["labels"].get("portalis.dev/quarantined") == "true"
    )


def portalis_marks(body: dict[str, Any]) -> dict[str, Any]:
    """Everything Portalis could have written on a node."""
    meta = body["metadata"]
    return {
        "unschedulable": bool(body["spec"].get("unschedulable")),
        "taints": [t for t in body["spec"].get("taints") or [] if t["key"].startswith("portalis.dev/gpu")],
        "labels": {k: v for k, v in (meta.get("labels") or {}).items() if k == "portalis.dev/quarantined"},
        "annotations": {
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if k.startswith(("portalis.dev/quarantine", "portalis.dev/drain", "portalis.dev/release"))
        },
    }


def notification(
    *nodes: str, alertname: str = DBE, action: str = "quarantine", status: str = "firing"
) -> dict[str, Any]:
    return {
        "version": "4",
        "status": status,
        "receiver": "portalis",
        "groupLabels": {"alertname": alertname},
        "commonLabels": {"alertname": alertname},
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": alertname,
                    "severity": "critical",
                    "portalis_action": action,
                    "Hostname": n,
                    "gpu": "0",
                    "UUID": f"GPU-{n}",
                    "modelName": "NVIDIA H100 80GB HBM3",
                },
                "annotations": {"summary": f"Uncorrectable ECC errors on GPU 0 of node {n}"},
                "fingerprint": uuid.uuid4().hex[:16],
            }
            for n in nodes
        ],
    }


def post(url: str, body: bytes | dict[str, Any], token: str | None = TOKEN) -> int:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def metric(url: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``, from a /metrics endpoint."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(m.group(4))
    return total


class LocalWorkers:
    """Worker processes standing in for a cluster's Ray worker pods (KWOK pods run no containers).

    A supervisor thread keeps one ``portalis worker run --name <pod>`` process per running worker pod, and kills a
    process with SIGKILL as soon as its pod is deleted, as losing the node would.
    """

    def __init__(self, kube: DevCluster, namespace: str, cluster: str, redis: RedisServer, s3: S3Server) -> None:
        self.kube = kube
        self.namespace = namespace
        self.cluster = cluster
        self.redis = redis
        self.s3 = s3
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: list[str] = []
        self.started: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LocalWorkers:
        self._thread.start()
        return self

    def _pods(self) -> dict[str, dict[str, Any]]:
        proc = self.kube.kubectl(
            "-n",
            self.namespace,
            "get",
            "pods",
            "-l",
            f"portalis.dev/cluster={self.cluster},portalis.dev/role=worker",
            "-o",
            "json",
            check=False,
        )
        if proc.returncode != 0:
            return {}
        return {p["metadata"]["name"]: p for p in json.loads(proc.stdout)["items"]}

    def _spawn(self, name: str) -> None:
        env = dict(os.environ)
        env.update(self.s3.client_env())
        env["PORTALIS_S3_FORCE_PATH_STYLE"] = "true"
        log = Path(f"/tmp/portalis-e2e-{name}.log")
        with open(log, "ab") as fh:
            self.procs[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "portalis",
                    "worker",
                    "run",
                    "--namespace",
                    self.namespace,
                    "--cluster",
                    self.cluster,
                    "--redis-url",
                    self.redis.url,
                    "--name",
                    name,
                    "--concurrency",
                    "1",
                    "--visibility-timeout-seconds",
                    "5",
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.started.append(name)

    def _run(self) -> None:
        while not self._stop.is_set():
            pods = self._pods()
            for name, proc in list(self.procs.items()):
                pod = pods.get(name)
                if (pod is None or pod["metadata"].get("deletionTimestamp")) and proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(10)
                    self.killed.append(name)
            for name, pod in pods.items():
                running = pod.get("status", {}).get("phase") == "Running"
                if running and not pod["metadata"].get("deletionTimestamp") and name not in self.procs:
                    self._spawn(name)
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
