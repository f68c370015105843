"""Budgets end to end: time passes through the operator's metering clock, not by sleeping."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from e2e.helpers import wait_for
from e2e.jobs import ARTIFACTS, JobEnv, job_env, simple_module
from e2e.test_scaling import items, replicas
from portalis_devcluster.operator import OperatorProcess
from portalis_devcluster.servers import RedisServer, S3Server

pytestmark = pytest.mark.cluster


def quiet_timezone() -> str:
    """A fixed-offset zone where it is about 03:00 now, so moving the clock a few hours stays in today."""
    offset = 3 - datetime.now(UTC).hour
    if offset < -12:
        offset += 24
    if offset > 14:
        offset -= 24
    # Etc/GMT signs are inverted: Etc/GMT-8 is UTC+8
    return "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


@pytest.fixture
def env(operator: OperatorProcess, namespace: str, redis_server: RedisServer, s3_server: S3Server) -> Iterator[JobEnv]:
    jobs = job_env(operator.kube, namespace, redis_server, s3_server, ARTIFACTS)
    assert operator.clock_file is not None
    yield jobs
    operator.clock_file.write_text("0")
    jobs.stop_workers()


def advance(operator: OperatorProcess, hours: float) -> None:
    assert operator.clock_file is not None
    operator.clock_file.write_text(str(hours * 3600))


def condition(env: JobEnv, kind: str, name: str, type_: str) -> dict[str, Any] | None:
    return env.cluster.condition_obj(kind, name, type_)


def test_warning_then_limit_with_block_scale_up(env: JobEnv, operator: OperatorProcess) -> None:
    env.create_cluster(
        workers={"gpuType": "H100", "minWorkers": 1, "maxWorkers": 4},
        autoscaling={"targetItemsPerWorker": 10, "scaleDownStabilizationSeconds": 600},
        pricing={"onDemandGpuHour": "3.60"},
        budget={
            "daily": "10.00",
            "alertThresholdPercent": 50,
            "onExceeded": "BlockScaleUp",
            "timezone": quiet_timezone(),
        },
    )
    wait_for(lambda: env.cluster.condition("tc", "tc", "Ready") == "True", timeout=30)
    wait_for(lambda: condition(env, "tc", "tc", "BudgetWarning"), timeout=15)
    assert condition(env, "tc", "tc", "BudgetWarning")["status"] == "False"  # type: ignore[index]

    advance(operator, 1.5)  # 1 GPU for 1.5 h at 3.60: 5.40 of 10.00
    warning = wait_for(
        lambda: (lambda c: c if c and c["status"] == "True" else None)(condition(env, "tc", "tc", "BudgetWarning")),
        timeout=20,
    )
    assert "daily spend 5.4" in warning["message"] and "50%" in warning["message"]
    assert any(e["reason"] == warning["reason"] for e in env.cluster.events("TranslationCluster", "tc"))
    with urllib.request.urlopen(operator.metrics_url, timeout=5) as resp:
        scraped = resp.read().decode()
    line = next(
        ln
        for ln in scraped.splitlines()
        if ln.startswith("portalis_budget_percent{") and f'namespace="{env.namespace}"' in ln and "daily" in ln
    )
    assert float(line.rsplit(" ", 1)[1]) >= 50

    advance(operator, 3)  # 10.80 of 10.00
    exceeded = wait_for(
        lambda: (lambda c: c if c and c["status"] == "True" else None)(condition(env, "tc", "tc", "BudgetExceeded")),
        timeout=20,
    )
    assert exceeded["reason"] == "DailyLimitReached" and "BlockScaleUp" in exceeded["message"]
    budget = env.cluster.get("tc", "tc")["status"]["budget"]
    assert Decimal(budget["daily"]["spent"]) >= Decimal("10.80") and budget["daily"]["limit"] == "10.00"
    assert budget["daily"]["percent"] >= 100

    queue = env.queue()
    queue.ensure_groups()
    queue.enqueue("blocked", items(env, 40, "blocked"), 0)  # would want 4 workers
    time.sleep(3)
    assert replicas(env) == 1, "no scale-up while the budget is spent"
    assert env.cluster.get("tc", "tc")["status"]["workers"]["desired"] == 1

    bucket = f"src-{env.namespace}"
    env.upload(bucket, "new/", {"a.py": simple_module(1, env.namespace)})
    env.submit("late", bucket, "new/")
    held = wait_for(lambda: condition(env, "tj", "late", "BudgetHeld"), timeout=20)
    assert held["status"] == "True" and held["reason"] == "BudgetExceeded"
    assert env.job("late")["status"]["phase"] == "Pending"

    env.cluster.kubectl("patch", "tc", "tc", "--type=merge", "-p", '{"spec":{"budget":{"daily":"100.00"}}}')
    assert wait_for(lambda: replicas(env) == 4, timeout=20), "scale-up resumes once the limit is raised"
    wait_for(lambda: (env.job("late").get("status") or {}).get("phase") == "Running", timeout=20)


def test_suspend_scales_to_zero_and_the_paused_job_completes_after_the_limit_is_raised(
    env: JobEnv, operator: OperatorProcess
) -> None:
    env.create_cluster(
        workers={"gpuType": "H100", "minWorkers": 1, "maxWorkers": 2},
        autoscaling={"enabled": False},
        pricing={"onDemandGpuHour": "3.60"},
        budget={"daily": "5.00", "onExceeded": "Suspend", "timezone": quiet_timezone()},
    )
    wait_for(lambda: env.cluster.condition("tc", "tc", "Ready") == "True", timeout=30)
    bucket = f"src-{env.namespace}"
    env.upload(bucket, "sus/", {f"m{i}.py": simple_module(i, env.namespace) for i in range(30)})
    env.submit("paused", bucket, "sus/", output={"prefix": "out/sus/"})
    env.wait_phase("paused", {"Running"}, timeout=30)

    advance(operator, 2)  # 7.20 of 5.00
    assert wait_for(lambda: replicas(env) == 0, timeout=20)
    assert wait_for(
        lambda: not env.cluster.get("pods", "-l", "portalis.dev/cluster=tc,portalis.dev/role=worker")["items"],
        timeout=30,
    )
    held = wait_for(
        lambda: (lambda c: c if c and c["status"] == "True" else None)(condition(env, "tj", "paused", "BudgetHeld")),
        timeout=20,
    )
    assert "Suspend" in held["message"]
    wait_for(lambda: env.queue().backlog() == 0, timeout=10)
    env.start_workers(count=1, concurrency=2)
    time.sleep(2)
    assert env.job("paused")["status"]["items"]["done"] == 0

    env.cluster.kubectl("patch", "tc", "tc", "--type=merge", "-p", '{"spec":{"budget":{"daily":"500.00"}}}')
    assert wait_for(lambda: replicas(env) == 1, timeout=20)
    status = env.wait_phase("paused", {"Succeeded", "Failed"}, timeout=120)
    assert status["phase"] == "Succeeded" and status["items"]["done"] == 30
    outputs = env.outputs(bucket, "out/sus/")
    assert len(outputs) == 30 == len(set(outputs))


def test_status_spend_matches_an_independent_recomputation_from_the_pods(env: JobEnv) -> None:
    price = Decimal("0.90")
    env.create_cluster(
        workers={"gpuType": "A100", "gpusPerWorker": 2, "minWorkers": 2, "maxWorkers": 2},
        autoscaling={"enabled": False},
        pricing={"onDemandGpuHour": str(price), "spotGpuHour": "0.30"},
        budget={"monthly": "1000.00", "timezone": "UTC"},
    )
    wait_for(lambda: env.cluster.condition("tc", "tc", "Ready") == "True", timeout=30)
    time.sleep(12)  # let some GPU time accrue, across a few metering rounds
    pods = env.cluster.get("pods", "-l", "portalis.dev/cluster=tc,portalis.dev/role=worker")["items"]
    before = env.cluster.get("tc", "tc")["status"]["budget"]["monthly"]
    now = datetime.now(UTC)
    expected = Decimal(0)
    for pod in pods:
        start = datetime.fromisoformat(pod["status"]["startTime"].replace("Z", "+00:00"))
        node = env.cluster.get_cluster_scoped("node", pod["spec"]["nodeName"])
        spot = node["metadata"]["labels"].get("karpenter.sh/capacity-type") == "spot"
        gpus = int(pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
        expected += gpus * Decimal((now - start).total_seconds()) * (Decimal("0.30") if spot else price) / 3600
    # status is refreshed every few seconds: at 4 GPUs and 0.90 an hour that lag is under half a cent
    assert abs(Decimal(before["spent"]) - expected) <= Decimal("0.01"), (before, expected)
    assert json.dumps(before)
