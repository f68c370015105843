"""A job environment for end-to-end tests: a TranslationCluster wired to the real Redis and S3 servers,
sources uploaded to S3, and local worker processes standing in for the cluster's GPU workers."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.helpers import Cluster, wait_for
from portalis.clients.queue import RedisQueue, queue_for
from portalis.clients.store import Store
from portalis_devcluster.servers import RedisServer, S3Server

ARTIFACTS = "portalis-e2e-artifacts"


def simple_module(i: int, salt: str = "") -> bytes:
    """A small, typed Python module that py2many translates to Rust; ``salt`` keeps it out of the cache."""
    return (
        f"# {salt}\n"
        f"def scale_{i}(values: list[int], factor: int) -> list[int]:\n"
        f"    out: list[int] = []\n"
        f"    for v in values:\n"
        f"        out.append(v * factor + {i})\n"
        f"    return out\n\n\n"
        f"def total_{i}(values: list[int]) -> int:\n"
        f"    result = 0\n"
        f"    for v in values:\n"
        f"        result += v\n"
        f"    return result\n"
    ).encode()


@dataclass
class JobEnv:
    cluster: Cluster
    redis: RedisServer
    s3: S3Server
    store: Store
    name: str = "tc"
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.cluster.namespace

    def queue(self) -> RedisQueue:
        return queue_for(self.redis.url, self.namespace, self.name)

    def create_cluster(self, name: str | None = None, **spec: Any) -> None:
        name = name or self.name
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "portalis-e2e"},
            "data": {
                k: base64.b64encode(v.encode()).decode()
                for k, v in {
                    "url": self.redis.url,
                    "AWS_ACCESS_KEY_ID": self.s3.access_key,
                    "AWS_SECRET_ACCESS_KEY": self.s3.secret_key,
                }.items()
            },
        }
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(secret))
        body: dict[str, Any] = {
            "apiVersion": "portalis.dev/v1alpha1",
            "kind": "TranslationCluster",
            "metadata": {"name": name},
            "spec": {
                "workers": {"gpuType": "H100", "minWorkers": 1, "maxWorkers": 4},
                "autoscaling": {"enabled": False},
                "queue": {"urlSecretRef": {"name": "portalis-e2e", "key": "url"}},
                "storage": {
                    "endpoint": self.s3.endpoint,
                    "bucket": ARTIFACTS,
                    "forcePathStyle": True,
                    "credentialsSecretRef": {"name": "portalis-e2e"},
                },
                "pricing": {"onDemandGpuHour": "3.60"},
                **spec,
            },
        }
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(body))

    def upload(self, bucket: str, prefix: str, files: dict[str, bytes]) -> None:
        self.store.ensure_bucket(bucket)
        for rel, data in files.items():
            self.store.put_bytes(bucket, prefix + rel, data)

    def submit(self, name: str, bucket: str, prefix: str, **spec: Any) -> None:
        body = {
            "apiVersion": "portalis.dev/v1alpha1",
            "kind": "TranslationJob",
            "metadata": {"name": name},
            "spec": {"clusterRef": {"name": self.name}, "source": {"bucket": bucket, "prefix": prefix}, **spec},
        }
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(body))

    def start_workers(
        self, count: int = 1, concurrency: int = 2, cluster: str | None = None, metrics_ports: Sequence[int] = ()
    ) -> list[str]:
        """``count`` local worker processes; the i-th serves /metrics on loopback at ``metrics_ports[i]``, if given."""
        env = dict(os.environ)
        env.update(self.s3.client_env())
        env["PORTALIS_S3_FORCE_PATH_STYLE"] = "true"
        names = []
        for i in range(count):
            name = f"w-{uuid.uuid4().hex[:6]}"
            log = Path(f"/tmp/portalis-e2e-{name}.log")
            metrics = (
                ["--metrics-port", str(metrics_ports[i]), "--metrics-host", "127.0.0.1"]
                if i < len(metrics_ports)
                else []
            )
            with open(log, "ab") as fh:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "portalis",
                        "worker",
                        "run",
                        "--namespace",
                        self.namespace,
                        "--cluster",
                        cluster or self.name,
                        "--redis-url",
                        self.redis.url,
                        "--name",
                        name,
                        "--concurrency",
                        str(concurrency),
                        "--visibility-timeout-seconds",
                        "3",
                        *metrics,
                    ],
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            self.workers.append(proc)
            self.logs.append(log)
            names.append(name)
        return names

    def stop_workers(self) -> None:
        for w in self.workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in self.workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        self.workers.clear()

    def job(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.cluster.get("tj", name)
        return obj

    def wait_phase(self, name: str, phases: set[str], timeout: float = 120) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.job(name).get("status") or {}
            return status if status.get("phase") in phases else None

        status: dict[str, Any] = wait_for(reached, timeout=timeout, interval=0.3)
        return status

    def outputs(self, bucket: str, prefix: str) -> list[str]:
        return [o.key for o in self.store.list(bucket, prefix)]


def job_env(operator_kube: Any, namespace: str, redis: RedisServer, s3: S3Server, bucket: str) -> JobEnv:
    """A JobEnv in ``namespace`` on the operator's cluster, with ``bucket`` (the clusters' artifacts) created."""
    store = Store(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key)
    store.ensure_bucket(bucket)
    return JobEnv(Cluster(operator_kube, namespace), redis, s3, store)
