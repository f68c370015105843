"""Shared pytest fixtures: one local GPU cluster per run, real Redis and S3 servers, a namespace per test.

Set PORTALIS_TEST_REUSE_CLUSTER=1 to run against the developer's `portalis devcluster up` cluster
(it is left running); otherwise the run starts its own cluster in a private state directory and stops it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from portalis.devcluster import build
from portalis.devcluster.cluster import DevCluster, free_port
from portalis.devcluster.servers import RedisServer, S3Server


@pytest.fixture(scope="session")
def kube() -> Iterator[DevCluster]:
    if os.environ.get("PORTALIS_TEST_REUSE_CLUSTER") == "1":
        cluster = DevCluster()
        cluster.up()
        yield cluster
        return
    state = build.cache_root() / "clusters" / f"test-{os.getpid()}"
    cluster = DevCluster(state)
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def namespace(kube: DevCluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(workdir=Path(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(workdir=Path(tmp_path_factory.mktemp("s3"))).start()
    yield server
    server.stop()


CRD_DIR = Path(__file__).parent / "crds"


@pytest.fixture(scope="session")
def crds(kube: DevCluster) -> DevCluster:
    """Portalis' CRDs, installed from the generated files in crds/."""
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    kube.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/translationclusters.portalis.dev",
        "crd/translationjobs.portalis.dev",
    )
    return kube


class OperatorProcess:
    """`portalis operator run` as a child process against the test cluster."""

    def __init__(self, kube: DevCluster, log: Path) -> None:
        self.kube = kube
        self.log = log
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/healthz"

    def start(self, extra_env: dict[str, str] | None = None) -> OperatorProcess:
        env = self.kube.env()
        env.update(extra_env or {})
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "portalis",
                    "operator",
                    "run",
                    "--health-host",
                    "127.0.0.1",
                    "--health-port",
                    str(self.health_port),
                    "--metrics-port",
                    str(self.metrics_port),
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"operator did not serve {self.health_url} in 30s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="session")
def operator(crds: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(crds, Path(tmp_path_factory.mktemp("operator")) / "operator.log").start()
    yield proc
    proc.stop()
