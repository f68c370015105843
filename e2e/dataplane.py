"""The data plane on the real node, for end-to-end tests: TranslationClusters whose Ray head and GPU workers run the
worker image there, jobs uploaded to the in-cluster S3 server, the queue read through Redis' NodePort, and a slow
OpenAI-compatible engine in a pod (the project's test server) so that an item stays in a worker's hands long enough
to kill the worker, the node or the operator under it."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from e2e.gpu_health import notification
from e2e.helpers import Cluster, wait_for
from e2e.jobs import simple_module
from portalis.clients.queue import RedisQueue, queue_for
from portalis.clients.store import Store
from portalis_devcluster import stack
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.incluster import RESTRICTED_CONTAINER, build_on_real_node
from portalis_devcluster.node import NODE_SELECTOR, TOLERATIONS
from portalis_devcluster.operator import ROOT
from portalis_devcluster.stack import Stack

SOURCES = "portalis-e2e-sources"
ARTIFACTS = "portalis-artifacts"
OPENAI_PORT = 8000
OPENAI_SERVER = ROOT / "tests" / "support" / "openai_server.py"


@dataclass
class RealData:
    stack: Stack

    @property
    def namespace(self) -> str:
        return self.stack.namespace

    @property
    def c(self) -> Cluster:
        return Cluster(self.stack.kube, self.namespace)

    def queue(self, cluster: str) -> RedisQueue:
        return queue_for(self.stack.redis.from_host, self.namespace, cluster)

    # ---- engines and clusters ------------------------------------------------------------------------------
    def slow_engine(self, delay: float) -> dict[str, Any]:
        """The OpenAI-compatible test server in a pod, answering after ``delay`` seconds; the engine spec for it."""
        name = f"openai-{int(delay * 10)}"
        labels = {"app.kubernetes.io/name": name}
        script = OPENAI_SERVER.read_text()
        server_args = ["--host", "0.0.0.0", "--port", str(OPENAI_PORT), "--delay", str(delay)]
        container = {
            "name": "server",
            "image": self.stack.images["worker"],
            "command": ["python", "/srv/server.py", *server_args],
            "ports": [{"name": "http", "containerPort": OPENAI_PORT}],
            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 2},
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
            "securityContext": RESTRICTED_CONTAINER,
            "volumeMounts": [{"name": "script", "mountPath": "/srv"}],
        }
        volumes = [{"name": "script", "configMap": {"name": name}}]
        objects: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"server.py": script}},
            *build_on_real_node(name, self.namespace, labels, container, volumes, OPENAI_PORT, node_port=False),
        ]
        self.c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
        self.c.kubectl("rollout", "status", f"deployment/{name}", "--timeout=120s")
        endpoint = f"http://{name}.{self.namespace}.svc.cluster.local:{OPENAI_PORT}/v1"
        return {"name": "openai", "model": "test-coder", "endpoint": endpoint, "timeoutSeconds": 120}

    def create_cluster(
        self, name: str, workers: int = 1, max_workers: int = 2, backend: str = "Ray", **spec: Any
    ) -> dict[str, Any]:
        base = {
            "apiVersion": "portalis.dev/v1alpha1",
            "kind": "TranslationCluster",
            "metadata": {"name": name},
            "spec": {
                "backend": backend,
                "workers": {"gpuType": "H100", "gpusPerWorker": 1, "minWorkers": workers, "maxWorkers": max_workers},
                "autoscaling": {"enabled": False},
                "queue": {},
                "storage": {"bucket": ARTIFACTS},
                "pricing": {"onDemandGpuHour": "3.60"},
            },
        }
        tc = self.stack.cluster_on_real_node(base, workers=workers)
        tc["spec"]["workers"]["maxWorkers"] = max_workers
        for key, value in spec.items():
            tc["spec"][key] = {**tc["spec"].get(key, {}), **value} if isinstance(value, dict) else value
        self.c.kubectl("apply", "-f", "-", input=json.dumps(tc))
        return tc

    def wait_ready(self, name: str, timeout: float = 240) -> None:
        try:
            wait_for(lambda: self.c.condition("tc", name, "Ready") == "True", timeout=timeout, interval=1)
        except AssertionError as exc:
            pods = self.c.kubectl("get", "pods", "-o", "wide", check=False).stdout
            raise AssertionError(f"{exc}\n{self.c.condition_obj('tc', name, 'Ready')}\n{pods}") from exc

    def delete_cluster(self, name: str) -> None:
        self.c.kubectl("delete", "tc", name, "--ignore-not-found", "--timeout=180s")
        wait_for(lambda: not self.pods(name), timeout=180, interval=1)

    def pods(self, cluster: str, kind: str | None = None) -> list[dict[str, Any]]:
        selector = f"portalis.dev/cluster={cluster}" + (f",portalis.dev/role={kind}" if kind else "")
        items: list[dict[str, Any]] = self.c.get("pods", "-l", selector)["items"]
        return items

    def ray_pods(self, cluster: str, node_type: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.c.get(
            "pods", "-l", f"ray.io/cluster={cluster},ray.io/node-type={node_type}"
        )["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    # ---- jobs ------------------------------------------------------------------------------------------------
    def buckets(self) -> Store:
        """The in-cluster S3 server with the sources bucket and the clusters' plan bucket made."""
        store = self.stack.store()
        store.ensure_bucket(SOURCES)
        store.ensure_bucket(ARTIFACTS)
        return store

    def create_job(self, cluster: str, job: str, **spec: Any) -> None:
        """A TranslationJob of the sources under ``<job>/``, its outputs under ``out/<job>/``; ``spec`` adds fields."""
        body = {
            "apiVersion": "portalis.dev/v1alpha1",
            "kind": "TranslationJob",
            "metadata": {"name": job},
            "spec": {
                "clusterRef": {"name": cluster},
                "source": {"bucket": SOURCES, "prefix": f"{job}/"},
                "output": {"bucket": SOURCES, "prefix": f"out/{job}/"},
                **spec,
            },
        }
        self.c.kubectl("apply", "-f", "-", input=json.dumps(body))

    def submit(self, cluster: str, job: str, files: int, max_attempts: int = 5) -> str:
        """Upload ``files`` small modules (fresh, so none comes from the result cache) and create the job."""
        store = self.buckets()
        salt = uuid.uuid4().hex
        for i in range(files):
            store.put_bytes(SOURCES, f"{job}/pkg/mod_{i:03d}.py", simple_module(i, salt))
        self.create_job(cluster, job, maxAttemptsPerItem=max_attempts, maxFailedItems=0)
        return job

    def status(self, job: str) -> dict[str, Any]:
        status: dict[str, Any] = self.c.get("tj", job).get("status") or {}
        return status

    def wait_phase(self, job: str, phases: set[str], timeout: float = 300) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status(job)
            return status if status.get("phase") in phases else None

        try:
            found: dict[str, Any] = wait_for(reached, timeout=timeout, interval=1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{json.dumps(self.status(job), indent=1)}") from exc
        return found

    def outputs(self, job: str) -> list[str]:
        return sorted(o.key for o in self.stack.store().list(SOURCES, f"out/{job}/"))

    def busy_workers(self, cluster: str) -> dict[str, dict[str, Any]]:
        return {name: hb for name, hb in self.queue(cluster).workers().items() if hb.get("state") == "busy"}

    def assert_finished_once(self, cluster: str, job: str, files: int) -> None:
        """Every item done exactly once: counted once, one output per source, nothing left in the queue."""
        status = self.wait_phase(job, {"Succeeded", "Failed"})
        assert status["phase"] == "Succeeded", status
        items = status["items"]
        assert (items["total"], items["done"], items["failed"]) == (files, files, 0), items
        stats = self.queue(cluster).job_stats(self.c.get("tj", job)["metadata"]["uid"])
        assert (stats.done, stats.failed) == (files, 0)
        assert self.outputs(job) == sorted(f"out/{job}/pkg/mod_{i:03d}.rs" for i in range(files))


def alert_from_a_pod(data: RealData, node: str) -> str:
    """POST a firing ECC alert for ``node`` to the operator's webhook through its Service, from a pod, with the
    chart's bearer token; returns what the pod printed (the HTTP status)."""
    release = data.stack.release
    token = release.webhook_token()
    payload = notification(node)
    body = base64.b64encode(json.dumps(payload).encode()).decode()
    name = f"alert-{uuid.uuid4().hex[:6]}"
    script = (
        "import base64, urllib.request\n"
        f"req = urllib.request.Request('http://{release.service}:8443/alerts', data=base64.b64decode('{body}'),"
        f" headers={{'Authorization': 'Bearer {token}', 'Content-Type': 'application/json'}})\n"
        "print('status', urllib.request.urlopen(req, timeout=10).status)\n"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": dict(NODE_SELECTOR),
            "tolerations": [*TOLERATIONS, {"operator": "Exists", "effect": "NoSchedule"}],
            "containers": [
                {
                    "name": "main",
                    "image": data.stack.images["worker"],
                    "command": ["python", "-c", script],
                    "securityContext": RESTRICTED_CONTAINER,
                }
            ],
        },
    }
    c = data.c
    c.kubectl("apply", "-f", "-", input=json.dumps(pod))
    wait_for(lambda: (c.get("pod", name).get("status") or {}).get("phase") in ("Succeeded", "Failed"), timeout=90)
    return c.kubectl("logs", name).stdout


def now() -> float:
    return time.monotonic()


@contextmanager
def real_data(kube: DevCluster, prefix: str) -> Iterator[RealData]:
    """The stack on the real node in namespaces of its own (``<prefix>-data-*``, ``<prefix>-op-*``), removed
    afterwards; raises ``stack.StackError`` when it cannot run here."""
    tag = uuid.uuid4().hex[:6]
    namespace, operator_namespace = f"{prefix}-data-{tag}", f"{prefix}-op-{tag}"
    running = stack.up(kube, namespace, operator_namespace)
    try:
        yield RealData(running)
    finally:
        running.release.uninstall()
        for ns in (namespace, operator_namespace):
            kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)
