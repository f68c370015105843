"""fleet-scale: 1,000 KWOK GPU nodes, 100 TranslationClusters and 10,000 TranslationJobs on one operator.

Measures, in one run, beside the real KubeRay operator reconciling the same RayClusters: how long until every
job is Planned and every cluster Ready; the apply-to-RayCluster latency at that scale (p50/p95); the
operator's peak RSS and mean CPU; its API requests per second and per reconcile; KubeRay's RSS, CPU,
requests and reconcile p95 from its own metrics endpoint; and the CPU every process on the machine spent per job
while the jobs were planned. Goals: job created -> Planned p95 <= 2 s while the jobs arrive, operator CPU per
job <= 5 ms (while the jobs were planned), operator RSS under 300 MB, apply-to-RayCluster p95 <= 2 s, all jobs
planned within 120 s. Sizes: PORTALIS_BENCH_FLEET_NODES (1000),
PORTALIS_BENCH_FLEET_CLUSTERS (100), PORTALIS_BENCH_FLEET_JOBS (10000).
"""

from __future__ import annotations

import base64
import os
import re
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import kubernetes

from bench.common import Result, local_cluster, percentile, report, summary
from bench.watch import Watcher, api_client
from portalis.clients.store import Store
from portalis_devcluster.nodes import FleetSpec
from portalis_devcluster.operator import OperatorProcess
from portalis_devcluster.servers import RedisServer, S3Server

