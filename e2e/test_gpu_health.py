"""GPU health end to end: ECC alerts from a DCGM-format endpoint through Debian's Prometheus and Alertmanager to
the operator, which quarantines the right KWOK GPU node under the cluster's spec.health, moves its Ray workers,
loses no work, respects PodDisruptionBudgets, stops at its limits and changes nothing it should not.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.gpu_health import (
    DBE,
    LocalWorkers,
    Pool,
    fake_dcgm,
    is_quarantined,
    metric,
    node,
    notification,
    operator_env,
    portalis_marks,
    post,
    start_health_operator,
)
from e2e.helpers import wait_for
from e2e.jobs import ARTIFACTS, JobEnv, job_env, simple_module
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.dcgm import FakeDcgmExporter
from portalis_devcluster.monitoring import Monitoring
from portalis_devcluster.operator import OperatorProcess
from portalis_devcluster.servers import RedisServer, S3Server

pytestmark = pytest.mark.cluster

FLEET = "gpu-health-" + uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def health_operator(crds: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    proc, _token = start_health_operator(crds, Path(tmp_path_factory.mktemp("health-operator")), FLEET)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def dcgm() -> Iterator[FakeDcgmExporter]:
    with fake_dcgm() as exporter:
        yield exporter


@pytest.fixture(scope="module")
def monitoring(
    dcgm: FakeDcgmExporter, health_operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Monitoring]:
    assert health_operator.webhook_token_file is not None
    mon = Monitoring(
        [dcgm.target],
        health_operator.webhook_url,
        health_operator.webhook_token_file,
        workdir=Path(tmp_path_factory.mktemp("monitoring")),
    ).start()
    yield mon
    mon.stop()


@pytest.fixture
def make_pool(crds: DevCluster, dcgm: FakeDcgmExporter) -> Iterator[Callable[[int], Pool]]:
    pools: list[Pool] = []

    def make(size: int) -> Pool:
        pool = Pool(crds, FLEET, size, dcgm)
        pools.append(pool)
        return pool.create()

    yield make
    for pool in pools:
        pool.delete()


@pytest.fixture
def env(health_operator: OperatorProcess, namespace: str, redis_server: RedisServer, s3_server: S3Server) -> JobEnv:
    return job_env(health_operator.kube, namespace, redis_server, s3_server, ARTIFACTS)


def worker_pods(env: JobEnv, name: str = "tc") -> list[dict[str, Any]]:
    pods = env.cluster.get("pods", "-l", f"portalis.dev/cluster={name},portalis.dev/role=worker")["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def running_workers(env: JobEnv, count: int, timeout: float = 60, avoid: str | None = None) -> list[dict[str, Any]]:
    """Wait for ``count`` running worker pods on distinct nodes (none on ``avoid``)."""

    def ready() -> list[dict[str, Any]] | None:
        pods = [p for p in worker_pods(env) if p["status"].get("phase") == "Running" and p["spec"].get("nodeName")]
        nodes = {p["spec"]["nodeName"] for p in pods}
        if len(pods) == count and len(nodes) == count and avoid not in nodes:
            return sorted(pods, key=lambda p: p["metadata"]["name"])
        return None

    pods: list[dict[str, Any]] = wait_for(ready, timeout=timeout, interval=0.3)
    return pods


def tc_status(env: JobEnv, name: str = "tc") -> dict[str, Any]:
    return dict(env.cluster.get("tc", name).get("status") or {})


def entry(env: JobEnv, node_name: str) -> dict[str, Any] | None:
    for e in tc_status(env).get("quarantinedNodes") or []:
        if e["name"] == node_name:
            return dict(e)
    return None


def reasons(env: JobEnv, kind: str = "TranslationCluster", name: str = "tc") -> list[str]:
    return [e["reason"] for e in env.cluster.events(kind, name)]


def node_events(kube: DevCluster, name: str) -> list[dict[str, Any]]:
    out = kube.kubectl(
        "get", "events", "-A", "--field-selector", f"involvedObject.kind=Node,involvedObject.name={name}", "-o", "json"
    ).stdout
    return list(json.loads(out)["items"])


def wait_series(mon: Monitoring, node_name: str) -> None:
    assert mon.prometheus is not None
    prom = mon.prometheus
    wait_for(lambda: prom.query(f'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{{Hostname="{node_name}"}}'), timeout=30)


# ---- the whole path ---------------------------------------------------------------------------------------


def test_a_dbe_error_quarantines_the_right_node_moves_its_workers_and_the_job_loses_nothing(
    env: JobEnv,
    make_pool: Callable[[int], Pool],
    dcgm: FakeDcgmExporter,
    monitoring: Monitoring,
    health_operator: OperatorProcess,
) -> None:
    pool = make_pool(4)
    env.create_cluster(workers=pool.workers_spec(minWorkers=2, maxWorkers=2), health={"eccAction": "Cordon"})
    first = running_workers(env, 2)
    victim_pod = first[0]["metadata"]["name"]
    victim = first[0]["spec"]["nodeName"]
    wait_series(monitoring, victim)

    bucket = f"src-{env.namespace}"
    env.upload(bucket, "repo/", {f"m{i:03d}.py": simple_module(i, env.namespace) for i in range(40)})
    env.submit("ecc", bucket, "repo/", output={"prefix": "out/"})
    workers = LocalWorkers(env.cluster.kube, env.namespace, "tc", env.redis, env.s3).start()
    try:
        wait_for(lambda: (env.job("ecc").get("status") or {}).get("items", {}).get("done", 0) >= 3, timeout=90)
        bumped = time.monotonic()
        dcgm.bump_dbe(victim, gpu=2)
        body = wait_for(lambda: (lambda b: b if is_quarantined(b) else None)(node(env.cluster.kube, victim)), 30, 0.1)
        took = time.monotonic() - bumped
        print(f"DBE counter raised -> node cordoned and tainted: {took:.2f}s")
        assert took < 15

        # only the victim: its GPU 2, the alert that fired, who and when
        ann = body["metadata"]["annotations"]
        alert = json.loads(ann["portalis.dev/quarantine-alert"])
        assert alert["alert"] == DBE and alert["gpu"] == "2" and alert["uuid"] == dcgm.uuid(victim, 2)
        assert victim in ann["portalis.dev/quarantine-reason"] and ann["portalis.dev/quarantined-by"]
        assert ann["portalis.dev/quarantined-at"] and ann["portalis.dev/quarantine-clusters"] == f"{env.namespace}/tc"
        taint = next(t for t in body["spec"]["taints"] if t["key"] == "portalis.dev/gpu-unhealthy")
        assert taint == {"key": "portalis.dev/gpu-unhealthy", "value": DBE, "effect": "NoSchedule"}
        for other in pool.names:
            if other != victim:
                assert not is_quarantined(node(env.cluster.kube, other))
        assert monitoring.prometheus is not None
        fired = [a for a in monitoring.prometheus.alerts() if a["labels"].get("Hostname") == victim]
        assert fired and fired[0]["labels"]["alertname"] == DBE and fired[0]["state"] == "firing"

        # its Ray worker leaves and is recreated on a healthy node
        moved = running_workers(env, 2, timeout=60, avoid=victim)
        assert victim_pod not in {p["metadata"]["name"] for p in moved}
        wait_for(lambda: victim_pod in workers.killed, timeout=30)

        status = env.wait_phase("ecc", {"Succeeded", "Failed"}, timeout=240)
    finally:
        workers.stop()
    assert status["phase"] == "Succeeded", status
    assert status["items"]["done"] == 40 and status["items"]["failed"] == 0
    outputs = env.outputs(bucket, "out/")
    assert len(outputs) == 40 == len(set(outputs))

    e = wait_for(lambda: (lambda x: x if x and x.get("phase") == "Cordoned" else None)(entry(env, victim)), 30)
    assert e["action"] == "Cordon" and e["since"] and victim in e["reason"]
    assert {"NodeQuarantined", "RayWorkersRemoved"} <= set(reasons(env))
    removed = [
        e["message"] for e in env.cluster.events("TranslationCluster", "tc") if e["reason"] == "RayWorkersRemoved"
    ]
    assert victim_pod in removed[0]
    print(removed[0])
    assert "NodeQuarantined" in {ev["reason"] for ev in node_events(env.cluster.kube, victim)}
    assert metric(health_operator.metrics_url, "portalis_alerts_received_total", alertname=DBE, result="quarantined")
    assert metric(health_operator.metrics_url, "portalis_quarantined_nodes", namespace=env.namespace, cluster="tc") == 1


# ---- PodDisruptionBudgets, and a restart in the middle of a drain ------------------------------------------


def guarded_pods(env: JobEnv, node_name: str, count: int = 2) -> None:
    items: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"guarded-{i}", "labels": {"app": "guarded"}},
            "spec": {
                "nodeName": node_name,
                "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                "tolerations": [{"operator": "Exists"}],
            },
        }
        for i in range(count)
    ]
    items.append(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "guarded"},
            "spec": {"minAvailable": count, "selector": {"matchLabels": {"app": "guarded"}}},
        }
    )
    env.cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))

    def settled() -> bool:
        pdb = env.cluster.get("pdb", "guarded").get("status") or {}
        return pdb.get("currentHealthy") == count and pdb.get("disruptionsAllowed") == 0

    wait_for(settled, timeout=30)


def test_a_pdb_that_forbids_eviction_holds_the_drain_and_a_restarted_operator_finishes_it(
    env: JobEnv, make_pool: Callable[[int], Pool], health_operator: OperatorProcess
) -> None:
    pool = make_pool(2)
    env.create_cluster(
        workers=pool.workers_spec(minWorkers=1, maxWorkers=1),
        health={"eccAction": "CordonAndDrain", "drainTimeoutSeconds": 300},
    )
    [worker] = running_workers(env, 1)
    target = worker["spec"]["nodeName"]
    guarded_pods(env, target)

    assert post(health_operator.webhook_url, notification(target)) == 202
    wait_for(lambda: is_quarantined(node(env.cluster.kube, target)), timeout=10)
    blocked = wait_for(
        lambda: (lambda x: x if x and x.get("phase") == "DrainBlocked" else None)(entry(env, target)), timeout=30
    )
    assert f"PodDisruptionBudget {env.namespace}/guarded" in blocked["message"], blocked
    assert blocked["action"] == "CordonAndDrain"
    events = [e for e in env.cluster.events("TranslationCluster", "tc") if e["reason"] == "DrainBlocked"]
    assert events and "disruption budget" in events[0]["message"] and "guarded" in events[0]["message"]
    assert "DrainBlocked" in {e["reason"] for e in node_events(env.cluster.kube, target)}
    # the Ray worker is not under the budget: it left and was recreated on the other node
    running_workers(env, 1, avoid=target)
    # the budget holds: the guarded pods stay
    time.sleep(2)
    for i in range(2):
        pod = env.cluster.get("pod", f"guarded-{i}")
        assert pod["spec"]["nodeName"] == target and not pod["metadata"].get("deletionTimestamp")

    # the operator dies mid-drain; a new one reads the state off the node and carries on
    health_operator.kill()
    health_operator.start(operator_env(FLEET))
    env.cluster.kubectl("delete", "pdb", "guarded")
    done = wait_for(
        lambda: (lambda x: x if x and x.get("phase") == "Drained" else None)(entry(env, target)), timeout=60
    )
    assert "evicted" in done["message"]
    left = env.cluster.get("pods", "--field-selector", f"spec.nodeName={target}")["items"]
    assert left == []
    assert "DrainCompleted" in reasons(env)
    assert is_quarantined(node(env.cluster.kube, target))  # drained, still cordoned


# ---- alert storms -------------------------------------------------------------------------------------------


def test_an_alert_storm_on_half_the_nodes_quarantines_no_more_than_the_limit_and_trips_the_breaker(
    env: JobEnv,
    make_pool: Callable[[int], Pool],
    dcgm: FakeDcgmExporter,
    monitoring: Monitoring,
    health_operator: OperatorProcess,
) -> None:
    pool = make_pool(6)
    env.create_cluster(
        workers=pool.workers_spec(minWorkers=6, maxWorkers=6),
        health={"eccAction": "Cordon", "maxUnavailableNodes": 2},
    )
    running_workers(env, 6, timeout=90)
    storm = pool.names[:3]
    for name in storm:
        wait_series(monitoring, name)
    for gpu, name in enumerate(storm):
        dcgm.bump_dbe(name, gpu=gpu, errors=3)

    def tripped() -> dict[str, Any] | None:
        cb = tc_status(env).get("circuitBreaker") or {}
        return cb if cb.get("tripped") else None

    breaker = wait_for(tripped, timeout=45)
    assert "maxUnavailableNodes" in breaker["reason"] and breaker["since"]
    assert monitoring.prometheus is not None
    prom = monitoring.prometheus
    wait_for(
        lambda: len({a["labels"]["Hostname"] for a in prom.alerts() if a["labels"].get("Hostname") in storm}) == 3, 30
    )
    time.sleep(3)  # every notification of the storm has arrived by now
    quarantined = [n for n in pool.names if is_quarantined(node(env.cluster.kube, n))]
    assert len(quarantined) == 2 and set(quarantined) <= set(storm), quarantined
    assert len(tc_status(env)["quarantinedNodes"]) == 2
    assert {"CircuitBreakerTripped", "QuarantineHeld"} <= set(reasons(env))
    held = next(n for n in storm if n not in quarantined)
    assert "QuarantineHeld" in {e["reason"] for e in node_events(env.cluster.kube, held)}
    url = health_operator.metrics_url
    assert metric(url, "portalis_circuit_breaker_tripped", namespace=env.namespace, cluster="tc") == 1
    assert metric(url, "portalis_alerts_received_total", alertname=DBE, result="held") >= 1

    # a person releases one node: the count falls under the limit and the breaker resets
    env.cluster.kube.kubectl("annotate", "node", quarantined[0], "portalis.dev/release=true")
    clean = {"unschedulable": False, "taints": [], "labels": {}, "annotations": {}}
    wait_for(lambda: portalis_marks(node(env.cluster.kube, quarantined[0])) == clean, timeout=20)
    wait_for(lambda: not (tc_status(env).get("circuitBreaker") or {}).get("tripped"), timeout=20)
    assert [e["name"] for e in tc_status(env)["quarantinedNodes"]] == [quarantined[1]]
    assert {"CircuitBreakerReset", "NodeReleased"} <= set(reasons(env))
    assert metric(url, "portalis_circuit_breaker_tripped", namespace=env.namespace, cluster="tc") == 0


# ---- dry run --------------------------------------------------------------------------------------------


def test_dry_run_writes_nothing_to_nodes_or_pods_and_records_the_plan(
    env: JobEnv, make_pool: Callable[[int], Pool], health_operator: OperatorProcess
) -> None:
    pool = make_pool(2)
    env.create_cluster(
        workers=pool.workers_spec(minWorkers=1, maxWorkers=1),
        health={"eccAction": "CordonAndDrain", "dryRun": True},
    )
    [worker] = running_workers(env, 1)
    target = worker["spec"]["nodeName"]
    before = portalis_marks(node(env.cluster.kube, target))
    pods_before = env.cluster.get("pods", "--field-selector", f"spec.nodeName={target}")["items"]

    assert post(health_operator.webhook_url, notification(target)) == 202

    def planned() -> dict[str, Any] | None:
        for p in tc_status(env).get("plannedNodeActions") or []:
            if p["node"] == target:
                return dict(p)
        return None

    plan = wait_for(planned, timeout=20)
    text = "\n".join(plan["actions"])
    assert f"cordon node {target}" in text and "portalis.dev/gpu-unhealthy" in text
    assert worker["metadata"]["name"] in text and "evict the other" in text
    assert plan["reason"] and plan["time"]
    dry = [e for e in env.cluster.events("TranslationCluster", "tc") if e["reason"] == "DryRun"]
    assert dry and "nothing changed" in dry[0]["message"]
    time.sleep(2)
    assert (
        portalis_marks(node(env.cluster.kube, target))
        == before
        == {
            "unschedulable": False,
            "taints": [],
            "labels": {},
            "annotations": {},
        }
    )
    pods_after = env.cluster.get("pods", "--field-selector", f"spec.nodeName={target}")["items"]
    assert [(p["metadata"]["name"], p["metadata"].get("deletionTimestamp")) for p in pods_after] == [
        (p["metadata"]["name"], None) for p in pods_before
    ]
    assert tc_status(env).get("quarantinedNodes") in (None, [])
    assert metric(health_operator.metrics_url, "portalis_alerts_received_total", alertname=DBE, result="dry_run")

    # the alert resolves: the plan goes away
    assert post(health_operator.webhook_url, notification(target, status="resolved")) == 202
    wait_for(lambda: planned() is None, timeout=20)


# ---- what must change nothing ---------------------------------------------------------------------------


def test_unauthenticated_malformed_and_unknown_node_alerts_change_nothing(
    make_pool: Callable[[int], Pool], health_operator: OperatorProcess
) -> None:
    kube = health_operator.kube
    pool = make_pool(1)
    target = pool.names[0]
    unmanaged = "cpu-0"  # a node of the local cluster that the module's selector leaves out
    before = {n: portalis_marks(node(kube, n)) for n in (target, unmanaged)}
    url, metrics_url = health_operator.webhook_url, health_operator.metrics_url
    counts = {
        r: metric(metrics_url, "portalis_alerts_received_total", result=r)
        for r in ("unauthorized", "malformed", "unknown_node", "unmanaged")
    }

    assert post(url, notification(target), token=None) == 401
    assert post(url, notification(target), token="not-the-token") == 401
    assert post(url, b"{this is not json") == 400
    assert post(url, {"alerts": [{"labels": {"Hostname": target}}]}) == 400  # no status
    assert post(url, {"alerts": [{"status": "firing", "labels": {"Hostname": 7}}]}) == 400
    assert post(url, notification("gpu-that-does-not-exist")) == 202
    assert post(url, notification(unmanaged)) == 202

    def counted() -> bool:
        now = {r: metric(metrics_url, "portalis_alerts_received_total", result=r) for r in counts}
        return (
            now["unauthorized"] >= counts["unauthorized"] + 2
            and now["malformed"] >= counts["malformed"] + 3
            and now["unknown_node"] >= counts["unknown_node"] + 1
            and now["unmanaged"] >= counts["unmanaged"] + 1
        )

    wait_for(counted, timeout=15)
    time.sleep(1)
    assert {n: portalis_marks(node(kube, n)) for n in (target, unmanaged)} == before
