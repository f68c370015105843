"""How many GPU workers a cluster should run, and which ones may go: a pure policy.

backlog = items waiting plus items in flight, over all priorities of the cluster's queue;
wanted  = clamp(ceil(backlog / targetItemsPerWorker), minWorkers, maxWorkers).

Like the HorizontalPodAutoscaler's behavior settings, recommendations are remembered for the stabilization
windows: a scale-up uses the lowest recommendation of the last ``scaleUpStabilizationSeconds`` (0 reacts at
once), a scale-down the highest of the last ``scaleDownStabilizationSeconds`` (so workers leave only after the
backlog has been low for that long). Steps are limited by ``maxStepUp``/``maxStepDown``. A scale-down names
the idle workers to remove and never a busy one: with too few idle workers it removes fewer. A budget hook can
refuse a scale-up. Scale to zero happens when minWorkers is 0; work arriving wakes the cluster from zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.desired.budget import BudgetState
from portalis.desired.podview import PodView


@dataclass(frozen=True)
class ScalingPolicy:
    min_workers: int
    max_workers: int
    target_items_per_worker: int = 50
    scale_up_stabilization_seconds: float = 0.0
    scale_down_stabilization_seconds: float = 300.0
    max_step_up: int | None = None
    max_step_down: int | None = None
    enabled: bool = True


def policy_from_spec(spec: TranslationClusterSpec) -> ScalingPolicy:
    a = spec.autoscaling
    return ScalingPolicy(
        min_workers=spec.workers.min_workers,
        max_workers=spec.workers.max_workers,
        target_items_per_worker=a.target_items_per_worker,
        scale_up_stabilization_seconds=float(a.scale_up_stabilization_seconds),
        scale_down_stabilization_seconds=float(a.scale_down_stabilization_seconds),
        max_step_up=a.max_step_up,
        max_step_down=a.max_step_down,
        enabled=a.enabled and not spec.suspend,
    )


@dataclass(frozen=True)
class Worker:
    """A worker pod as the scaler sees it: busy when any of its translators holds an item."""

    name: str
    busy: bool
    ready: bool = True
    created: float = 0.0  # for choosing the newest idle workers first


@dataclass
class History:
    """Recent recommendations (time, replicas), the memory behind the stabilization windows."""

    samples: list[tuple[float, int]] = field(default_factory=list)

    def add(self, now: float, wanted: int, keep_seconds: float) -> None:
        self.samples.append((now, wanted))
        cutoff = now - keep_seconds
        self.samples = [(t, w) for t, w in self.samples if t >= cutoff]

    def within(self, now: float, seconds: float) -> list[int]:
        return [w for t, w in self.samples if t >= now - seconds]


@dataclass(frozen=True)
class ScaleDecision:
    replicas: int
    workers_to_delete: tuple[str, ...] = ()
    reason: str = "Steady"
    message: str = ""
    budget_blocked: bool = False
    settled: bool = True  # False while a stabilization window or busy workers hold back a change

    def changed(self, current: int) -> bool:
        return self.replicas != current


def wanted_workers(backlog: int, policy: ScalingPolicy) -> int:
    raw = math.ceil(max(backlog, 0) / max(policy.target_items_per_worker, 1))
    return max(policy.min_workers, min(policy.max_workers, raw))


FIGURES_SECONDS = 5.0  # a cluster's queue figures alone are written to its status at most this often
FIGURES_WRITES_PER_SECOND = 10.0  # ... and all clusters together write figures at most this many times a second


def figures_seconds(clusters: int) -> float:
    """How often one cluster's queue figures alone may be written to its status when the operator serves
    ``clusters`` clusters: every FIGURES_SECONDS, stretched so that the fleet's figure-only writes stay within
    FIGURES_WRITES_PER_SECOND (100 clusters: every 10 s). Changes that matter (a scaling target moved, the queue
    emptied or started, a condition) are never held back by this."""
    return max(FIGURES_SECONDS, clusters / FIGURES_WRITES_PER_SECOND)


def backlog_needs_a_look(
    policy: ScalingPolicy, seen: int | None, backlog: int, since_look: float, figures_seconds: float
) -> bool:
    """Whether a cluster whose queue now holds ``backlog`` items should be reconciled, when its last reconcile
    saw ``seen`` items ``since_look`` seconds ago. A change that moves the scaler's target, or that empties or
    starts the queue, is acted on at once; any other change only refreshes the queue figures in status, which
    are written at most every ``figures_seconds``. (While thousands of items are queued, the backlog moves on
    every look, and reconciling for each move cost more than all the work it found.)"""
    if seen is None:
        return True
    if backlog == seen:
        return False
    if (seen == 0) != (backlog == 0):
        return True
    if policy.enabled and wanted_workers(seen, policy) != wanted_workers(backlog, policy):
        return True
    return since_look >= figures_seconds


def _shrink_now(current: int, target: int, workers: Sequence[Worker], reason: str, message: str) -> ScaleDecision:
    """Down to ``target`` at once, without stabilization: idle workers go first, then busy ones, whose items go
    back to the queue when they stop."""
    remove = current - target
    chosen = choose_idle(workers, remove)
    busy = sorted(w.name for w in workers if w.busy and w.name not in chosen)
    chosen += busy[: remove - len(chosen)]
    return ScaleDecision(target, tuple(sorted(chosen)), reason, message)


def decide(
    policy: ScalingPolicy,
    current: int,
    backlog: int,
    workers: Sequence[Worker],
    history: History,
    now: float,
    budget_allows_scale_up: bool = True,
) -> ScaleDecision:
    """The replica count for now and the idle workers to remove; records the recommendation in ``history``."""
    lo, hi = policy.min_workers, policy.max_workers
    if not policy.enabled:  # a fixed size: the cluster runs minWorkers
        why = "spec.autoscaling.enabled is false"
        if current > lo:
            return _shrink_now(current, lo, workers, "AutoscalingDisabled", f"{why}: scaled down to {lo} workers")
        return ScaleDecision(lo, (), "AutoscalingDisabled", why)
    wanted = wanted_workers(backlog, policy)
    keep = max(policy.scale_up_stabilization_seconds, policy.scale_down_stabilization_seconds)
    history.add(now, wanted, keep)
    clamped_current = max(lo, min(hi, current))

    if clamped_current != current:  # min or max changed under us: the bounds are hard, follow them at once
        why = f"minWorkers/maxWorkers are now {lo}/{hi}"
        if clamped_current > current:
            return ScaleDecision(clamped_current, (), "BoundsChanged", f"{why}: scaled up to {clamped_current} workers")
        return _shrink_now(
            current, clamped_current, workers, "BoundsChanged", f"{why}: scaled down to {clamped_current} workers"
        )

    up_target = min(history.within(now, policy.scale_up_stabilization_seconds) or [wanted])
    down_target = max(history.within(now, policy.scale_down_stabilization_seconds) or [wanted])
    if up_target > current:
        target = up_target
        if policy.max_step_up is not None:
            target = min(target, current + policy.max_step_up)
        if not budget_allows_scale_up:
            held = f"the budget holds scale-up from {current} to {target} workers"
            return ScaleDecision(current, (), "BudgetBlocked", held, budget_blocked=True)
        what = "woke from zero" if current == 0 else f"scaled up from {current}"
        return ScaleDecision(
            target, (), "QueueBacklog", f"{backlog} items queued or in flight: {what} to {target} workers"
        )
    if down_target < current:
        target = down_target
        if policy.max_step_down is not None:
            target = max(target, current - policy.max_step_down)
        return _scale_down(
            current,
            target,
            workers,
            f"backlog at most {backlog} for the last {policy.scale_down_stabilization_seconds:.0f}s",
        )
    return ScaleDecision(current, (), "Steady", "", settled=wanted == current)


def _scale_down(current: int, target: int, workers: Sequence[Worker], why: str) -> ScaleDecision:
    """Remove ``current - target`` workers: replicas with no pod yet first, then idle pods, never busy ones."""
    remove = current - target
    phantom = min(max(current - len(workers), 0), remove)
    idle = choose_idle(workers, remove - phantom)
    removed = phantom + len(idle)
    if removed == 0:
        return ScaleDecision(
            current, (), "WorkersBusy", f"{why}, but every worker that could go is busy", settled=False
        )
    replicas = current - removed
    verb = "scaled to zero" if replicas == 0 else f"scaled down from {current} to {replicas}"
    names = f", removing idle {', '.join(sorted(idle))}" if idle else ""
    note = "" if removed == remove else f" ({remove - removed} busy workers kept)"
    return ScaleDecision(replicas, tuple(sorted(idle)), "QueueDrained", f"{why}: {verb}{names}{note}")


def choose_idle(workers: Sequence[Worker], count: int) -> list[str]:
    """Up to ``count`` idle workers: not-ready ones first (they hold no work yet), then the newest."""
    idle = [w for w in workers if not w.busy]
    idle.sort(key=lambda w: (w.ready, -w.created, w.name))
    return [w.name for w in idle[:count]]


def busy_pods(heartbeats: Mapping[str, Mapping[str, Any]], pod_names: Iterable[str]) -> set[str]:
    """Pods with a translator holding an item; heartbeat names are the pod name or ``<pod>/<translator>``."""
    names = set(pod_names)
    busy = set()
    for name, beat in heartbeats.items():
        if beat.get("state") != "busy":
            continue
        pod = name.split("/", 1)[0]
        if pod in names:
            busy.add(pod)
    return busy


def decide_for_cluster(
    spec: TranslationClusterSpec,
    current: int,
    backlog: int,
    workers: Sequence[PodView],
    busy: set[str],
    history: History,
    now: float,
    budget: BudgetState | None,
) -> ScaleDecision:
    """``decide`` for a TranslationCluster: its spec's policy, its worker pods (those not being deleted), and
    its budget; a suspended cluster keeps its count, and a budget spent under onExceeded: Suspend scales it to
    zero, removing every worker."""
    views = [Worker(p.name, busy=p.name in busy, ready=p.ready) for p in workers]
    allows = budget is None or not budget.blocks_scale_up
    decision = decide(policy_from_spec(spec), current, backlog, views, history, now, allows)
    if spec.suspend:
        return ScaleDecision(current, (), "Suspended")
    if budget is not None and budget.suspends and current > 0:
        everyone = tuple(sorted(p.name for p in workers))
        message = f"the budget is spent: scaled to zero from {current} workers"
        return ScaleDecision(0, everyone, "BudgetExceeded", message)
    return decision
