"""Budget windows and the ledger: examples across DST and month ends, and hypothesis properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from portalis.desired.budget import (
    Limits,
    Prices,
    TenantUsage,
    Usage,
    cents,
    evaluate,
    gpu_seconds,
    is_spot_node,
    percent,
    spend,
    window_bounds,
)

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
PRICES = Prices(on_demand=Decimal("3.60"), spot=Decimal("1.20"))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_daily_window_starts_at_local_midnight_across_dst() -> None:
    # 2026-03-08 is the spring-forward day in New York: 23 hours long
    lo, hi = window_bounds("daily", utc(2026, 3, 8, 12), NY)
    assert lo == utc(2026, 3, 8, 5) and hi == utc(2026, 3, 9, 4)
    assert hi - lo == timedelta(hours=23)
    # 2026-11-01 falls back: 25 hours long
    lo, hi = window_bounds("daily", utc(2026, 11, 1, 12), NY)
    assert hi - lo == timedelta(hours=25)


def test_weekly_window_starts_monday_and_monthly_at_the_first() -> None:
    lo, hi = window_bounds("weekly", utc(2026, 11, 22, 10), BERLIN)  # a Sunday
    assert lo == utc(2026, 11, 15, 23) and hi == utc(2026, 11, 22, 23)
    assert lo.astimezone(BERLIN).weekday() == 0
    lo, hi = window_bounds("monthly", utc(2026, 12, 31, 23, 30), BERLIN)  # already January in Berlin
    assert lo == utc(2026, 12, 31, 23) and hi == utc(2027, 1, 31, 23)
    lo, hi = window_bounds("monthly", utc(2026, 2, 10), ZoneInfo("UTC"))
    assert (lo, hi) == (utc(2026, 2, 1), utc(2026, 3, 1))


def test_spend_is_gpus_times_time_times_price() -> None:
    u = Usage("p", 2, utc(2026, 11, 22, 10), utc(2026, 11, 22, 11, 30), spot=False)
    assert spend([u], PRICES, utc(2026, 11, 22), utc(2026, 11, 23), utc(2026, 11, 22, 12)) == Decimal("10.80")
    spot = Usage("s", 1, utc(2026, 11, 22, 10), None, spot=True)
    assert spend([spot], PRICES, utc(2026, 11, 22), utc(2026, 11, 23), utc(2026, 11, 22, 12)) == Decimal("2.40")
    assert gpu_seconds([u, spot], utc(2026, 11, 22), utc(2026, 11, 23), utc(2026, 11, 22, 12)) == 3 * 3600 + 7200


def test_a_pod_crossing_midnight_is_split_between_days() -> None:
    u = Usage("p", 1, utc(2026, 11, 21, 23), utc(2026, 11, 22, 1), spot=False)
    today = spend([u], PRICES, utc(2026, 11, 22), utc(2026, 11, 23), utc(2026, 11, 22, 2))
    yesterday = spend([u], PRICES, utc(2026, 11, 21), utc(2026, 11, 22), utc(2026, 11, 22, 2))
    assert today == yesterday == Decimal("3.60")


def test_percent_and_cents() -> None:
    assert percent(Decimal("79.99"), Decimal("100")) == 79
    assert percent(Decimal("100"), Decimal("100")) == 100
    assert percent(Decimal("5"), None) == 0
    assert cents(Decimal("1.005")) == "1.01"


def test_spot_labels() -> None:
    assert is_spot_node({"karpenter.sh/capacity-type": "spot"})
    assert is_spot_node({"eks.amazonaws.com/capacityType": "SPOT"})
    assert not is_spot_node({"karpenter.sh/capacity-type": "on-demand"})


def test_evaluate_warns_then_exceeds_and_reports_tenants() -> None:
    now = utc(2026, 11, 22, 12)
    usage = [Usage("p", 1, utc(2026, 11, 22, 0), None, spot=False)]  # 12 GPU-hours today: 43.20
    tenants = [TenantUsage("team-a", [(utc(2026, 11, 22, 9), Decimal(3600 * 5))])]  # 5 GPU-hours: 18.00
    state = evaluate(
        usage,
        PRICES,
        Limits(daily=Decimal("50")),
        {"team-a": Limits(daily=Decimal("10"))},
        tenants,
        PRICES.on_demand,
        80,
        "BlockScaleUp",
        ZoneInfo("UTC"),
        now,
    )
    assert state.warning and not state.exceeded
    assert state.worst is not None and state.worst.percent == 86
    assert state.tenant_exceeded("team-a") is not None and state.tenant_exceeded("team-b") is None
    later = evaluate(
        usage,
        PRICES,
        Limits(daily=Decimal("50")),
        {},
        [],
        PRICES.on_demand,
        80,
        "BlockScaleUp",
        ZoneInfo("UTC"),
        utc(2026, 11, 22, 14),
    )
    assert later.exceeded and later.blocks_scale_up and not later.suspends


# ---- properties ----------------------------------------------------------------------------------------

ZONES = st.sampled_from(["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"])
START = utc(2026, 1, 1)


@st.composite
def timelines(draw: st.DrawFn) -> list[Usage]:
    out = []
    for i in range(draw(st.integers(0, 12))):
        start = START + timedelta(seconds=draw(st.integers(0, 400 * 86400)))
        length = draw(st.one_of(st.none(), st.integers(1, 40 * 86400)))
        end = None if length is None else start + timedelta(seconds=length)
        out.append(Usage(f"p{i}", draw(st.integers(1, 8)), start, end, draw(st.booleans())))
    return out


@settings(max_examples=200, deadline=None)
@given(timelines(), ZONES, st.sampled_from(["daily", "weekly", "monthly"]))
def test_property_windows_partition_time_so_spend_adds_up(usages: list[Usage], zone: str, kind: str) -> None:
    """Spend summed over consecutive windows equals spend over their union, whatever the timezone (DST included)."""
    tz = ZoneInfo(zone)
    now = START + timedelta(days=420)
    lo, _ = window_bounds(kind, START, tz)
    total_by_windows = Decimal(0)
    cursor = lo
    while cursor < now:
        w_lo, w_hi = window_bounds(kind, cursor, tz)
        assert w_lo == cursor and w_hi > w_lo
        total_by_windows += spend(usages, PRICES, w_lo, w_hi, now)
        cursor = w_hi
    assert abs(total_by_windows - spend(usages, PRICES, lo, cursor, now)) < Decimal("1e-12")


@settings(max_examples=200, deadline=None)
@given(timelines())
def test_property_ledger_equals_the_sum_of_pod_gpu_seconds_times_price(usages: list[Usage]) -> None:
    now = START + timedelta(days=420)
    lo, hi = START - timedelta(days=1), now
    expected = Decimal(0)
    for u in usages:
        seconds = Decimal((min(u.end or now, now) - min(u.start, now)).total_seconds())
        expected += u.gpus * seconds * (PRICES.spot if u.spot else PRICES.on_demand) / 3600
    assert abs(spend(usages, PRICES, lo, hi, now) - expected) < Decimal("1e-12")


@settings(max_examples=100, deadline=None)
@given(timelines(), st.randoms())
def test_property_recomputing_from_scratch_gives_the_same_totals(usages: list[Usage], rnd: object) -> None:
    now = START + timedelta(days=100)
    shuffled = list(usages)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a = evaluate(
        usages,
        PRICES,
        Limits(Decimal(100), Decimal(500), Decimal(2000)),
        {},
        [],
        PRICES.on_demand,
        80,
        "Alert",
        NY,
        now,
    )
    b = evaluate(
        shuffled,
        PRICES,
        Limits(Decimal(100), Decimal(500), Decimal(2000)),
        {},
        [],
        PRICES.on_demand,
        80,
        "Alert",
        NY,
        now,
    )
    assert [w.spent for w in a.windows] == [w.spent for w in b.windows]
