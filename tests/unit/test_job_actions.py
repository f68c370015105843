"""What a look at a job does to its cluster's queue (desired.job_actions): pure functions, no cluster."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.api.v1alpha1.job import TranslationJobSpec
from portalis.desired.job_actions import (
    STALL_SECONDS,
    QueueAction,
    QueueState,
    budget_hold,
    queue_action,
    queue_state,
    stall,
    too_large_reason,
)

JOB = ("team-a", "j")
CLUSTER = ("ml", "gpu")


def state(epoch: bool = True, enqueued: int = 10, started: bool = True, held: bool = False) -> QueueState:
    return QueueState(epoch_present=epoch, enqueued=enqueued, started=started, was_held=held)


@pytest.mark.parametrize(
    ("queue", "holding", "queueable", "action"),
    [
        (state(epoch=False, enqueued=0, started=False), False, 10, QueueAction.QUEUE),  # never queued
        (state(enqueued=4), False, 10, QueueAction.QUEUE_REST),  # a look that queued part of it ended early
        (state(epoch=False, enqueued=0), False, 10, QueueAction.REBUILD),  # it ran, and the queue lost it
        (state(held=True), False, 10, QueueAction.RESUME),  # held, and no longer
        (state(), False, 10, QueueAction.NONE),  # running, every item queued
        (state(), True, 10, QueueAction.HOLD),  # suspended or over budget now
        (state(epoch=True, started=False), True, 10, QueueAction.HOLD),  # queued, not yet started
        (state(held=True), True, 10, QueueAction.NONE),  # held already
        (state(epoch=False, enqueued=0, started=False), True, 10, QueueAction.NONE),  # held before it was queued
        (state(enqueued=4, held=True), False, 10, QueueAction.RESUME),  # resuming puts back all that is missing
    ],
)
def test_the_queue_action_for_each_state_of_a_job(
    queue: QueueState, holding: bool, queueable: int, action: QueueAction
) -> None:
    assert queue_action(queue, holding, queueable) == action


def test_the_queue_state_reads_the_status_and_the_counters() -> None:
    held = {"phase": "Pending", "conditions": [{"type": "BudgetHeld", "status": "True"}], "startTime": "t"}
    assert queue_state(held, True, 3) == QueueState(True, 3, True, True)
    assert queue_state({"phase": "Suspended"}, False, 0) == QueueState(False, 0, False, True)
    assert queue_state({"phase": "Running"}, True, 5) == QueueState(True, 5, False, False)


def test_a_stall_is_reported_once_a_period_without_progress() -> None:
    mark, stalled = stall(None, 3, 100.0)
    assert (mark, stalled) == ((100.0, 3), False)
    assert stall(mark, 3, 100.0 + STALL_SECONDS - 1) == (mark, False)
    mark, stalled = stall(mark, 3, 100.0 + STALL_SECONDS)
    assert stalled and mark == (100.0 + STALL_SECONDS, 3)  # a new period starts
    assert stall(mark, 4, 200.0) == ((200.0, 4), False)  # progress resets it


def test_a_file_too_large_is_failed_with_its_size() -> None:
    assert too_large_reason(12 * 1024 * 1024) == "too large: larger than the 12 MB file, over the 10 MB limit"


def job(**spec: Any) -> TranslationJobSpec:
    return TranslationJobSpec.model_validate({"clusterRef": {"name": "gpu"}, "source": {"bucket": "sources"}, **spec})


def cluster(on_exceeded: str | None) -> TranslationClusterSpec:
    spec: dict[str, Any] = {"queue": {"url": "redis://r:6379/0"}, "storage": {"bucket": "artifacts"}}
    if on_exceeded is not None:
        spec["budget"] = {"daily": "10.00", "onExceeded": on_exceeded}
        spec["pricing"] = {"onDemandGpuHour": "3.60"}
    return TranslationClusterSpec.model_validate(spec)


def over(reason: str = "DailyLimitReached", tenants: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "conditions": [{"type": "BudgetExceeded", "status": "True", "reason": reason}],
        "budget": {"tenants": tenants or []},
    }


def test_a_job_past_its_max_cost_is_held_whatever_its_cluster() -> None:
    held = budget_hold(JOB, job(maxCost="1.00"), CLUSTER, cluster(None), {}, Decimal("1.00"), True)
    assert held is not None and held.reason == "MaxCostReached" and "raise spec.maxCost" in held.message
    assert budget_hold(JOB, job(maxCost="1.00"), CLUSTER, cluster(None), {}, Decimal("0.99"), True) is None


def test_a_spent_cluster_budget_holds_jobs_as_on_exceeded_says() -> None:
    spent = Decimal(0)
    suspended = budget_hold(JOB, job(), CLUSTER, cluster("Suspend"), over(), spent, True)
    assert suspended is not None and "cluster ml/gpu's budget" in suspended.message and "Suspend" in suspended.message
    blocked = budget_hold(JOB, job(), CLUSTER, cluster("BlockScaleUp"), over(), spent, False)
    assert blocked is not None and "BlockScaleUp" in blocked.message  # a new job waits
    assert budget_hold(JOB, job(), CLUSTER, cluster("BlockScaleUp"), over(), spent, True) is None  # running work ends
    assert budget_hold(JOB, job(), CLUSTER, cluster("Alert"), over(), spent, True) is None
    assert budget_hold(JOB, job(), CLUSTER, cluster("Suspend"), {}, spent, True) is None  # within budget


def test_a_tenant_over_its_limit_holds_only_its_own_jobs() -> None:
    tenants = [{"name": "team-a", "daily": {"limit": "5.00", "percent": 100}}]
    status = over("TenantLimit", tenants)
    held = budget_hold(JOB, job(), CLUSTER, cluster("Suspend"), status, Decimal(0), True)
    assert held is not None and "tenant team-a's budget" in held.message
    other = budget_hold(JOB, job(tenant="team-b"), CLUSTER, cluster("Suspend"), status, Decimal(0), True)
    assert other is None
