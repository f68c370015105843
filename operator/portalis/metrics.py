"""Prometheus metrics of the operator (names ``portalis_*``, units in the names)."""

from __future__ import annotations

import contextlib
import gc
import time

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter(
    "portalis_reconcile_total", "Reconciles run, by controller and result (ok or error).", ["controller", "result"]
)
RECONCILE_SECONDS = Histogram(
    "portalis_reconcile_duration_seconds",
    "Time one reconcile took, by controller.",
    ["controller"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
APPLIES = Counter(
    "portalis_backend_applies_total",
    "Server-side applies of backend objects (RayCluster, DaskCluster), by kind and reason.",
    ["kind", "reason"],
)
WORKERS_DESIRED = Gauge(
    "portalis_workers_desired", "Workers the operator wants, per cluster.", ["namespace", "cluster"]
)
WORKERS_READY = Gauge("portalis_workers_ready", "Worker pods ready, per cluster.", ["namespace", "cluster"])
GPUS_ALLOCATED = Gauge(
    "portalis_gpus_allocated", "GPUs allocated to running worker pods, per cluster.", ["namespace", "cluster"]
)

QUEUE_DEPTH = Gauge(
    "portalis_queue_depth",
    "Items waiting in the queue, per cluster and priority.",
    ["namespace", "cluster", "priority"],
)
QUEUE_OLDEST_AGE = Gauge(
    "portalis_queue_oldest_item_age_seconds",
    "Age of the oldest waiting item, per cluster and priority.",
    ["namespace", "cluster", "priority"],
)
SCALE_EVENTS = Counter(
    "portalis_scale_events_total",
    "Worker count changes, per cluster, direction (up or down) and reason.",
    ["namespace", "cluster", "direction", "reason"],
)
BUDGET_PERCENT = Gauge(
    "portalis_budget_percent",
    "Spend as a percentage of the limit, per cluster and window (daily, weekly, monthly).",
    ["namespace", "cluster", "window"],
)
GPU_SECONDS = Counter(
    "portalis_gpu_seconds",
    "GPU-seconds metered, per cluster and tenant (tenant _cluster: all worker pod time).",
    ["namespace", "cluster", "tenant"],
)
SPEND = Counter(
    "portalis_spend_dollars",
    "Spend metered in dollars, per cluster and tenant (tenant _cluster: all worker pod time).",
    ["namespace", "cluster", "tenant"],
)


# GPU health: alerts received on /alerts, quarantined nodes, the circuit breaker, and what was done to nodes.
ALERTS_RECEIVED = Counter(
    "portalis_alerts_received_total",
    "Alerts received (Alertmanager webhook or dcgm-exporter poll), by alertname and what became of them "
    "(quarantined, held, dry_run, unknown_node, ...); refused requests count with an empty alertname.",
    ["alertname", "result"],
)
QUARANTINED_NODES = Gauge(
    "portalis_quarantined_nodes", "GPU nodes quarantined and not yet released, per cluster.", ["namespace", "cluster"]
)
CIRCUIT_BREAKER_TRIPPED = Gauge(
    "portalis_circuit_breaker_tripped",
    '1 while node actions are held back after too many alerts, per cluster (namespace and cluster "*": fleet).',
    ["namespace", "cluster"],
)
NODE_ACTIONS = Counter(
    "portalis_node_actions_total",
    "Actions on GPU nodes and their pods (cordon, remove_ray_workers, evict, release, ...), by result.",
    ["action", "result"],
)


ITEMS = Counter(
    "portalis_items",
    "Work items finished, per cluster and outcome (done: translated, cached: from the result cache, failed).",
    ["namespace", "cluster", "outcome"],
)
API_REQUESTS = Counter(
    "portalis_api_requests",
    "Requests the controllers made to the Kubernetes API server, by HTTP method and resource (watches excluded).",
    ["method", "resource"],
)

GC_SECONDS = Counter(
    "portalis_gc_seconds",
    "Time the operator process spent in Python's cyclic garbage collector, by generation.",
    ["generation"],
)
_gc_started: list[float] = []


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[:] = [time.perf_counter()]
    elif _gc_started:
        GC_SECONDS.labels(str(info.get("generation", ""))).inc(time.perf_counter() - _gc_started.pop())


def watch_gc() -> None:
    """Count the collector's time (``portalis_gc_seconds_total``): with tens of thousands of objects cached, a full
    collection walks all of them, and that time shows nowhere else."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


def observe_reconcile(controller: str, seconds: float, ok: bool) -> None:
    RECONCILES.labels(controller, "ok" if ok else "error").inc()
    RECONCILE_SECONDS.labels(controller).observe(seconds)


def forget_cluster(namespace: str, cluster: str) -> None:
    for gauge in (WORKERS_DESIRED, WORKERS_READY, GPUS_ALLOCATED):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, cluster)


def serve(port: int, host: str = "0.0.0.0") -> None:
    watch_gc()
    start_http_server(port, addr=host)
