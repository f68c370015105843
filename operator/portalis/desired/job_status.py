"""TranslationJob status as a pure function of what was observed (cluster, plan, queue counters, clock).

The controller gathers a ``JobObservation``; ``compute_job_status`` turns it into the status to write, and
``job_finished`` says whether the job has reached a terminal state. Money is ``Decimal``, never float.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from portalis.api.meta import format_time
from portalis.api.v1alpha1.job import CountAsFailed, Outcome, TranslationJobSpec
from portalis.desired.budget import CENT
from portalis.desired.budget import cents as money
from portalis.desired.conditions import FALSE, TRUE, UNKNOWN, ConditionUpdate, compute_conditions

MAX_FAILED_ITEMS_IN_STATUS = 100


def cost_of(gpu_seconds: float, price_per_gpu_hour: Decimal) -> Decimal:
    return (Decimal(str(round(gpu_seconds, 3))) * price_per_gpu_hour / Decimal(3600)).quantize(
        CENT, rounding=ROUND_HALF_UP
    )


def allowed_failures(total: int, max_failed: int | str) -> int:
    """``maxFailedItems`` as a count: an int, or a percentage of the plan rounded down."""
    if isinstance(max_failed, int):
        return max_failed
    text = str(max_failed).strip()
    if text.endswith("%"):
        return math.floor(total * int(text[:-1]) / 100)
    return int(text)


@dataclass(frozen=True)
class Problem:
    """Why the job cannot go on (yet): a one-word reason and a message a person can act on."""

    reason: str
    message: str
    terminal: bool  # True: the job fails; False: it waits (Pending) until the cause is fixed


@dataclass(frozen=True)
class JobObservation:
    problem: Problem | None = None
    planned: bool = False
    total: int = 0
    done: int = 0
    failed: int = 0
    cached: int = 0
    compiles: int = 0  # of done: outputs the target's compiler accepted
    tokens: int = 0
    queued: int = 0
    in_flight: int = 0
    gpu_seconds: float = 0.0
    failed_items: dict[str, str] = field(default_factory=dict)  # path -> reason
    price_per_gpu_hour: Decimal = Decimal(0)
    rate_items_per_second: float | None = None
    plan_location: str | None = None
    output_location: str | None = None
    report_location: str | None = None
    finished: bool = False  # every item done or failed and the report is written
    budget_held: Problem | None = None
    created: datetime | None = None
    # items of the job wait in the cluster's queue and none is in flight: nothing changes until a worker begins
    # one or one finishes, and both are signalled through the queue's progress stream
    waiting_turn: bool = False


# how soon a job is looked at again (seconds), when no signal brings it back sooner
RUNNING_RESYNC_SECONDS = 5.0  # after a look that changed its status
MAX_RESYNC_SECONDS = 60.0  # backing off to this while it runs unchanged
WAITING_RESYNC_SECONDS = 30.0  # pending (on a problem or a budget) or suspended
WAITING_TURN_RESYNC_SECONDS = 300.0  # waiting its turn in the queue


def resync_seconds(phase: str | None, changed: bool, previous: float | None, waiting_turn: bool) -> float | None:
    """When to look at a job again without a signal (None: not until something about it changes), given its
    phase, whether this look changed its status, the interval chosen last time, and whether it waits its turn.

    Finished items and items begun by a worker bring a job back at once (the queue's progress stream), so the
    periodic look catches only what has no signal: a stall, a lost queue, items taken by workers that do not
    signal. It comes soon after a change and backs off while nothing changes; a job waiting its turn in a
    queue that still holds items is left to the signals, with a look every WAITING_TURN_RESYNC_SECONDS as a
    safety net (the cluster's queue emptying brings all its jobs back too)."""
    if phase in {"Succeeded", "Failed"}:
        return None
    if phase not in {"Running", "Planning"}:
        return WAITING_RESYNC_SECONDS
    if waiting_turn and phase == "Running":
        return WAITING_TURN_RESYNC_SECONDS
    if changed:
        return RUNNING_RESYNC_SECONDS
    return min((previous or RUNNING_RESYNC_SECONDS / 2) * 2, MAX_RESYNC_SECONDS)


def counted_failures(spec: TranslationJobSpec, obs: JobObservation) -> int:
    """The files that count against maxFailedItems: failed ones, and with ``spec.verify.countAsFailed:
    NotCompiling`` also those written that do not compile."""
    if spec.verify.enabled and spec.verify.count_as_failed == CountAsFailed.NOT_COMPILING:
        return obs.failed + max(obs.done - obs.compiles, 0)
    return obs.failed


def outcome_summary(spec: TranslationJobSpec, obs: JobObservation) -> str:
    """How the files ended, such as "40 of 55 files compile, 11 written do not compile, 4 failed"."""
    if not spec.verify.enabled:
        summary = f"{obs.done} of {obs.total} files translated (not checked: spec.verify.enabled is false)"
    else:
        summary = f"{obs.compiles} of {obs.total} files compile, {max(obs.done - obs.compiles, 0)} written do not"
    summary += f" ({obs.cached} from the cache)" if obs.cached else ""
    return summary + (f", {obs.failed} failed" if obs.failed else "")


def eta_seconds(remaining: int, rate: float | None) -> int | None:
    if remaining <= 0:
        return 0
    if not rate or rate <= 0:
        return None
    return math.ceil(remaining / rate)


def compute_job_status(
    spec: TranslationJobSpec,
    generation: int,
    existing: dict[str, Any],
    obs: JobObservation,
    now: datetime,
) -> dict[str, Any]:
    updates: list[ConditionUpdate] = []
    finished_items = obs.done + obs.failed
    remaining = max(obs.total - finished_items, 0)
    allowed = allowed_failures(obs.total, spec.max_failed_items)
    start = existing.get("startTime")
    completion = existing.get("completionTime")

    if obs.problem is not None and obs.problem.terminal:
        phase = "Failed"
        updates += [
            ConditionUpdate("Planned", FALSE, obs.problem.reason, obs.problem.message),
            ConditionUpdate("Running", FALSE, obs.problem.reason, ""),
            ConditionUpdate("Succeeded", FALSE, obs.problem.reason, ""),
            ConditionUpdate("Failed", TRUE, obs.problem.reason, obs.problem.message),
        ]
        completion = completion or format_time(now)
    elif obs.problem is not None:
        phase = "Pending"
        updates += [
            ConditionUpdate("Planned", FALSE, obs.problem.reason, obs.problem.message),
            ConditionUpdate("Running", FALSE, obs.problem.reason, ""),
        ]
    elif not obs.planned:
        phase = "Planning"
        updates.append(ConditionUpdate("Planned", UNKNOWN, "Planning", "Listing the source and writing the plan."))
    elif obs.finished:
        names = _failed_summary(obs.failed_items)
        counted = counted_failures(spec, obs)
        if counted > allowed:
            phase = "Failed"
            what = "failed" if counted == obs.failed else "failed or do not compile (spec.verify.countAsFailed)"
            msg = (
                f"{counted} of {obs.total} files {what}; maxFailedItems allows {allowed}: {outcome_summary(spec, obs)}"
            )
            msg += f": {names}" if names else ""
            updates += [
                ConditionUpdate("Running", FALSE, "ItemsFailed", ""),
                ConditionUpdate("Succeeded", FALSE, "ItemsFailed", ""),
                ConditionUpdate("Failed", TRUE, "ItemsFailed", msg),
            ]
        else:
            phase = "Succeeded"
            msg = outcome_summary(spec, obs)
            if counted:
                msg += f"; within maxFailedItems ({allowed})" + (f": {names}" if names else "")
            updates += [
                ConditionUpdate("Running", FALSE, "Completed", ""),
                ConditionUpdate("Succeeded", TRUE, "Completed", msg + "."),
                ConditionUpdate("Failed", FALSE, "Completed", ""),
            ]
        completion = completion or format_time(now)
    elif spec.suspend:
        phase = "Suspended"
        updates.append(ConditionUpdate("Running", FALSE, "Suspended", "spec.suspend is true: queued items are held."))
    elif obs.budget_held is not None:
        phase = "Pending"
        updates += [
            ConditionUpdate("Running", FALSE, obs.budget_held.reason, obs.budget_held.message),
            ConditionUpdate("BudgetHeld", TRUE, obs.budget_held.reason, obs.budget_held.message),
        ]
    else:
        phase = "Running"
        start = start or format_time(now)
        updates.append(
            ConditionUpdate(
                "Running",
                TRUE,
                "Translating",
                f"{finished_items} of {obs.total} files finished"
                + (f" ({obs.compiles} compile)" if spec.verify.enabled else "")
                + f", {obs.in_flight} in flight, {obs.queued} queued.",
            )
        )

    if obs.planned and obs.problem is None:
        updates.insert(0, ConditionUpdate("Planned", TRUE, "Planned", f"{obs.total} files planned."))
    if obs.planned and obs.problem is None and obs.budget_held is None and _has(existing, "BudgetHeld"):
        updates.append(ConditionUpdate("BudgetHeld", FALSE, "WithinBudget", ""))
    if spec.suspend or _has(existing, "Suspended"):
        updates.append(
            ConditionUpdate(
                "Suspended",
                TRUE if spec.suspend and phase == "Suspended" else FALSE,
                "Suspended" if spec.suspend else "Resumed",
                "",
            )
        )

    eta = None if phase != "Running" else eta_seconds(remaining, obs.rate_items_per_second)
    if spec.deadline_seconds is not None and obs.created is not None and phase in {"Running", "Pending"}:
        deadline = obs.created + timedelta(seconds=spec.deadline_seconds)
        if now > deadline:
            message = f"The deadline {format_time(deadline)} has passed with {remaining} files left."
            updates.append(ConditionUpdate("AtRisk", TRUE, "DeadlinePassed", message))
        elif eta is not None and now + timedelta(seconds=eta) > deadline:
            message = f"At the current rate the job ends in {eta}s, after its deadline {format_time(deadline)}."
            updates.append(ConditionUpdate("AtRisk", TRUE, "EtaPastDeadline", message))
        else:
            updates.append(ConditionUpdate("AtRisk", FALSE, "OnTrack", ""))
    elif _has(existing, "AtRisk"):
        updates.append(ConditionUpdate("AtRisk", FALSE, "OnTrack" if phase != "Failed" else phase, ""))

    spent = cost_of(obs.gpu_seconds, obs.price_per_gpu_hour)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": phase,
        "conditions": compute_conditions(existing.get("conditions"), updates, generation, now),
        "items": {
            "total": obs.total,
            "done": obs.done,
            "failed": obs.failed,
            "cached": obs.cached,
            "compiles": obs.compiles,
            "translated": max(obs.done - obs.compiles, 0),
            "queued": obs.queued,
            "inFlight": obs.in_flight,
        },
        "progressPercent": min(100, (finished_items * 100) // obs.total) if obs.total else 0,
        "verifiedPercent": min(100, (obs.compiles * 100) // obs.total) if obs.total and spec.verify.enabled else 0,
        "cost": {
            "spent": money(spent),
            "gpuSeconds": round(obs.gpu_seconds),
            "perItem": money(spent / finished_items) if finished_items else None,
            "tokens": obs.tokens,
        },
        "etaSeconds": eta,
        "failedItems": sorted(f"{p}: {r}"[:1024] for p, r in obs.failed_items.items())[:MAX_FAILED_ITEMS_IN_STATUS],
    }
    if start:
        status["startTime"] = start
    if completion and phase in {"Succeeded", "Failed"}:
        status["completionTime"] = completion
    for key, value in (
        ("planLocation", obs.plan_location),
        ("outputLocation", obs.output_location),
        ("reportLocation", obs.report_location),
    ):
        if value:
            status[key] = value
    return status


def _has(existing: dict[str, Any], type_: str) -> bool:
    return any(c.get("type") == type_ for c in existing.get("conditions") or [])


def _failed_summary(failed_items: dict[str, str], limit: int = 5) -> str:
    names = sorted(failed_items)
    shown = ", ".join(f"{n} ({failed_items[n]})" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


@dataclass
class RateTracker:
    """Items per second over a sliding window, from (time, finished) samples; pure apart from its memory."""

    window_seconds: float = 60.0
    samples: list[tuple[float, int]] = field(default_factory=list)

    def add(self, t: float, finished: int) -> float | None:
        self.samples.append((t, finished))
        cutoff = t - self.window_seconds
        while len(self.samples) > 2 and self.samples[1][0] < cutoff:
            self.samples.pop(0)
        return self.rate()

    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, n0), (t1, n1) = self.samples[0], self.samples[-1]
        if t1 <= t0 or n1 <= n0:
            return None
        return (n1 - n0) / (t1 - t0)


def report(
    plan: Sequence[Any],
    done_ids: set[str],
    failed: dict[str, str],
    totals: dict[str, Any],
    compiled_ids: set[str] | None = None,
    diagnostics: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The per-file report written to S3 when the job ends: each file's outcome (compiles, translated with the
    compiler's first diagnostics when it was checked, failed with the reason, or missing) and the totals."""
    compiled_ids = compiled_ids or set()
    diagnostics = diagnostics or {}
    files = []
    for item in plan:
        entry: dict[str, Any] = {"path": item.relative_path}
        if item.item_id in failed:
            entry.update(outcome=Outcome.FAILED.value, reason=failed[item.item_id])
        elif item.item_id in done_ids:
            outcome = Outcome.COMPILES if item.item_id in compiled_ids else Outcome.TRANSLATED
            entry.update(outcome=outcome.value, output=item.output_key)
            if item.item_id in diagnostics:
                entry["diagnostics"] = diagnostics[item.item_id]
        else:
            entry["outcome"] = "missing"
        files.append(entry)
    return {"totals": totals, "files": files}


# ---- which changes concern a job -----------------------------------------------------------------------


def job_fingerprint(body: Any, own_finalizer: str = "") -> tuple[Any, ...]:
    """What of a job, besides status, its reconcile depends on (a finalizer of the caller's own excluded)."""
    meta = body.get("metadata") or {}
    finalizers = tuple(sorted(f for f in meta.get("finalizers") or [] if f != own_finalizer))
    return meta.get("uid"), meta.get("generation"), meta.get("deletionTimestamp") is not None, finalizers


def budget_exceeded(status: dict[str, Any]) -> dict[str, Any] | None:
    """A TranslationCluster status's BudgetExceeded condition, if it has one."""
    return next((c for c in status.get("conditions") or [] if c.get("type") == "BudgetExceeded"), None)


def tenants_over_budget(status: dict[str, Any]) -> frozenset[str]:
    """The tenants that have spent a limit of theirs (daily, weekly or monthly) in a TranslationCluster's status."""
    return frozenset(
        t.get("name", "")
        for t in (status.get("budget") or {}).get("tenants") or []
        if any(
            (t.get(w) or {}).get("limit") is not None and int((t.get(w) or {}).get("percent", 0)) >= 100
            for w in ("daily", "weekly", "monthly")
        )
    )


def cluster_fingerprint(body: Any) -> tuple[Any, ...]:
    """What of a TranslationCluster its jobs depend on: the spec (connections, pricing, admission, budget)
    and whether its budget holds work, but not its scaling or queue figures, which change all the time."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    exceeded = budget_exceeded(status) or {}
    return (
        meta.get("uid"),
        meta.get("generation"),
        meta.get("deletionTimestamp") is not None,
        exceeded.get("status"),
        exceeded.get("reason"),
        tuple(sorted(tenants_over_budget(status))),
    )


def orphaned_jobs(held: set[str], live: set[str], suspects: set[str]) -> tuple[set[str], set[str]]:
    """Which job uids a queue holds with no job left: (remove now, suspect until the next look).

    A uid is removed only when the previous look suspected it too, so a job is never taken for gone on the
    strength of one look at the watch cache."""
    orphans = held - live
    return orphans & suspects, orphans - suspects
