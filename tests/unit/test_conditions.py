from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portalis.desired.conditions import FALSE, TRUE, ConditionUpdate, compute_conditions, is_true

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_transition_time_changes_only_when_status_changes() -> None:
    first = compute_conditions([], [ConditionUpdate("Ready", FALSE, "HeadNotReady", "waiting")], 1, T0)
    same = compute_conditions(first, [ConditionUpdate("Ready", FALSE, "HeadNotReady", "still")], 2, T0 + timedelta(60))
    assert same[0]["lastTransitionTime"] == first[0]["lastTransitionTime"] == "2026-11-22T12:00:00Z"
    assert same[0]["observedGeneration"] == 2
    assert same[0]["message"] == "still"
    flipped = compute_conditions(same, [ConditionUpdate("Ready", TRUE, "Ready", "")], 2, T0 + timedelta(seconds=5))
    assert flipped[0]["lastTransitionTime"] == "2026-11-22T12:00:05Z"
    assert is_true(flipped, "Ready")
    assert not is_true(flipped, "Degraded")


def test_untouched_conditions_are_kept() -> None:
    base = compute_conditions([], [ConditionUpdate("A", TRUE, "X"), ConditionUpdate("B", TRUE, "Y")], 1, T0)
    out = compute_conditions(base, [ConditionUpdate("B", FALSE, "Z")], 1, T0)
    assert [c["type"] for c in out] == ["B", "A"]
    assert out[1] == base[0]
