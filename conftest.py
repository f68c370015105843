"""Shared pytest fixtures: one local GPU cluster per run, real Redis and S3 servers, a namespace per test.

Set PORTALIS_TEST_REUSE_CLUSTER=1 to run against the developer's `portalis devcluster up` cluster
(it is left running); otherwise the run starts its own cluster in a private state directory and stops it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from portalis_devcluster import build
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.operator import OperatorProcess, install_crds
from portalis_devcluster.servers import RedisServer, S3Server


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


@pytest.fixture(scope="session")
def crds(kube: DevCluster) -> DevCluster:
    """Portalis' CRDs, installed from the generated files in crds/."""
    return install_crds(kube)


# Operators the session started as local processes; tests that run the operator from its chart pause them.
LOCAL_OPERATORS: list[OperatorProcess] = []


@pytest.fixture(scope="module")
def local_operators_paused() -> Iterator[None]:
    """No local operator process reconciles while the tests of a module run the operator in a pod: two operators
    would both write the same objects' status."""
    paused = [op for op in LOCAL_OPERATORS if op.alive()]
    for op in paused:
        op.stop()
    yield
    for op in paused:
        op.start()


@pytest.fixture(scope="session")
def operator(crds: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The operator under test; its metering clock runs ahead by the seconds in ``clock_file`` (0 at start)."""
    workdir = Path(tmp_path_factory.mktemp("operator"))
    clock_file = workdir / "clock-offset"
    clock_file.write_text("0")
    proc = OperatorProcess(crds, workdir / "operator.log")
    proc.clock_file = clock_file
    proc.start({"PORTALIS_CLOCK_OFFSET_FILE": str(clock_file)})
    LOCAL_OPERATORS.append(proc)
    yield proc
    LOCAL_OPERATORS.remove(proc)
    proc.stop()