NODES = int(os.environ.get("PORTALIS_BENCH_FLEET_NODES", "1000"))
CLUSTERS = int(os.environ.get("PORTALIS_BENCH_FLEET_CLUSTERS", "100"))
JOBS = int(os.environ.get("PORTALIS_BENCH_FLEET_JOBS", "10000"))
# 1: the jobs are created while the operator is stopped, and timed from its start (planning throughput alone,
# without the client creating jobs on the same cores)
BACKLOG = os.environ.get("PORTALIS_BENCH_FLEET_BACKLOG") == "1"
PLAN_GOAL_S, RSS_GOAL_MB, APPLY_GOAL_S = 120.0, 300.0, 2.0
PLANNED_P95_GOAL_S, CPU_MS_GOAL = 2.0, 5.0  # job created -> Planned p95; operator CPU per job
PROBES = 10  # clusters created once every job is planned


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def metric_sum(text: str, name: str, match: str = "") -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {") and match in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def by_label(text: str, name: str, label: str) -> dict[str, float]:
    """A counter's samples summed by one label's value."""
    sums: dict[str, float] = {}
    for line in text.splitlines():
        found = re.search(rf'{label}="([^"]*)"', line) if line.startswith(name + "{") else None
        if found:
            sums[found.group(1)] = sums.get(found.group(1), 0.0) + float(line.rsplit(" ", 1)[1])
    return sums


def histogram_p95(text: str, name: str, match: str = "") -> float | None:
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket") and match in line:
            le = re.search(r'le="([^"]+)"', line)
            if le:
                bound = float("inf") if le.group(1) == "+Inf" else float(le.group(1))
                buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    if not buckets or not buckets.get(float("inf")):
        return None
    target = 0.95 * buckets[float("inf")]
    return next(b for b in sorted(buckets) if buckets[b] >= target)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds every core of this machine has spent busy (not idle or waiting on I/O) since boot."""
    fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class CpuLedger:
    """Who spent the machine's CPU between two marks: each named process, and the machine in all."""

    def __init__(self, pids: Callable[[], dict[str, int]]) -> None:
        self.pids = pids
        self.start: dict[str, float] = {}
        self.spent: dict[str, float] = {}
        self.wall = 0.0

    def snapshot(self) -> dict[str, float]:
        taken = {name: cpu_seconds(pid) for name, pid in self.pids().items()}
        taken["(machine)"] = machine_busy_seconds()
        taken["(wall)"] = time.monotonic()
        return taken

    def begin(self) -> None:
        self.start = self.snapshot()

    def end(self) -> None:
        if not self.start or self.spent:
            return
        now = self.snapshot()
        self.wall = now.pop("(wall)") - self.start["(wall)"]
        self.spent = {name: now[name] - self.start.get(name, now[name]) for name in now}


class ProcStats(threading.Thread):
    """Peak RSS (MB) and CPU seconds of one process, sampled every 0.5 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_mb, self.stop_flag = pid, 0.0, threading.Event()
        self.cpu0 = self.cpu()

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def run(self) -> None:
        while not self.stop_flag.wait(0.5):
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)
            except OSError:
                return


def main() -> int:
    per_kind = max(NODES // 2, 1)
    fleet = FleetSpec(
        h100_nodes=per_kind,
        a100_nodes=NODES - per_kind,
        cpu_nodes=max(CLUSTERS // 20, 2),
        gpus_per_node=8,
        spot_every=0,
    )
    redis = RedisServer().start()
    s3 = S3Server().start()
    try:
        store = Store(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key)
        for bucket in ("fleet-artifacts", "fleet-src"):
            store.ensure_bucket(bucket)
        store.put_bytes("fleet-src", "src/mod.py", b"def f(x: int) -> int:\n    return x + 1\n")
        with local_cluster("bench-fleet", fleet) as kube:
            log = Path(tempfile.mkdtemp(prefix="portalis-bench-")) / "operator.log"
            operator = OperatorProcess(kube, log).start()
            assert operator.proc is not None
            watched = {"stats": ProcStats(operator.proc.pid)}
            watched["stats"].start()
            kuberay_url = f"http://127.0.0.1:{kube.state().ports.kuberay_metrics}/metrics"
            kuberay_pid = kube.state().pids["kuberay-operator"]
            kuberay_stats = ProcStats(kuberay_pid)
            kuberay_stats.start()
            kuberay_before = scrape(kuberay_url)
            ours_before = scrape(operator.metrics_url)
            assert redis.proc is not None and s3.proc is not None
            helpers = {
                "redis-server": redis.proc.pid,
                "S3 server (versitygw)": s3.proc.pid,
                "bench client": os.getpid(),
            }
            ledger = CpuLedger(lambda: {"Portalis operator": watched["stats"].pid, **kube.state().pids, **helpers})

            def pause() -> None:
                watched["stats"].stop_flag.set()
                operator.stop()

            def resume() -> None:
                nonlocal ours_before, kuberay_before
                operator.start()
                assert operator.proc is not None
                watched["stats"] = ProcStats(operator.proc.pid)
                watched["stats"].start()
                ours_before, kuberay_before = scrape(operator.metrics_url), scrape(kuberay_url)
                kuberay_stats.cpu0 = kuberay_stats.cpu()

            try:
                result = run(kube, redis, s3, (pause, resume) if BACKLOG else None, ledger)
            finally:
                stats = watched["stats"]
                stats.stop_flag.set()
                kuberay_stats.stop_flag.set()
            elapsed = result["elapsed"]
            ours_after, kuberay_after = scrape(operator.metrics_url), scrape(kuberay_url)
            operator_cpu = (stats.cpu() - stats.cpu0) / elapsed
            kuberay_cpu = (kuberay_stats.cpu() - kuberay_stats.cpu0) / elapsed
            operator.stop()
    finally:
        redis.stop()
        s3.stop()

    requests = metric_sum(ours_after, "portalis_api_requests_total") - metric_sum(
        ours_before, "portalis_api_requests_total"
    )
    before_by = by_label(ours_before, "portalis_api_requests_total", "resource")
    per_resource = {
        r: round((n - before_by.get(r, 0.0)) / max(JOBS, 1), 3)
        for r, n in sorted(by_label(ours_after, "portalis_api_requests_total", "resource").items())
        if n > before_by.get(r, 0.0)
    }
    reconciles = metric_sum(ours_after, "portalis_reconcile_total") - metric_sum(
        ours_before, "portalis_reconcile_total"
    )
    job_reconciles = metric_sum(ours_after, "portalis_reconcile_total", 'controller="translationjob"') - metric_sum(
        ours_before, "portalis_reconcile_total", 'controller="translationjob"'
    )
    kuberay_requests = metric_sum(kuberay_after, "rest_client_requests_total") - metric_sum(
        kuberay_before, "rest_client_requests_total"
    )
    ours_p95 = histogram_p95(ours_after, "portalis_reconcile_duration_seconds", 'controller="translationcluster"')
    kuberay_p95 = histogram_p95(kuberay_after, "controller_runtime_reconcile_time_seconds", 'controller="raycluster')
    to_rc, to_rc_loaded = result["to_rc"], result["to_rc_loaded"]
    gc_seconds = metric_sum(ours_after, "portalis_gc_seconds_total") - metric_sum(
        ours_before, "portalis_gc_seconds_total"
    )
    print(f"fleet: {NODES} GPU nodes, {CLUSTERS} TranslationClusters, {JOBS} TranslationJobs")
    print(f"operator healthy -> first RayCluster (start-up with {NODES} nodes): {result['first_rc_s']:.1f}s")
    since = "the operator's start, with every job created while it was stopped" if BACKLOG else "the first created"
    print(
        f"jobs created in {result['create_s']:.1f}s; all jobs planned {result['planned_s']:.1f}s after {since}; "
        f"all clusters Ready after {result['ready_s']:.1f}s"
    )
    print(summary(f"TranslationCluster created -> RayCluster created ({CLUSTERS} in a row, before the jobs)", to_rc))
    print(summary(f"TranslationCluster created -> RayCluster created (with all {JOBS} jobs planned)", to_rc_loaded))
    print(summary("TranslationJob created -> Planned", result["to_planned"]))
    print(
        f"Portalis operator: peak RSS {stats.peak_mb:.0f} MB, mean CPU {operator_cpu:.2f} cores, "
        f"{requests / elapsed:.1f} API requests/s, {requests / max(reconciles, 1):.2f} per reconcile, "
        f"TranslationCluster reconcile p95 <= {ours_p95}s, {gc_seconds:.1f}s in the garbage collector"
    )
    print(
        f"KubeRay operator:  peak RSS {kuberay_stats.peak_mb:.0f} MB, mean CPU {kuberay_cpu:.2f} cores, "
        f"{kuberay_requests / elapsed:.1f} API requests/s, RayCluster reconcile p95 <= {kuberay_p95}s"
    )
    cpu = cpu_breakdown(ledger)
    if cpu:
        ms = cpu["cpu_ms_per_job_by_process"]
        print(
            f"CPU while the jobs were planned ({cpu['window_s']:.1f}s, {cpu['cores']} cores, "
            f"{cpu['machine_busy_cores']:.2f} busy), ms per job: "
            + ", ".join(f"{n} {v}" for n, v in ms.items())
            + f"; all {cpu['machine_cpu_ms_per_job']}"
        )
        print(
            f"everything but the operator spent {cpu['rest_of_machine_cpu_s']:.1f} CPU seconds: on "
            f"{cpu['cores']} cores, {cpu['rest_of_machine_floor_s']:.1f}s of the window even with an operator that "
            f"cost nothing (the same requests served)"
        )
    operator_ms = (cpu.get("cpu_ms_per_job_by_process") or {}).get("Portalis operator", float("inf"))
    met = (
        result["planned_s"] <= PLAN_GOAL_S
        and percentile(result["to_planned"], 95) <= PLANNED_P95_GOAL_S
        and operator_ms <= CPU_MS_GOAL
        and stats.peak_mb < RSS_GOAL_MB
        and max(percentile(to_rc, 95), percentile(to_rc_loaded, 95)) <= APPLY_GOAL_S
        and result["unplanned"] == 0
    )
    report(
        Result(
            bench="fleet-scale",
            metric="TranslationCluster created -> RayCluster created, at fleet scale",
            unit="s",
            values=to_rc,
            baseline_name="KubeRay RayCluster reconcile p95 (same run, its own histogram)",
            baseline_values=[kuberay_p95 or 0.0],
            goal=(
                f"created -> Planned p95 <= {PLANNED_P95_GOAL_S:.0f} s, operator CPU <= {CPU_MS_GOAL:.0f} ms per job, "
                f"RSS < {RSS_GOAL_MB:.0f} MB, apply p95 <= {APPLY_GOAL_S:.0f} s, all planned <= {PLAN_GOAL_S:.0f} s"
            ),
            met=met,
            extra={
                "nodes": NODES,
                "clusters": CLUSTERS,
                "jobs": JOBS,
                "startup_first_raycluster_s": round(result["first_rc_s"], 2),
                "jobs_created_while_operator_stopped": BACKLOG,
                "all_planned_s": round(result["planned_s"], 2),
                "apply_with_all_jobs_planned_p50_s": round(percentile(to_rc_loaded, 50), 3),
                "apply_with_all_jobs_planned_p95_s": round(percentile(to_rc_loaded, 95), 3),
                "operator_gc_seconds": round(gc_seconds, 2),
                "all_ready_s": round(result["ready_s"], 2),
                "unplanned": result["unplanned"],
                "create_jobs_s": round(result["create_s"], 2),
                "job_created_to_planned_p50_s": round(percentile(result["to_planned"], 50), 3),
                "job_created_to_planned_p95_s": round(percentile(result["to_planned"], 95), 3),
                "operator_peak_rss_mb": round(stats.peak_mb, 1),
                "operator_cpu_cores": round(operator_cpu, 3),
                "operator_api_requests_per_s": round(requests / elapsed, 2),
                "operator_api_requests_per_reconcile": round(requests / max(reconciles, 1), 3),
                "operator_api_requests_per_job": round(requests / max(JOBS, 1), 3),
                "operator_api_requests_per_job_by_resource": per_resource,
                "job_reconciles_per_job": round(job_reconciles / max(JOBS, 1), 3),
                "operator_reconcile_p95_le_s": ours_p95,
                "kuberay_peak_rss_mb": round(kuberay_stats.peak_mb, 1),
                "kuberay_cpu_cores": round(kuberay_cpu, 3),
                "kuberay_api_requests_per_s": round(kuberay_requests / elapsed, 2),
                "kuberay_reconcile_p95_le_s": kuberay_p95,
                **cpu,
            },
        )
    )
    return 0


def cpu_breakdown(ledger: CpuLedger) -> dict[str, Any]:
    """The CPU spent while the jobs were planned, per job and by process, and what all but the operator spent."""
    if not ledger.spent or ledger.wall <= 0:
        return {}
    spent = dict(ledger.spent)
    machine = spent.pop("(machine)")
    spent["(other)"] = max(machine - sum(spent.values()), 0.0)
    cores = os.cpu_count() or 1
    rest = machine - spent.get("Portalis operator", 0.0)
    return {
        "window_s": round(ledger.wall, 1),
        "cores": cores,
        "machine_busy_cores": round(machine / ledger.wall, 2),
        "machine_cpu_ms_per_job": round(machine * 1000 / max(JOBS, 1), 1),
        "cpu_ms_per_job_by_process": {
            name: round(c * 1000 / max(JOBS, 1), 1)
            for name, c in sorted(spent.items(), key=lambda kv: -kv[1])
            if c * 1000 / max(JOBS, 1) >= 0.05
        },
        "rest_of_machine_cpu_s": round(rest, 1),
        "rest_of_machine_floor_s": round(rest / cores, 1),
    }


def run(
    kube: Any,
    redis: RedisServer,
    s3: S3Server,
    backlog: tuple[Callable[[], None], Callable[[], None]] | None,
    ledger: CpuLedger,
) -> dict[str, Any]:
    ns = f"bench-fleet-{os.getpid()}"
    kube.kubectl("create", "namespace", ns)
    client = api_client(kube)
    custom = kubernetes.client.CustomObjectsApi(client)
    core = kubernetes.client.CoreV1Api(client)
    values = {"url": redis.url, "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    core.create_namespaced_secret(
        ns,
        cast(
            Any,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "fleet"},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
            },
        ),
    )
    lock = threading.Lock()
    created: dict[str, float] = {}
    rc_seen: dict[str, float] = {}
    ready: set[str] = set()
    planned: dict[str, float] = {}
    job_created: dict[str, float] = {}

    def on_rc(_kind: str, obj: dict[str, Any], t: float) -> None:
        with lock:
            rc_seen.setdefault(obj["metadata"]["name"], t)

    def on_tc(_kind: str, obj: dict[str, Any], _t: float) -> None:
        if any(
            c["type"] == "Ready" and c["status"] == "True" for c in (obj.get("status") or {}).get("conditions") or []
        ):
            with lock:
                ready.add(obj["metadata"]["name"])

    def on_tj(_kind: str, obj: dict[str, Any], t: float) -> None:
        conds = (obj.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Planned" and c["status"] == "True" for c in conds):
            with lock:
                planned.setdefault(obj["metadata"]["name"], t)

    watchers = [
        Watcher(
            custom.list_namespaced_custom_object,
            on_rc,
            group="ray.io",
            version="v1",
            namespace=ns,
            plural="rayclusters",
        ),
        Watcher(
            custom.list_namespaced_custom_object,
            on_tc,
            group="portalis.dev",
            version="v1alpha1",
            namespace=ns,
            plural="translationclusters",
        ),
        Watcher(
            custom.list_namespaced_custom_object,
            on_tj,
            group="portalis.dev",
            version="v1alpha1",
            namespace=ns,
            plural="translationjobs",
        ),
    ]
    for w in watchers:
        w.start()
        w.ready.wait(10)

    def cluster_body(name: str) -> dict[str, Any]:
        return {
            "apiVersion": "portalis.dev/v1alpha1",
            "kind": "TranslationCluster",
            "metadata": {"name": name},
            "spec": {
                "workers": {
                    "gpuType": "Any",
                    "minWorkers": 1,
                    "maxWorkers": 2,
                    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                },
                "head": {"resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}},
                "queue": {"urlSecretRef": {"name": "fleet", "key": "url"}},
                "storage": {
                    "endpoint": s3.endpoint,
                    "bucket": "fleet-artifacts",
                    "forcePathStyle": True,
                    "credentialsSecretRef": {"name": "fleet"},
                },
            },
        }

    # The operator's start-up (listing and indexing 1,000 nodes) is measured on its own: a first cluster,
    # not counted below, is reconciled before the timed clusters are created.
    warm_t0 = time.monotonic()
    custom.create_namespaced_custom_object(
        "portalis.dev", "v1alpha1", ns, "translationclusters", cluster_body("warmup")
    )
    while "warmup" not in rc_seen and time.monotonic() - warm_t0 < 300:
        time.sleep(0.1)
    first_rc_s = time.monotonic() - warm_t0
    started = time.monotonic()
    for i in range(CLUSTERS):
        name = f"c{i:03d}"
        t0 = time.monotonic()
        custom.create_namespaced_custom_object(
            "portalis.dev", "v1alpha1", ns, "translationclusters", cluster_body(name)
        )
        with lock:
            created[name] = t0

    def create_job(i: int) -> None:
        t0 = time.monotonic()
        body = {
            "apiVersion": "portalis.dev/v1alpha1",
            "kind": "TranslationJob",
            "metadata": {"name": f"j{i:05d}"},
            "spec": {
                "clusterRef": {"name": f"c{i % CLUSTERS:03d}"},
                "source": {"bucket": "fleet-src", "prefix": "src/"},
                "output": {"prefix": f"out/j{i:05d}/"},
            },
        }
        custom.create_namespaced_custom_object("portalis.dev", "v1alpha1", ns, "translationjobs", body)
        with lock:
            job_created[f"j{i:05d}"] = t0

    while len(set(created) - set(rc_seen)) and time.monotonic() - started < 300:
        time.sleep(0.1)  # every RayCluster made before the jobs come (the apply figures are not the client's)
    if backlog is not None:  # every cluster Ready, then the operator stops while the jobs are created
        while len(ready - {"warmup"}) < CLUSTERS and time.monotonic() - started < 600:
            time.sleep(0.5)
        ready_at_pause = time.monotonic()
        backlog[0]()
    jobs_started = time.monotonic()
    if backlog is None:
        ledger.begin()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create_job, range(JOBS)))
    create_s = time.monotonic() - jobs_started
    measured_from = started
    if backlog is not None:
        backlog[1]()  # returns once the operator answers its health check
        jobs_started = measured_from = time.monotonic()
        ledger.begin()
    deadline = time.monotonic() + 600
    planned_at = ready_at = None
    while time.monotonic() < deadline and (planned_at is None or ready_at is None):
        with lock:
            if planned_at is None and len(planned) >= JOBS:
                planned_at = time.monotonic()
                ledger.end()
            if ready_at is None and len(ready - {"warmup"}) >= CLUSTERS:
                ready_at = ready_at_pause if backlog is not None else time.monotonic()
        time.sleep(0.5)
    # The fleet at full size (every job planned): a few more clusters, one at a time, timed the same way.
    loaded: dict[str, float] = {}
    for i in range(PROBES):
        name = f"probe{i}"
        loaded[name] = time.monotonic()
        custom.create_namespaced_custom_object(
            "portalis.dev", "v1alpha1", ns, "translationclusters", cluster_body(name)
        )
        time.sleep(1.0)
    probe_deadline = time.monotonic() + 60
    while set(loaded) - set(rc_seen) and time.monotonic() < probe_deadline:
        time.sleep(0.1)
    end = time.monotonic()
    for w in watchers:
        w.stop()
    kube.kubectl("delete", "namespace", ns, "--wait=false")
    to_rc = [rc_seen[n] - created[n] for n in created if n in rc_seen]
    to_rc_loaded = [rc_seen[n] - t for n, t in loaded.items() if n in rc_seen]
    to_planned = [planned[n] - job_created[n] for n in job_created if n in planned]
    return {
        "elapsed": end - measured_from,
        "planned_s": (planned_at or end) - jobs_started,
        "ready_s": (ready_at or end) - started,
        "unplanned": JOBS - len(planned),
        "create_s": create_s,
        "first_rc_s": first_rc_s,
        "to_rc": to_rc or [float("inf")],
        "to_rc_loaded": to_rc_loaded or [float("inf")],
        "to_planned": to_planned or [float("inf")],
    }


if __name__ == "__main__":
    sys.exit(main())
