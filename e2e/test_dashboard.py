"""The Grafana dashboard end to end: every panel's query returns data from a real run.

A real Prometheus scrapes, every second, the operator under test, a local worker (``portalis worker run
--metrics-port``) and the fake dcgm-exporter while a TranslationJob runs to completion on a TranslationCluster
with prices, a budget and autoscaling. The test makes happen what some panels wait for: a file that cannot be
translated (failed items), a backlog larger than one worker's share (a scale-up), ECC, Xid and page-retirement
errors on a GPU (the DCGM panels filter on increases), one alert posted to the operator's webhook, and a second
job once Prometheus holds the worker's series (rate() sees no increase in a series' first sample). Then every
target of ``charts/portalis/files/dashboard.json``, with Grafana's variables filled in as Grafana would for this
namespace and cluster, is sent to Prometheus' query API and must return at least one series with a value.
"""

from __future__ import annotations

import functools
import json
import math
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.gpu_health import metric, notification, post, start_health_operator
from e2e.helpers import wait_for
from e2e.jobs import ARTIFACTS, JobEnv, job_env, simple_module
from portalis_devcluster.cluster import DevCluster, free_port
from portalis_devcluster.dcgm import FakeDcgmExporter
from portalis_devcluster.monitoring import PrometheusServer
from portalis_devcluster.operator import OperatorProcess
from portalis_devcluster.servers import RedisServer, S3Server

pytestmark = pytest.mark.cluster

