"""Metering for the cluster controller: pod timestamps into the ledger, the ledger into the budget state.

Called from the cluster reconcile at most every few seconds per cluster (in the Redis gate's threads). Reads
the worker pods and their nodes' labels from the watch caches and the jobs' GPU time from the queue; writes
ledger records to Redis; returns the budget state that the scaler, the status and the conditions are computed
from (``portalis.desired.budget``). Time comes from the metering clock.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portalis import metrics
from portalis.api.meta import Key
from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.clients.connections import ClusterConnections
from portalis.clients.ledger import Ledger, PodTime
from portalis.clock import MeteringClock
from portalis.desired.budget import (
    BudgetState,
    Prices,
    TenantUsage,
    Usage,
    evaluate,
    gpu_seconds,
    gpus_by_capacity,
    is_spot_node,
    item_price,
    limits_of,
    prices_of,
)
from portalis.desired.podview import PodView

log = logging.getLogger("portalis.metering")


def pod_time(pod: PodView, node_labels: Mapping[str, str] | None) -> PodTime | None:
    """A worker pod's GPU time from its own timestamps, or None before it runs or without GPUs."""
    if pod.gpus == 0 or pod.started is None or not pod.node:
        return None
    return PodTime(pod.uid, pod.gpus, pod.started, pod.deleted_at, is_spot_node(node_labels or {}))


@dataclass
class Meter:
    """Per-process memory: counters' last values, per (namespace, cluster, tenant): (GPU-seconds, dollars) this
    month."""

    totals: dict[tuple[str, str, str], tuple[Decimal, Decimal]] = field(default_factory=dict)


def meter(
    key: Key,
    spec: TranslationClusterSpec,
    conns: ClusterConnections,
    workers: list[PodView],
    nodes: Mapping[str, Mapping[str, str]],
    jobs: list[tuple[str, str]],  # (job uid, tenant)
    memory: Meter,
    defaults: Prices,
    clock: MeteringClock,
) -> BudgetState:
    """Record live worker pods in the ledger and evaluate the cluster's budget now (blocking I/O)."""
    now = clock.now()
    ledger = Ledger(conns.queue.r, *key)
    live = [t for p in workers if (t := pod_time(p, nodes.get(p.node or ""))) is not None]
    ledger.record(live, now)
    ledger.close_missing({t.pod_uid for t in live}, now)
    usages = [Usage(t.pod_uid, t.gpus, t.start, t.end, t.spot) for t in ledger.usages(now)]
    prices = prices_of(spec, defaults)
    budget = spec.budget
    try:
        tz = ZoneInfo(budget.timezone if budget else "UTC")
    except ZoneInfoNotFoundError:
        tz = ZoneInfo("UTC")
    tenant_price = item_price(prices, *gpus_by_capacity(workers, nodes), spec.workers.spot)
    hours: dict[str, dict[datetime, Decimal]] = {}
    for uid, tenant in jobs:
        for hour, ms in conns.queue.gpu_ms_by_hour(uid).items():
            start = datetime.fromtimestamp(hour * 3600, UTC)
            bucket = hours.setdefault(tenant, {})
            bucket[start] = bucket.get(start, Decimal(0)) + Decimal(ms) / Decimal(1000)
    tenant_usage = [TenantUsage(t, sorted(h.items())) for t, h in hours.items()]
    limits, tenant_limits = limits_of(budget)
    state = evaluate(
        usages,
        prices,
        limits,
        tenant_limits,
        tenant_usage,
        tenant_price,
        budget.alert_threshold_percent if budget else 100,
        str(budget.on_exceeded) if budget else "Alert",
        tz,
        now,
    )
    _export(key, state, usages, tenant_usage, tenant_price, memory, now)
    return state


def _export(
    key: Key,
    state: BudgetState,
    usages: list[Usage],
    tenants: list[TenantUsage],
    tenant_price: Decimal,
    memory: Meter,
    now: datetime,
) -> None:
    for w in state.windows:
        metrics.BUDGET_PERCENT.labels(key[0], key[1], w.kind).set(w.percent)
    monthly = next(w for w in state.windows if w.kind == "monthly")
    cluster_gpu_s = gpu_seconds(usages, monthly.start, now, now)
    figures = {"": (cluster_gpu_s, monthly.spent)}
    for t in tenants:
        secs = sum((s for start, s in t.hours if start >= monthly.start), Decimal(0))
        figures[t.tenant] = (secs, secs * tenant_price / Decimal(3600))
    for tenant, (secs, dollars) in figures.items():
        label = (key[0], key[1], tenant or "_cluster")
        before = memory.totals.get(label)
        memory.totals[label] = (secs, dollars)
        if before is None or secs < before[0]:  # first look, or a new month: start counting from here
            continue
        metrics.GPU_SECONDS.labels(*label).inc(float(secs - before[0]))
        metrics.SPEND.labels(*label).inc(float(max(dollars - before[1], Decimal(0))))
