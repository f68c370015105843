"""What a look at a job does to its cluster's queue, as pure functions of what it observed.

The job controller reads the job's counters in Redis and its status, asks ``queue_action`` what to do (queue the
plan, hold or resume it, finish queueing it after a crash, rebuild it after the queue lost it, or nothing),
does it, and asks ``stall`` whether a job without progress has items missing from the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from portalis.api.meta import Key
from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.api.v1alpha1.job import TranslationJobSpec
from portalis.desired.conditions import is_true
from portalis.desired.job_paths import tenant_of
from portalis.desired.job_status import Problem, budget_exceeded, tenants_over_budget

STALL_SECONDS = 60.0  # a running job with nothing in flight and no item finished this long is missing items


class QueueAction(StrEnum):
    NONE = "none"
    HOLD = "hold"  # remove the job's waiting items (suspended, or the budget holds it); items in flight finish
    QUEUE = "queue"  # queue the whole plan: never queued before
    QUEUE_REST = "queue-rest"  # queue the rest of the plan: a look that queued part of it ended early
    REBUILD = "rebuild"  # the queue lost the job: outputs in S3 count as done, the rest is queued again
    RESUME = "resume"  # put back whatever of a held job is neither done, failed nor queued


@dataclass(frozen=True)
class QueueState:
    """The job as its counters in Redis and its status show it."""

    epoch_present: bool  # the queue knows the job (set when it was first queued; gone when the queue was lost)
    enqueued: int  # plan items queued so far
    started: bool  # status.startTime is set: the job ran before
    was_held: bool  # its status says it is held (Suspended, or BudgetHeld)


def queue_state(status: dict[str, Any], epoch_present: bool, enqueued: int) -> QueueState:
    was_held = status.get("phase") == "Suspended" or is_true(status.get("conditions"), "BudgetHeld")
    return QueueState(epoch_present, enqueued, bool(status.get("startTime")), was_held)


def queue_action(state: QueueState, holding: bool, queueable: int) -> QueueAction:
    """What to do to the queue for a job whose plan has ``queueable`` items to queue, ``holding`` when
    spec.suspend or the budget holds it."""
    if holding:
        return QueueAction.HOLD if not state.was_held and (state.started or state.epoch_present) else QueueAction.NONE
    if not state.epoch_present and not state.started:
        return QueueAction.QUEUE
    if state.epoch_present and state.enqueued < queueable and not state.was_held:
        return QueueAction.QUEUE_REST
    if not state.epoch_present:
        return QueueAction.REBUILD
    if state.was_held:
        return QueueAction.RESUME
    return QueueAction.NONE


def budget_hold(
    key: Key,
    spec: TranslationJobSpec,
    cluster: Key,
    tc: TranslationClusterSpec,
    cluster_status: dict[str, Any],
    spent: Decimal,
    started: bool,
) -> Problem | None:
    """Why the budget holds this job's queued items, if it does: its own maxCost, or its cluster's or tenant's
    budget as the cluster's status says (under onExceeded Suspend, or BlockScaleUp for a job not started)."""
    if spec.max_cost is not None and spent >= Decimal(spec.max_cost):
        message = f"The job has spent {spent} of its maxCost {spec.max_cost}; raise spec.maxCost to go on."
        return Problem("MaxCostReached", message, False)
    if tc.budget is None:
        return None
    action = str(tc.budget.on_exceeded)
    if action == "Alert":
        return None
    exceeded = budget_exceeded(cluster_status)
    tenant = tenant_of(key, spec)
    tenant_over = tenant in tenants_over_budget(cluster_status)
    cluster_over = bool(exceeded and exceeded.get("status") == "True" and exceeded.get("reason") != "TenantLimit")
    if not (cluster_over or tenant_over):
        return None
    if tenant_over and not cluster_over:
        whose = f"tenant {tenant}'s budget"
    else:
        whose = f"cluster {cluster[0]}/{cluster[1]}'s budget"
    if action == "Suspend":
        return Problem(
            "BudgetExceeded",
            f"The {whose} is spent (onExceeded: Suspend); the job resumes when the "
            "window rolls over or the limit is raised.",
            False,
        )
    if not started:  # BlockScaleUp: running work finishes, new jobs wait
        return Problem(
            "BudgetExceeded",
            f"The {whose} is spent (onExceeded: BlockScaleUp); the job starts when "
            "the window rolls over or the limit is raised.",
            False,
        )
    return None


Progress = tuple[float, int]  # (when, items finished then)


def stall(last: Progress | None, finished: int, now: float) -> tuple[Progress, bool]:
    """Whether a job has had no item finished for STALL_SECONDS, given when its count last moved: returns the
    mark to keep and the verdict (a stall found starts a new mark, so it is reported once per period)."""
    if last is None or last[1] != finished:
        return (now, finished), False
    if now - last[0] >= STALL_SECONDS:
        return (now, finished), True
    return last, False


def too_large_reason(size_bytes: int) -> str:
    return f"too large: larger than the {size_bytes / 1024 / 1024:.0f} MB file, over the 10 MB limit"