DASHBOARD = Path(__file__).resolve().parents[1] / "charts" / "portalis" / "files" / "dashboard.json"
# try/except is a construct py2many does not translate: the item fails for good
POISON = b"def parse(x: str) -> int:\n    try:\n        return int(x)\n    except ValueError:\n        return 0\n"
# what Grafana puts in place of its built-in variables, for a dashboard looked at over the last hour
BUILTINS = {"__rate_interval": "1m", "__range": "1h", "__interval": "1s"}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, also those inside collapsed rows."""
    for panel in dashboard.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []


def substitute(expr: str, values: dict[str, str]) -> str:
    """``$name`` and ``${name}`` replaced by ``values``; a variable the test does not know fails the test."""

    def value(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise AssertionError(f"the dashboard uses ${name}, which this test does not fill in: {expr}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def test_substitute_fills_in_grafana_variables() -> None:
    values = {"namespace": "team-a", "cluster": "h100", **BUILTINS}
    assert (
        substitute('rate(x{namespace=~"$namespace",cluster=~"${cluster}"}[$__rate_interval]) [$__range]', values)
        == 'rate(x{namespace=~"team-a",cluster=~"h100"}[1m]) [1h]'
    )
    with pytest.raises(AssertionError, match=r"\$tenant"):
        substitute('x{tenant="$tenant"}', values)


def shows_data(prom: PrometheusServer, query: str) -> bool:
    """At least one series, and one with a number rather than NaN (a quantile of no observations, say)."""
    return any(not math.isnan(float(r["value"][1])) for r in prom.query(query))


@pytest.fixture
def dash_operator(crds: DevCluster, tmp_path: Path) -> Iterator[OperatorProcess]:
    """An operator with the Alertmanager webhook on, acting on no node (its managed-node selector matches none)."""
    proc, _token = start_health_operator(crds, tmp_path, "dashboard-" + uuid.uuid4().hex[:6])
    yield proc
    proc.stop()


@pytest.fixture
def dcgm() -> Iterator[FakeDcgmExporter]:
    exporter = FakeDcgmExporter().start()
    yield exporter
    exporter.stop()


@pytest.fixture
def env(
    dash_operator: OperatorProcess, namespace: str, redis_server: RedisServer, s3_server: S3Server
) -> Iterator[JobEnv]:
    env = job_env(dash_operator.kube, namespace, redis_server, s3_server, ARTIFACTS)
    yield env
    env.stop_workers()


def test_every_dashboard_panel_shows_data_from_a_real_run(
    env: JobEnv, dash_operator: OperatorProcess, dcgm: FakeDcgmExporter, tmp_path: Path
) -> None:
    gpu_node = "dash-gpu-" + uuid.uuid4().hex[:6]  # a GPU host only the exporter knows
    dcgm.add_node(gpu_node, gpus=2)
    worker_port = free_port()
    prom = PrometheusServer(
        workdir=tmp_path / "prometheus",
        targets=[dcgm.target],
        jobs={"portalis": [dash_operator.metrics_target], "portalis-worker": [f"127.0.0.1:{worker_port}"]},
    ).start()
    try:
        # the DCGM panels show increases: let Prometheus see the counters at 0 first, then raise them
        wait_for(lambda: prom.query(f'count_over_time(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{{Hostname="{gpu_node}"}}[1m]) > 1'))
        dcgm.bump_dbe(gpu_node, gpu=1)
        dcgm.bump_sbe(gpu_node, gpu=0, errors=3)
        dcgm.set_xid(gpu_node, gpu=1, xid=48)
        dcgm.set_retired_pending(gpu_node, gpu=1, pages=2)
        # one alert on the webhook: for a host that is no node of the cluster, so nothing is done to any node
        assert post(dash_operator.webhook_url, notification(gpu_node)) == 202
        wait_for(lambda: metric(dash_operator.metrics_url, "portalis_alerts_received_total", result="unknown_node"))

        env.create_cluster(
            workers={"gpuType": "H100", "minWorkers": 1, "maxWorkers": 3},
            autoscaling={"enabled": True, "targetItemsPerWorker": 5},
            budget={"daily": "1000.00", "monthly": "20000.00"},
        )
        bucket = f"src-{env.namespace}"
        files = {f"pkg/mod_{i}.py": simple_module(i, env.namespace) for i in range(20)}
        env.upload(bucket, "repo/", {**files, "pkg/poison.py": POISON})
        env.submit("dash", bucket, "repo/", output={"prefix": "out/"}, maxFailedItems="10%")
        # 21 items for 5 a worker: the cluster scales up before any worker takes one
        wait_for(lambda: metric(dash_operator.metrics_url, "portalis_scale_events_total", namespace=env.namespace), 60)
        env.start_workers(count=1, concurrency=2, metrics_ports=[worker_port])
        status = env.wait_phase("dash", {"Succeeded", "Failed"}, timeout=120)
        assert status["phase"] == "Succeeded", status
        assert (status["items"]["done"], status["items"]["failed"]) == (20, 1)
        # that job can be over between two scrapes, and an increase in a series' first sample is invisible to
        # rate(): once Prometheus holds the worker's series, a second job shows as it would on a running worker
        wait_for(lambda: prom.query(f'portalis_translation_duration_seconds_count{{namespace="{env.namespace}"}}'))
        env.upload(bucket, "more/", {f"more_{i}.py": simple_module(100 + i, env.namespace) for i in range(6)})
        env.submit("dash-more", bucket, "more/", output={"prefix": "out-more/"})
        assert env.wait_phase("dash-more", {"Succeeded", "Failed"}, timeout=60)["phase"] == "Succeeded"

        # Grafana's variables: the namespace and cluster queries offer this run's, and the panels filter on them
        wait_for(lambda: env.namespace in prom.label_values("namespace", "portalis_workers_desired"))
        assert prom.label_values("cluster", f'portalis_workers_desired{{namespace=~"{env.namespace}"}}') == ["tc"]
        values = {"namespace": env.namespace, "cluster": "tc", **BUILTINS}

        dashboard = json.loads(DASHBOARD.read_text())
        queries = [
            (panel["title"], substitute(target["expr"], values))
            for panel in panels(dashboard)
            for target in panel.get("targets") or []
        ]
        assert len(queries) >= 25
        empty: list[str] = []
        for title, query in queries:
            try:
                wait_for(functools.partial(shows_data, prom, query), timeout=15, interval=0.5)
            except AssertionError:
                empty.append(f"{title}: {query}")
        assert not empty, "panels without data:\n" + "\n".join(empty)
    finally:
        prom.stop()
