"""Metering for the cluster controller: pod timestamps into the ledger, the ledger into budget status.

Called from the cluster reconcile at most every few seconds per cluster. Reads pods and nodes from the
watch caches and job GPU time from the queue; writes ledger records to Redis; returns the budget state for
the scaler's budget hook, the status and the conditions. Time comes from ``portalis.clock``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portalis import clock, metrics
from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.clients.connections import ClusterConnections
from portalis.clients.ledger import Ledger, PodTime
from portalis.desired.budget import (
    BudgetState,
    Limits,
    Prices,
    TenantUsage,
    Usage,
    evaluate,
    gpu_seconds,
    is_spot_node,
    window_text,
)
from portalis.desired.conditions import FALSE, TRUE, ConditionUpdate, parse_time
from portalis.desired.pods import GPU_RESOURCE

log = logging.getLogger("portalis.metering")

Key = tuple[str, str]


def default_prices() -> Prices:
    return Prices(
        on_demand=Decimal(os.environ.get("PORTALIS_DEFAULT_ON_DEMAND_GPU_HOUR", "0")),
        spot=Decimal(os.environ.get("PORTALIS_DEFAULT_SPOT_GPU_HOUR", "0")),
    )


def prices_of(spec: TranslationClusterSpec) -> Prices:
    if spec.pricing is None:
        return default_prices()
    on_demand = Decimal(spec.pricing.on_demand_gpu_hour)
    spot = Decimal(spec.pricing.spot_gpu_hour) if spec.pricing.spot_gpu_hour else on_demand
    return Prices(on_demand, spot)


def pod_time(pod: dict[str, Any], node_labels: dict[str, str] | None) -> PodTime | None:
    """A worker pod's GPU time from its own timestamps, or None before it runs or without GPUs."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status") or {}
    gpus = 0
    for c in spec.get("containers") or []:
        raw = ((c.get("resources") or {}).get("limits") or {}).get(GPU_RESOURCE)
        if raw is not None and str(raw).isdigit():
            gpus += int(str(raw))
    start = parse_time(status.get("startTime"))
    if gpus == 0 or start is None or not spec.get("nodeName"):
        return None
    end = parse_time(meta.get("deletionTimestamp"))
    return PodTime(str(meta.get("uid")), gpus, start, end, is_spot_node(node_labels or {}))


@dataclass
class Meter:
    """Per-process memory: when each cluster was last metered, and counters' last values."""

    last: dict[Key, float]
    totals: dict[tuple[str, str, str], tuple[Decimal, Decimal]]  # (ns, cluster, tenant) -> (gpu s, $) this month

    def __init__(self) -> None:
        self.last = {}
        self.totals = {}


def meter(
    key: Key,
    spec: TranslationClusterSpec,
    conns: ClusterConnections,
    pods: list[dict[str, Any]],
    nodes: dict[str, dict[str, str]],
    jobs: list[tuple[str, str]],  # (job uid, tenant)
    memory: Meter,
) -> BudgetState:
    """Record live worker pods in the ledger and evaluate the cluster's budget now (blocking I/O)."""
    now = clock.now()
    ledger = Ledger(conns.queue.r, *key)
    live = [t for p in pods if (t := pod_time(p, nodes.get(p.get("spec", {}).get("nodeName", "")))) is not None]
    ledger.record(live, now)
    ledger.close_missing({t.pod_uid for t in live}, now)
    usages = [Usage(t.pod_uid, t.gpus, t.start, t.end, t.spot) for t in ledger.usages(now)]
    prices = prices_of(spec)
    budget = spec.budget
    try:
        tz = ZoneInfo(budget.timezone if budget else "UTC")
    except ZoneInfoNotFoundError:
        tz = ZoneInfo("UTC")
    tenant_price = prices.per_gpu_hour(spec.workers.spot)
    hours: dict[str, dict[datetime, Decimal]] = {}
    for uid, tenant in jobs:
        for hour, ms in conns.queue.gpu_ms_by_hour(uid).items():
            start = datetime.fromtimestamp(hour * 3600, UTC)
            bucket = hours.setdefault(tenant, {})
            bucket[start] = bucket.get(start, Decimal(0)) + Decimal(ms) / Decimal(1000)
    tenant_usage = [TenantUsage(t, sorted(h.items())) for t, h in hours.items()]
    limits = Limits(
        *(Decimal(v) if v else None for v in ((budget.daily, budget.weekly, budget.monthly) if budget else (None,) * 3))
    )
    tenant_limits = {
        t.name: Limits(*(Decimal(v) if v else None for v in (t.daily, t.weekly, t.monthly)))
        for t in ((budget.tenants or []) if budget else [])
    }
    state = evaluate(
        usages, prices, limits, tenant_limits, tenant_usage, tenant_price,
        budget.alert_threshold_percent if budget else 100, str(budget.on_exceeded) if budget else "Alert", tz, now,
    )  # fmt: skip
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


def budget_conditions(state: BudgetState, spec: TranslationClusterSpec) -> list[ConditionUpdate]:
    """BudgetWarning and BudgetExceeded from the worst window (and tenants over their limits)."""
    if spec.budget is None:
        return []
    worst = state.worst
    over = sorted(name for name in state.tenants if state.tenant_exceeded(name))
    tenant_note = f" Tenants over their limits: {', '.join(over)}." if over else ""
    if worst is None:
        return [
            ConditionUpdate("BudgetWarning", FALSE, "NoLimits", ""),
            ConditionUpdate("BudgetExceeded", TRUE if over else FALSE, "TenantLimit" if over else "NoLimits",
                            tenant_note.strip()),
        ]  # fmt: skip
    text = window_text(worst)
    warning = ConditionUpdate(
        "BudgetWarning",
        TRUE if state.warning else FALSE,
        f"{worst.kind.capitalize()}AboveThreshold" if state.warning else "BelowThreshold",
        f"{text}; the warning threshold is {state.threshold}%." if state.warning else "",
    )
    if state.exceeded:
        action = {
            "Alert": "no action is taken (onExceeded: Alert)",
            "BlockScaleUp": "workers are not added and new jobs wait (onExceeded: BlockScaleUp)",
            "Suspend": "workers scale to zero and jobs pause until the window rolls over or the limit is raised "
            "(onExceeded: Suspend)",
        }[state.action]
        exceeded = ConditionUpdate("BudgetExceeded", TRUE, f"{worst.kind.capitalize()}LimitReached",
                                   f"{text}: {action}.{tenant_note}")  # fmt: skip
    elif over:
        exceeded = ConditionUpdate("BudgetExceeded", TRUE, "TenantLimit", tenant_note.strip())
    else:
        exceeded = ConditionUpdate("BudgetExceeded", FALSE, "WithinBudget", "")
    return [warning, exceeded]
