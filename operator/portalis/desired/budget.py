"""GPU time into dollars: budget windows, the ledger and the budget policy, as pure functions.

The ledger is a list of ``Usage`` records, one per worker pod: GPUs allocated, when it started running and
(once it stopped) when it ended, and whether it ran on spot capacity. Spend in a window is the sum over
records of GPUs x the seconds the record overlaps the window x the hourly price / 3600, in ``Decimal``; a
record that is still open runs until ``now``. Because spend is recomputed from the records every time, a
restart recomputes the same totals and never counts a second twice.

Windows are the calendar day, the week from Monday and the calendar month in the budget's timezone, found
with ``zoneinfo`` so they start at the right local midnight across daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from portalis.api.v1alpha1.cluster import BudgetSpec, TranslationClusterSpec
from portalis.desired.conditions import FALSE, TRUE, ConditionUpdate
from portalis.desired.pods import SPOT_LABELS
from portalis.desired.podview import PodView

CENT = Decimal("0.01")
WINDOWS = ("daily", "weekly", "monthly")


def is_spot_node(labels: Mapping[str, str]) -> bool:
    return any(labels.get(k) == v for k, v in SPOT_LABELS)


@dataclass(frozen=True)
class Usage:
    """GPU time of one worker pod: ``gpus`` from ``start`` until ``end`` (None: still running)."""

    pod_uid: str
    gpus: int
    start: datetime
    end: datetime | None
    spot: bool


@dataclass(frozen=True)
class Prices:
    on_demand: Decimal
    spot: Decimal

    def per_gpu_hour(self, spot: bool) -> Decimal:
        return self.spot if spot else self.on_demand


def prices_of(spec: TranslationClusterSpec, defaults: Prices) -> Prices:
    """The cluster's GPU-hour prices: its ``spec.pricing`` (spot at the on-demand price when not given), else
    the operator-wide defaults (``PORTALIS_DEFAULT_ON_DEMAND_GPU_HOUR`` and ``..._SPOT_GPU_HOUR``)."""
    if spec.pricing is None:
        return defaults
    on_demand = Decimal(spec.pricing.on_demand_gpu_hour)
    spot = Decimal(spec.pricing.spot_gpu_hour) if spec.pricing.spot_gpu_hour else on_demand
    return Prices(on_demand, spot)


def item_price(prices: Prices, spot_gpus: int, on_demand_gpus: int, spot_by_spec: bool) -> Decimal:
    """The GPU-hour price of the GPU time a cluster's items use: the price of the GPUs its running workers hold,
    spot or on-demand by their nodes' capacity-type labels as metering reads them (mixed capacity at the
    GPU-weighted mean); with no worker running, the price ``spec.workers.spot`` asks for."""
    total = spot_gpus + on_demand_gpus
    if total <= 0:
        return prices.per_gpu_hour(spot_by_spec)
    if on_demand_gpus == 0:
        return prices.spot
    if spot_gpus == 0:
        return prices.on_demand
    return (prices.spot * spot_gpus + prices.on_demand * on_demand_gpus) / Decimal(total)


def gpus_by_capacity(pods: Iterable[PodView], node_labels: Mapping[str, Mapping[str, str]]) -> tuple[int, int]:
    """The GPUs the running worker pods hold on spot nodes and on on-demand nodes, by the nodes' labels."""
    spot = on_demand = 0
    for p in pods:
        if not p.is_worker or p.phase != "Running" or p.deleting or not p.node:
            continue
        if is_spot_node(node_labels.get(p.node) or {}):
            spot += p.gpus
        else:
            on_demand += p.gpus
    return spot, on_demand


def is_metered(spec: TranslationClusterSpec, default_prices_set: bool) -> bool:
    """Whether the cluster's GPU time is metered: it has a budget or prices, or the operator has default prices."""
    return spec.budget is not None or spec.pricing is not None or default_prices_set


