"""The scaling policy: examples for each rule, and hypothesis properties over arbitrary states."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.desired.budget import BudgetState, WindowSpend
from portalis.desired.podview import PodView
from portalis.desired.scaling import (
    History,
    ScalingPolicy,
    Worker,
    backlog_needs_a_look,
    busy_pods,
    choose_idle,
    decide,
    decide_for_cluster,
    figures_seconds,
    policy_from_spec,
    wanted_workers,
)

POLICY = ScalingPolicy(min_workers=1, max_workers=8, target_items_per_worker=50, scale_down_stabilization_seconds=60)


def idle(n: int, prefix: str = "w") -> list[Worker]:
    return [Worker(f"{prefix}{i}", busy=False, created=float(i)) for i in range(n)]


def test_wanted_is_ceil_of_backlog_over_target_clamped() -> None:
    assert wanted_workers(0, POLICY) == 1
    assert wanted_workers(1, POLICY) == 1
    assert wanted_workers(51, POLICY) == 2
    assert wanted_workers(500, POLICY) == 8
    assert wanted_workers(10_000, POLICY) == 8


def test_scale_up_is_immediate_without_up_stabilization() -> None:
    d = decide(POLICY, 1, 500, idle(1), History(), now=0)
    assert (d.replicas, d.reason) == (8, "QueueBacklog")
    assert "scaled up from 1 to 8" in d.message


def test_scale_up_stabilization_waits_for_a_sustained_backlog() -> None:
    policy = ScalingPolicy(1, 8, 50, scale_up_stabilization_seconds=10, scale_down_stabilization_seconds=60)
    h = History()
    assert decide(policy, 1, 0, idle(1), h, now=0).replicas == 1
    assert decide(policy, 1, 500, idle(1), h, now=5).replicas == 1  # the low sample at t=0 is still in the window
    assert decide(policy, 1, 500, idle(1), h, now=11).replicas == 8


def test_step_limits() -> None:
    policy = ScalingPolicy(0, 8, 50, scale_down_stabilization_seconds=0, max_step_up=2, max_step_down=1)
    assert decide(policy, 1, 500, idle(1), History(), now=0).replicas == 3
    d = decide(policy, 6, 0, idle(6), History(), now=0)
    assert d.replicas == 5 and len(d.workers_to_delete) == 1


def test_scale_down_only_after_the_idle_window_and_never_a_busy_worker() -> None:
    h = History()
    workers = [*idle(7), Worker("busy-one", busy=True, created=99)]
    assert decide(POLICY, 8, 500, workers, h, now=0).replicas == 8
    assert decide(POLICY, 8, 0, workers, h, now=30).replicas == 8  # 500 at t=0 is within the 60 s window
    d = decide(POLICY, 8, 0, workers, h, now=61)
    assert d.replicas == 1 and d.reason == "QueueDrained"
    assert "busy-one" not in d.workers_to_delete
    assert len(d.workers_to_delete) == 7


def test_busy_workers_hold_a_scale_down() -> None:
    workers = [Worker(f"b{i}", busy=True) for i in range(4)]
    d = decide(ScalingPolicy(0, 8, 50, scale_down_stabilization_seconds=0), 4, 0, workers, History(), now=0)
    assert (d.replicas, d.workers_to_delete, d.reason, d.settled) == (4, (), "WorkersBusy", False)
    mixed = [Worker("b0", busy=True), Worker("i0", busy=False), Worker("i1", busy=False)]
    d = decide(ScalingPolicy(0, 8, 50, scale_down_stabilization_seconds=0), 3, 0, mixed, History(), now=0)
    assert d.replicas == 1 and set(d.workers_to_delete) == {"i0", "i1"}
    assert "1 busy workers kept" in d.message


def test_scale_to_zero_and_wake_from_zero() -> None:
    policy = ScalingPolicy(0, 4, 10, scale_down_stabilization_seconds=0)
    d = decide(policy, 2, 0, idle(2), History(), now=0)
    assert d.replicas == 0 and "scaled to zero" in d.message
    d = decide(policy, 0, 3, [], History(), now=1)
    assert d.replicas == 1 and "woke from zero" in d.message


def test_replicas_without_pods_go_first() -> None:
    d = decide(ScalingPolicy(0, 8, 50, scale_down_stabilization_seconds=0), 5, 0, idle(3), History(), now=0)
    assert d.replicas == 0 and len(d.workers_to_delete) == 3


def test_budget_hook_blocks_scale_up_but_not_scale_down() -> None:
    d = decide(POLICY, 1, 500, idle(1), History(), now=0, budget_allows_scale_up=False)
    assert (d.replicas, d.reason, d.budget_blocked) == (1, "BudgetBlocked", True)
    policy = ScalingPolicy(0, 8, 50, scale_down_stabilization_seconds=0)
    d = decide(policy, 3, 0, idle(3), History(), now=0, budget_allows_scale_up=False)
    assert d.replicas == 0


def test_changed_bounds_apply_at_once() -> None:
    d = decide(ScalingPolicy(3, 8), 1, 0, idle(1), History(), now=0)
    assert (d.replicas, d.reason) == (3, "BoundsChanged")
    d = decide(ScalingPolicy(0, 2), 4, 0, [*idle(1), *[Worker(f"b{i}", busy=True) for i in range(3)]], History(), 0)
    assert d.replicas == 2 and "w0" in d.workers_to_delete and len(d.workers_to_delete) == 2


def test_autoscaling_disabled_runs_min_workers_whatever_the_backlog() -> None:
    policy = ScalingPolicy(2, 8, enabled=False)
    assert decide(policy, 2, 10_000, idle(2), History(), now=0).replicas == 2
    up = decide(policy, 1, 0, idle(1), History(), now=0)  # minWorkers raised
    assert (up.replicas, up.workers_to_delete, up.reason) == (2, (), "AutoscalingDisabled")


def test_autoscaling_disabled_and_min_workers_lowered_scales_down_idle_workers_first() -> None:
    # a cluster raised by hand to 3 and set back to 1 shrinks at once, not when an autoscaler would
    workers = [Worker("busy", busy=True, created=9.0), *idle(2)]
    d = decide(ScalingPolicy(1, 8, enabled=False), 3, 50, workers, History(), now=0)
    assert d.replicas == 1 and sorted(d.workers_to_delete) == ["w0", "w1"]
    assert d.changed(3) and "scaled down to 1" in d.message


def test_choose_idle_prefers_unready_then_newest() -> None:
    workers = [Worker("old", False, True, 1), Worker("new", False, True, 5), Worker("starting", False, False, 2)]
    assert choose_idle(workers, 2) == ["starting", "new"]


def test_oscillating_backlog_scales_no_more_than_the_windows_allow() -> None:
    policy = ScalingPolicy(1, 8, 50, scale_up_stabilization_seconds=5, scale_down_stabilization_seconds=30)
    h = History()
    current, changes = 1, 0
    for step in range(600):  # 10 minutes at 1 s, backlog flapping around the 1-worker threshold
        backlog = 60 if step % 2 else 40
        d = decide(policy, current, backlog, idle(current), h, now=float(step))
        if d.replicas != current:
            changes += 1
            current = d.replicas
    assert changes == 0  # a flap every second never survives a 5 s up-window


# ---- properties ----------------------------------------------------------------------------------------

policies = st.builds(
    lambda lo, span, target, up, down, su, sd: ScalingPolicy(lo, lo + span, target, up, down, su, sd),
    st.integers(0, 5),
    st.integers(0, 10),
    st.integers(1, 100),
    st.sampled_from([0.0, 5.0, 30.0]),
    st.sampled_from([0.0, 30.0, 300.0]),
    st.one_of(st.none(), st.integers(1, 4)),
    st.one_of(st.none(), st.integers(1, 4)),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[ScalingPolicy, int, list[Worker], list[tuple[float, int]], bool]:
    policy = draw(policies)
    current = draw(st.integers(policy.min_workers, policy.max_workers))
    busy_flags = draw(st.lists(st.booleans(), min_size=0, max_size=current))
    workers = [Worker(f"w{i}", busy=b, created=float(i)) for i, b in enumerate(busy_flags)]
    steps = draw(st.lists(st.tuples(st.floats(0, 100), st.integers(0, 2000)), min_size=1, max_size=12))
    return policy, current, workers, steps, draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_property_never_outside_bounds_and_never_removes_a_busy_worker(
    case: tuple[ScalingPolicy, int, list[Worker], list[tuple[float, int]], bool],
) -> None:
    policy, current, workers, steps, budget = case
    h = History()
    now = 0.0
    for dt, backlog in steps:
        now += dt
        d = decide(policy, current, backlog, workers, h, now, budget_allows_scale_up=budget)
        assert policy.min_workers <= d.replicas <= policy.max_workers
        busy = {w.name for w in workers if w.busy}
        assert not busy & set(d.workers_to_delete)
        if d.replicas < current:
            assert current - d.replicas >= len(d.workers_to_delete)
        else:
            assert d.workers_to_delete == ()
        if not budget:
            assert d.replicas <= current
        # apply the decision: named workers leave, new ones start idle
        kept = [w for w in workers if w.name not in d.workers_to_delete][: d.replicas]
        workers = kept + [Worker(f"n{now}-{i}", busy=False, created=now) for i in range(d.replicas - len(kept))]
        current = d.replicas


@settings(max_examples=300, deadline=None)
@given(policies, st.integers(0, 10), st.integers(0, 5000), st.integers(0, 5000))
def test_property_monotone_in_backlog(policy: ScalingPolicy, current: int, a: int, b: int) -> None:
    current = max(policy.min_workers, min(policy.max_workers, current))
    low, high = sorted((a, b))
    d_low = decide(policy, current, low, idle(current), History(), now=0)
    d_high = decide(policy, current, high, idle(current), History(), now=0)
    assert d_low.replicas <= d_high.replicas
    assert wanted_workers(low, policy) <= wanted_workers(high, policy)


def test_a_backlog_move_is_looked_at_at_once_only_when_it_moves_the_target() -> None:
    policy = ScalingPolicy(min_workers=1, max_workers=8, target_items_per_worker=10)
    assert backlog_needs_a_look(policy, None, 5, 0.0, 5.0)  # never looked at
    assert not backlog_needs_a_look(policy, 35, 35, 60.0, 5.0)  # unchanged
    assert backlog_needs_a_look(policy, 35, 41, 0.1, 5.0)  # 4 -> 5 workers wanted
    assert not backlog_needs_a_look(policy, 35, 38, 0.1, 5.0)  # still 4: only the figures moved
    assert backlog_needs_a_look(policy, 35, 38, 5.0, 5.0)  # ... and they are written every 5 s
    assert backlog_needs_a_look(policy, 1, 0, 0.1, 5.0)  # the queue emptied
    assert backlog_needs_a_look(policy, 0, 1, 0.1, 5.0)  # work arrived
    assert not backlog_needs_a_look(policy, 500, 900, 0.1, 5.0)  # past maxWorkers either way


def test_figure_writes_stretch_with_the_fleet_to_stay_within_ten_a_second() -> None:
    assert figures_seconds(0) == figures_seconds(1) == figures_seconds(50) == 5.0
    assert figures_seconds(100) == 10.0  # 100 clusters, each every 10 s: 10 writes a second
    assert figures_seconds(1000) == 100.0


@given(st.integers(min_value=0, max_value=100_000))
def test_figure_writes_never_exceed_the_fleet_rate_nor_come_faster_than_every_5_s(clusters: int) -> None:
    every = figures_seconds(clusters)
    assert every >= 5.0 and clusters / every <= 10.0


def test_without_autoscaling_only_figures_and_empty_queues_bring_a_look() -> None:
    policy = ScalingPolicy(min_workers=1, max_workers=8, target_items_per_worker=10, enabled=False)
    assert not backlog_needs_a_look(policy, 5, 95, 0.1, 5.0)
    assert backlog_needs_a_look(policy, 5, 0, 0.1, 5.0)
    assert backlog_needs_a_look(policy, 5, 95, 6.0, 5.0)


@given(
    st.integers(0, 5),
    st.integers(1, 20),
    st.integers(1, 50),
    st.integers(0, 2000),
    st.integers(0, 2000),
)
def test_property_a_skipped_move_never_changes_what_the_scaler_wants(
    lo: int, span: int, target: int, seen: int, backlog: int
) -> None:
    policy = ScalingPolicy(min_workers=lo, max_workers=lo + span, target_items_per_worker=target)
    if not backlog_needs_a_look(policy, seen, backlog, 0.0, 5.0):
        assert wanted_workers(seen, policy) == wanted_workers(backlog, policy)
        assert (seen == 0) == (backlog == 0)


def tc_spec(**spec: Any) -> TranslationClusterSpec:
    return TranslationClusterSpec.model_validate(
        {
            "queue": {"url": "redis://r:6379/0"},
            "storage": {"bucket": "artifacts"},
            "workers": {"minWorkers": 1, "maxWorkers": 4},
            "autoscaling": {"targetItemsPerWorker": 10},
            **spec,
        }
    )


def test_busy_pods_are_those_with_a_translator_holding_an_item() -> None:
    beats = {"w1/0": {"state": "busy"}, "w1/1": {"state": "idle"}, "w2": {"state": "idle"}, "gone/0": {"state": "busy"}}
    assert busy_pods(beats, ["w1", "w2"]) == {"w1"}  # a pod no longer there does not count


def test_a_cluster_scales_as_its_spec_and_budget_say() -> None:
    pods = [PodView("w1", "worker", "Running", ready=True), PodView("w2", "worker", "Running", ready=True)]
    up = decide_for_cluster(tc_spec(), 2, 35, pods, {"w1"}, History(), 0.0, None)
    assert up.replicas == 4 and up.reason == "QueueBacklog"
    suspended = decide_for_cluster(tc_spec(suspend=True), 2, 35, pods, set(), History(), 0.0, None)
    assert (suspended.replicas, suspended.reason) == (2, "Suspended")
    assert policy_from_spec(tc_spec(suspend=True)).enabled is False


def test_a_spent_budget_under_suspend_removes_every_worker() -> None:
    spec = tc_spec(budget={"daily": "1.00", "onExceeded": "Suspend"}, pricing={"onDemandGpuHour": "3.60"})
    spent = BudgetState(
        (WindowSpend("daily", datetime(2026, 1, 1, tzinfo=UTC), Decimal(2), Decimal(1)),), {}, 80, "Suspend"
    )
    pods = [PodView("w2", "worker", "Running"), PodView("w1", "worker", "Running")]
    decision = decide_for_cluster(spec, 2, 35, pods, {"w1"}, History(), 0.0, spent)
    assert (decision.replicas, decision.workers_to_delete, decision.reason) == (0, ("w1", "w2"), "BudgetExceeded")
    blocked = BudgetState(spent.windows, {}, 80, "BlockScaleUp")
    held = decide_for_cluster(tc_spec(pricing={"onDemandGpuHour": "3.60"}), 2, 35, pods, set(), History(), 0.0, blocked)
    assert (held.replicas, held.reason) == (2, "BudgetBlocked")
