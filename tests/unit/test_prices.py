"""Prices of a cluster's GPU time and its items (desired.budget), and the budget conditions: pure functions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.desired.budget import (
    Limits,
    Prices,
    TenantUsage,
    Usage,
    budget_conditions,
    evaluate,
    gpus_by_capacity,
    is_metered,
    item_price,
    limits_of,
    prices_of,
)
from portalis.desired.podview import PodView

DEFAULTS = Prices(Decimal("2.00"), Decimal("0.50"))
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
PRICING = {"onDemandGpuHour": "1.00"}


def cluster(**spec: Any) -> TranslationClusterSpec:
    return TranslationClusterSpec.model_validate(
        {"queue": {"url": "redis://r:6379/0"}, "storage": {"bucket": "artifacts"}, **spec}
    )


def test_a_cluster_without_pricing_is_priced_at_the_operator_defaults() -> None:
    assert prices_of(cluster(), DEFAULTS) == DEFAULTS
    priced = prices_of(cluster(pricing={"onDemandGpuHour": "3.60"}), DEFAULTS)
    assert priced == Prices(Decimal("3.60"), Decimal("3.60"))  # spot at the on-demand price when not given
    both = prices_of(cluster(pricing={"onDemandGpuHour": "3.60", "spotGpuHour": "1.20"}), DEFAULTS)
    assert both == Prices(Decimal("3.60"), Decimal("1.20"))


def test_a_cluster_is_metered_with_a_budget_prices_or_operator_defaults() -> None:
    assert not is_metered(cluster(), False)
    assert is_metered(cluster(), True)  # (a budget needs spec.pricing)
    assert is_metered(cluster(pricing={"onDemandGpuHour": "3.60"}), False)


def test_items_are_priced_by_the_capacity_their_cluster_runs_on() -> None:
    prices = Prices(Decimal("3.60"), Decimal("1.20"))
    assert item_price(prices, 0, 8, spot_by_spec=True) == Decimal("3.60")  # on-demand nodes, whatever the spec
    assert item_price(prices, 8, 0, spot_by_spec=False) == Decimal("1.20")  # spot nodes
    assert item_price(prices, 8, 8, spot_by_spec=False) == Decimal("2.40")  # half and half
    assert item_price(prices, 0, 0, spot_by_spec=True) == Decimal("1.20")  # no worker: as the spec asks
    assert item_price(prices, 0, 0, spot_by_spec=False) == Decimal("3.60")


@given(
    st.decimals(min_value=0, max_value=100, places=2),
    st.decimals(min_value=0, max_value=100, places=2),
    st.integers(min_value=0, max_value=1000),
    st.integers(min_value=0, max_value=1000),
    st.booleans(),
)
def test_an_item_price_lies_between_the_spot_and_on_demand_prices(
    on_demand: Decimal, spot: Decimal, spot_gpus: int, on_demand_gpus: int, spot_by_spec: bool
) -> None:
    price = item_price(Prices(on_demand, spot), spot_gpus, on_demand_gpus, spot_by_spec)
    assert min(spot, on_demand) <= price <= max(spot, on_demand)


def test_gpus_are_counted_by_the_capacity_type_of_their_nodes() -> None:
    labels = {"spot-1": {"karpenter.sh/capacity-type": "spot"}, "od-1": {}}
    pods = [
        PodView("w1", "worker", "Running", gpus=8, node="spot-1"),
        PodView("w2", "worker", "Running", gpus=4, node="od-1"),
        PodView("w3", "worker", "Running", gpus=2, node="od-1", deleting=True),  # leaving
        PodView("w4", "worker", "Pending", gpus=2),  # not running yet
        PodView("head", "head", "Running", gpus=1, node="od-1"),  # not a worker
    ]
    assert gpus_by_capacity(pods, labels) == (8, 4)


def test_limits_are_read_for_the_cluster_and_each_tenant() -> None:
    spec = cluster(budget={"daily": "10.00", "tenants": [{"name": "a", "weekly": "5.00"}]}, pricing=PRICING)
    budget = spec.budget
    limits, tenants = limits_of(budget)
    assert limits == Limits(Decimal("10.00"), None, None)
    assert tenants == {"a": Limits(None, Decimal("5.00"), None)}
    assert limits_of(None) == (Limits(), {})


def state(spent_hours: int, action: str = "BlockScaleUp", tenant_hours: int = 0) -> Any:
    usage = [Usage("p", 1, datetime(2026, 11, 22, 0, tzinfo=UTC), None, False)] if spent_hours else []
    now = datetime(2026, 11, 22, spent_hours, tzinfo=UTC) if spent_hours else NOW
    tenants = [TenantUsage("a", [(datetime(2026, 11, 22, 1, tzinfo=UTC), Decimal(tenant_hours * 3600))])]
    return evaluate(
        usage,
        Prices(Decimal("1.00"), Decimal("1.00")),
        Limits(daily=Decimal("10.00")),
        {"a": Limits(daily=Decimal("2.00"))},
        tenants,
        Decimal("1.00"),
        50,
        action,
        ZoneInfo("UTC"),
        now,
    )


def test_budget_conditions_say_warning_and_exceeded_with_what_happens() -> None:
    spec = cluster(budget={"daily": "10.00", "alertThresholdPercent": 50}, pricing=PRICING)
    quiet = {c.type: c for c in budget_conditions(state(1), spec)}
    assert (quiet["BudgetWarning"].status, quiet["BudgetExceeded"].reason) == ("False", "WithinBudget")
    warned = {c.type: c for c in budget_conditions(state(6), spec)}
    assert warned["BudgetWarning"].status == "True" and warned["BudgetWarning"].reason == "DailyAboveThreshold"
    spent = {c.type: c for c in budget_conditions(state(11, "Suspend"), spec)}
    assert (
        spent["BudgetExceeded"].reason == "DailyLimitReached"
        and "onExceeded: Suspend" in spent["BudgetExceeded"].message
    )
    tenant = {c.type: c for c in budget_conditions(state(1, tenant_hours=3), spec)}
    assert tenant["BudgetExceeded"].reason == "TenantLimit" and "a" in tenant["BudgetExceeded"].message
    assert budget_conditions(state(1), cluster(pricing=PRICING)) == []  # no budget, no conditions