def window_bounds(kind: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the current window in UTC: local midnight of the day, of Monday, of the 1st."""
    local = now.astimezone(tz)
    day = local.date()
    if kind == "daily":
        first, last = day, day + timedelta(days=1)
    elif kind == "weekly":
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=7)
    elif kind == "monthly":
        first = day.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown window {kind!r}")

    def midnight(d: object) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)  # type: ignore[attr-defined]

    return midnight(first), midnight(last)


def overlap_seconds(start: datetime, end: datetime, lo: datetime, hi: datetime) -> Decimal:
    a, b = max(start, lo), min(end, hi)
    if b <= a:
        return Decimal(0)
    delta = b - a
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / Decimal(1_000_000)


def gpu_seconds(usages: Iterable[Usage], lo: datetime, hi: datetime, now: datetime) -> Decimal:
    return sum((u.gpus * overlap_seconds(u.start, u.end or now, lo, hi) for u in usages), Decimal(0))


def spend(usages: Iterable[Usage], prices: Prices, lo: datetime, hi: datetime, now: datetime) -> Decimal:
    """Spend of the records inside [lo, hi), to 28 significant digits (rounded to cents only for display)."""
    price_seconds = Decimal(0)  # exact: whole and micro seconds times prices with two decimals
    for u in usages:
        price_seconds += u.gpus * overlap_seconds(u.start, u.end or now, lo, hi) * prices.per_gpu_hour(u.spot)
    return price_seconds / Decimal(3600)


def cents(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def percent(spent: Decimal, limit: Decimal | None) -> int:
    if limit is None or limit <= 0:
        return 0 if limit is None else (100 if spent > 0 else 0)
    return int((spent * 100 / limit).to_integral_value(rounding="ROUND_FLOOR"))


@dataclass(frozen=True)
class WindowSpend:
    kind: str
    start: datetime
    spent: Decimal
    limit: Decimal | None

    @property
    def percent(self) -> int:
        return percent(self.spent, self.limit)

    def to_status(self) -> dict[str, object]:
        out: dict[str, object] = {
            "spent": cents(self.spent),
            "percent": self.percent,
            "windowStart": self.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if self.limit is not None:
            out["limit"] = cents(self.limit)
        return out


@dataclass(frozen=True)
class TenantUsage:
    """GPU time a tenant's items used, as (hour start in UTC, GPU-seconds) buckets, priced per cluster."""

    tenant: str
    hours: Sequence[tuple[datetime, Decimal]]


def tenant_spend(usage: TenantUsage, price: Decimal, lo: datetime, hi: datetime) -> Decimal:
    """Items finished in an hour are counted in the window that hour starts in."""
    return sum((secs * price / Decimal(3600) for start, secs in usage.hours if lo <= start < hi), Decimal(0))


@dataclass(frozen=True)
class Limits:
    daily: Decimal | None = None
    weekly: Decimal | None = None
    monthly: Decimal | None = None

    def get(self, kind: str) -> Decimal | None:
        value: Decimal | None = getattr(self, kind)
        return value


@dataclass(frozen=True)
class BudgetState:
    """What the policy concluded: the worst window, whether a warning or the limit was reached."""

    windows: tuple[WindowSpend, ...]
    tenants: dict[str, tuple[WindowSpend, ...]]
    threshold: int
    action: str

    def _worst(self, windows: Sequence[WindowSpend]) -> WindowSpend | None:
        limited = [w for w in windows if w.limit is not None]
        return max(limited, key=lambda w: w.percent, default=None)

    @property
    def worst(self) -> WindowSpend | None:
        return self._worst(self.windows)

    @property
    def warning(self) -> bool:
        w = self.worst
        return w is not None and w.percent >= self.threshold

    @property
    def exceeded(self) -> bool:
        w = self.worst
        return w is not None and w.spent >= (w.limit or Decimal(0)) and w.limit is not None

    def tenant_exceeded(self, tenant: str) -> WindowSpend | None:
        for w in self.tenants.get(tenant, ()):
            if w.limit is not None and w.spent >= w.limit:
                return w
        return None

    @property
    def blocks_scale_up(self) -> bool:
        return self.exceeded and self.action in ("BlockScaleUp", "Suspend")

    @property
    def suspends(self) -> bool:
        return self.exceeded and self.action == "Suspend"


def limits_of(budget: BudgetSpec | None) -> tuple[Limits, dict[str, Limits]]:
    """The cluster's limits per window, and each tenant's."""
    if budget is None:
        return Limits(), {}

    def dec(value: str | None) -> Decimal | None:
        return Decimal(value) if value else None

    tenants = {t.name: Limits(dec(t.daily), dec(t.weekly), dec(t.monthly)) for t in budget.tenants or []}
    return Limits(dec(budget.daily), dec(budget.weekly), dec(budget.monthly)), tenants


def evaluate(
    usages: Sequence[Usage],
    prices: Prices,
    limits: Limits,
    tenant_limits: dict[str, Limits],
    tenant_usage: Sequence[TenantUsage],
    tenant_price: Decimal,
    threshold: int,
    action: str,
    tz: ZoneInfo,
    now: datetime,
) -> BudgetState:
    windows = []
    bounds = {kind: window_bounds(kind, now, tz) for kind in WINDOWS}
    for kind in WINDOWS:
        lo, hi = bounds[kind]
        windows.append(WindowSpend(kind, lo, spend(usages, prices, lo, hi, now), limits.get(kind)))
    tenants: dict[str, tuple[WindowSpend, ...]] = {}
    by_name = {t.tenant: t for t in tenant_usage}
    for name in sorted(set(by_name) | set(tenant_limits)):
        usage = by_name.get(name, TenantUsage(name, ()))
        lim = tenant_limits.get(name, Limits())
        tenants[name] = tuple(
            WindowSpend(kind, bounds[kind][0], tenant_spend(usage, tenant_price, *bounds[kind]), lim.get(kind))
            for kind in WINDOWS
        )
    return BudgetState(tuple(windows), tenants, threshold, action)


def budget_status(state: BudgetState) -> dict[str, object]:
    out: dict[str, object] = {w.kind: w.to_status() for w in state.windows}
    out["tenants"] = [
        {"name": name, **{w.kind: w.to_status() for w in windows}} for name, windows in state.tenants.items()
    ]
    return out


def window_text(w: WindowSpend) -> str:
    return f"{w.kind} spend {cents(w.spent)} of {cents(w.limit or Decimal(0))} ({w.percent}%)"


_ON_EXCEEDED = {
    "Alert": "no action is taken (onExceeded: Alert)",
    "BlockScaleUp": "workers are not added and new jobs wait (onExceeded: BlockScaleUp)",
    "Suspend": "workers scale to zero and jobs pause until the window rolls over or the limit is raised "
    "(onExceeded: Suspend)",
}


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
            ConditionUpdate(
                "BudgetExceeded", TRUE if over else FALSE, "TenantLimit" if over else "NoLimits", tenant_note.strip()
            ),
        ]
    text = window_text(worst)
    warning = ConditionUpdate(
        "BudgetWarning",
        TRUE if state.warning else FALSE,
        f"{worst.kind.capitalize()}AboveThreshold" if state.warning else "BelowThreshold",
        f"{text}; the warning threshold is {state.threshold}%." if state.warning else "",
    )
    if state.exceeded:
        action = _ON_EXCEEDED[state.action]
        reason = f"{worst.kind.capitalize()}LimitReached"
        exceeded = ConditionUpdate("BudgetExceeded", TRUE, reason, f"{text}: {action}.{tenant_note}")
    elif over:
        exceeded = ConditionUpdate("BudgetExceeded", TRUE, "TenantLimit", tenant_note.strip())
    else:
        exceeded = ConditionUpdate("BudgetExceeded", FALSE, "WithinBudget", "")
    return [warning, exceeded]
