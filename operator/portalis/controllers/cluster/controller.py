"""The TranslationCluster reconcile: observe from the watch caches and the queue observer, decide with pure
functions, apply the backend object, and patch status only when it changed.

Every event about a cluster, its backend object, its pods or a Node its pods run on only enqueues the cluster's
key (``portalis.controllers.watches``); a worker of the reconcile loop then:

- observes the cluster, its RayCluster or DaskCluster (as applied last, until the watch brings it back), its pods,
  the Nodes they run on, the queue's snapshot and, every few seconds, the budget as metered;
- reads the current worker count from the backend object (the ``portalis.dev/workers`` annotation records the
  count Portalis chose), decides the next one (``desired.scaling``), and adds to the scaler's idle workers the
  workers on Nodes quarantined for this cluster (``desired.health.removal``: the Node is the interface with
  the health controller);
- server-side applies the backend object only when the observed one lacks a field Portalis owns (so edits and
  deletions are undone), and computes the whole status (``desired.cluster_status``).

Deleting a TranslationCluster garbage-collects what it made through owner references.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from portalis import metrics
from portalis.api.meta import API_VERSION, Key
from portalis.api.v1alpha1.cluster import Backend, TranslationClusterSpec
from portalis.clients.connections import Connections
from portalis.clients.kube import Kube, Ref
from portalis.clock import MeteringClock
from portalis.config import OperatorConfig
from portalis.controllers.caches import Index, NodeCache, ObjectCache, SpecCache, Written, first, slim
from portalis.controllers.cluster.backend import apply_backend, record_scale, record_transitions
from portalis.controllers.cluster.metering import Meter, meter
from portalis.controllers.observer import RETRY_SECONDS, QueueObserver, QueueSnapshot
from portalis.controllers.redis_gate import RedisGate
from portalis.controllers.runtime import Controller, Result
from portalis.desired.apply import annotate, applied_replicas, is_subset
from portalis.desired.budget import BudgetState, is_metered
from portalis.desired.cluster_status import (
    ClusterObservation,
    compute_cluster_status,
    only_figures_changed,
    status_changed,
)
from portalis.desired.conditions import FALSE, ConditionUpdate, compute_conditions
from portalis.desired.daskcluster import build_daskcluster, daskcluster_name
from portalis.desired.health import quarantined_nodes, workers_to_remove
from portalis.desired.pods import Owner
from portalis.desired.podview import PodView, view_pod
from portalis.desired.raycluster import build_raycluster, clamp_replicas, raycluster_name
from portalis.desired.scaling import History, ScaleDecision, busy_pods, decide_for_cluster, figures_seconds

log = logging.getLogger("portalis.cluster")

METER_SECONDS = 5.0
BUDGET_SECONDS = 1.0  # a budget evaluated this recently is used again
REFUSED_RETRY_SECONDS = 60.0  # a backend object the apiserver refused is tried again this often, or on a change


@dataclass
class Scale:
    """What the queue said and what the scaler made of it; ``decision`` None when the queue could not be read."""

    decision: ScaleDecision | None = None
    snapshot: QueueSnapshot | None = None
    busy: int = 0


@dataclass
class Desired:
    """The backend object last built for a cluster, what it was built from, and the observed object last found
    to hold all of it. A cluster is reconciled again and again with the same inputs (every move of its queue
    that the scaler looks at); building and hashing the object and comparing it field by field took about 3 ms
    each time."""

    spec: TranslationClusterSpec  # the parsed spec, by identity (the spec cache shares one per generation)
    inputs: tuple[Any, ...]
    body: dict[str, Any]
    holds: dict[str, Any] | None = None  # an observed object (by identity) found to hold every field of ``body``


@dataclass
class ClusterController:
    kube: Kube
    connections: Connections
    gate: RedisGate
    observer: QueueObserver
    clusters: Index
    rayclusters: Index
    daskclusters: Index
    pods: Index
    nodes: NodeCache
    jobs: ObjectCache
    specs: SpecCache
    config: OperatorConfig
    clock: MeteringClock
    workers: int = 32
    loop: Controller = field(init=False)
    # backend objects applied, by cluster and kind, until the watch shows them
    applied: Written[tuple[Key, str]] = field(default_factory=Written)
    histories: dict[Key, History] = field(default_factory=dict)
    status_written: dict[Key, float] = field(default_factory=dict)  # when status was last patched (monotonic)
    budgets: dict[Key, tuple[float, BudgetState]] = field(default_factory=dict)
    desired: dict[Key, Desired] = field(default_factory=dict)
    meter: Meter = field(default_factory=Meter)

    def __post_init__(self) -> None:
        self.loop = Controller(
            "translationcluster", self.reconcile, workers=self.workers, observe=metrics.observe_reconcile
        )

    def enqueue(self, key: Key) -> None:
        self.loop.enqueue(key)

    def on_node(self, name: str) -> None:
        """A Node's quarantine changed: the clusters with pods on it look again (gpus.healthy, workersToDelete)."""
        for key, bodies in list(self.pods.items()):
            if any((b.get("spec") or {}).get("nodeName") == name for b in bodies):
                self.loop.enqueue(key)

    def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    # ---- reconcile ----
    async def reconcile(self, key: Key) -> Result:
        tc = first(self.clusters, key)
        if tc is None or tc.get("metadata", {}).get("deletionTimestamp"):
            self.loop.forget(key)
            metrics.forget_cluster(*key)
            self.observer.forget(key)
            for backend in Backend:
                self.applied.forget((key, backend.value))
            for memory in (self.histories, self.budgets, self.status_written, self.desired):
                memory.pop(key, None)
            return Result.forget()
        meta = tc["metadata"]
        ref = Ref(API_VERSION, "TranslationCluster", key[0], key[1], meta.get("uid", ""))
        generation = int(meta.get("generation") or 0)
        status: dict[str, Any] = dict(tc.get("status") or {})
        now = datetime.now(UTC)
        try:
            spec = self.specs.parse(TranslationClusterSpec, tc)
        except ValidationError as exc:
            await self._invalid(ref, status, generation, exc, now)
            return Result()

        owner = Owner(key[1], key[0], meta.get("uid", ""))
        backend_index = self.rayclusters if spec.backend == Backend.RAY else self.daskclusters
        observed = self.applied.over((key, spec.backend.value), first(backend_index, key))
        pods = [view_pod(p) for p in self.pods.get(key) or ()]
        # the worker count Portalis chose last, as the backend object records it (the status before it exists)
        chosen = applied_replicas(observed)
        current = clamp_replicas(spec, chosen if chosen is not None else (status.get("workers") or {}).get("desired"))
        first_apply = observed is None and chosen is None
        budget: BudgetState | None = None
        scale = Scale()
        if not first_apply:  # (a backend created at once with minWorkers; the queue and budget are read next time)
            budget = await self._budget(key, spec, pods)
            if budget is not None and budget.suspends:
                # onExceeded: Suspend: no workers at all, whatever minWorkers says, until the budget allows again
                spec = spec.model_copy(update={"workers": spec.workers.model_copy(update={"min_workers": 0})})
            scale = await self._scale(key, spec, current, pods, budget)
        decision = scale.decision
        replicas = decision.replicas if decision is not None else current
        if spec.backend == Backend.RAY:
            backend_name = raycluster_name(key[1])
            # idle workers the scaler chose, and workers on Nodes quarantined for this cluster
            remove = set(decision.workers_to_delete if decision else ()) | workers_to_remove(key, pods, self.nodes.view)
        else:
            backend_name = daskcluster_name(key[1])
            remove = set()
        memo = self._desired(key, spec, owner, generation, replicas, sorted(remove))
        desired = memo.body

        refused: str | None = None
        if observed is None or (observed is not memo.holds and not is_subset(desired, observed)):
            existed = bool(status.get("rayClusterName") or status.get("daskClusterName"))
            applied, refused = await apply_backend(self.kube, ref, desired, observed, generation, existed)
            if applied is not None:
                observed = slim(applied)
                self.applied.wrote((key, spec.backend.value), observed)
        else:
            memo.holds = observed  # holds every field Portalis wants: this object is not compared again

        scaled = decision is not None and decision.changed(current)
        if scaled:
            assert decision is not None
            await record_scale(self.kube, ref, key, current, decision)
        obs = ClusterObservation(
            backend_name=backend_name,
            backend_exists=observed is not None,
            backend_suspended=spec.suspend,
            desired_workers=replicas,
            pods=pods,
            quarantined_nodes=quarantined_nodes(pods, self.nodes.view),
            refused=refused,
            queue_problem=self.observer.problem(key),
            busy_workers=scale.busy,
            queue=scale.snapshot.figures if scale.snapshot is not None else None,
            budget=budget,
            scaled=scaled,
        )
        new_status = compute_cluster_status(spec, generation, status, obs, now)
        metrics.WORKERS_DESIRED.labels(*key).set(replicas)
        metrics.WORKERS_READY.labels(*key).set(new_status["workers"]["ready"])
        metrics.GPUS_ALLOCATED.labels(*key).set(new_status["gpus"]["allocated"])
        deferred = await self._write_status(key, ref, status, new_status)

        if refused is not None:
            return Result(requeue_after=REFUSED_RETRY_SECONDS)  # a change to the spec is looked at at once
        if first_apply:
            return Result(requeue_after=0.0)
        after = [deferred] if deferred is not None else []
        if self.observer.failed(key):
            after.append(RETRY_SECONDS)  # level-triggered: look again, the queue may be back
        if decision is not None and not decision.settled:
            after.append(1.0)  # look again when the stabilization window may have passed
        if budget is not None and new_status["gpus"]["allocated"]:
            after.append(METER_SECONDS)  # spend grows while GPUs are held
        return Result(requeue_after=min(after)) if after else Result()

    def _desired(
        self, key: Key, spec: TranslationClusterSpec, owner: Owner, generation: int, replicas: int, remove: list[str]
    ) -> Desired:
        """The backend object for these inputs, built again only when one of them changed."""
        inputs = (owner, generation, replicas, tuple(remove))
        memo = self.desired.get(key)
        if memo is not None and memo.spec is spec and memo.inputs == inputs:
            return memo
        if spec.backend == Backend.RAY:
            body = build_raycluster(spec, owner, replicas, remove)
        else:
            body = build_daskcluster(spec, owner, replicas)
        memo = self.desired[key] = Desired(spec, inputs, annotate(body, generation, replicas))
        return memo

    async def _invalid(
        self, ref: Ref, status: dict[str, Any], generation: int, exc: ValidationError, now: datetime
    ) -> None:
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        invalid = {
            "observedGeneration": generation,
            "phase": "Invalid",
            "conditions": compute_conditions(
                status.get("conditions"), [ConditionUpdate("Ready", FALSE, "InvalidSpec", message)], generation, now
            ),
        }
        if status_changed(status, invalid):
            await asyncio.to_thread(self.kube.patch_status, ref, invalid)
            await asyncio.to_thread(self.kube.event, ref, "Warning", "InvalidSpec", message)

    async def _write_status(
        self, key: Key, ref: Ref, status: dict[str, Any], new_status: dict[str, Any]
    ) -> float | None:
        """Patch the new status when it changed; the queue figures alone at most every ``figures_seconds``.
        Returns when to look again for figures held back, if any were."""
        if not status_changed(status, new_status):
            return None
        since = time.monotonic() - self.status_written.get(key, float("-inf"))
        every = figures_seconds(len(self.observer.seen))
        if only_figures_changed(status, new_status) and since < every:
            return every - since  # queue figures alone: see desired.scaling.figures_seconds
        await asyncio.to_thread(self.kube.patch_status, ref, new_status)
        self.status_written[key] = time.monotonic()
        await record_transitions(self.kube, ref, status, new_status)
        return None

    # ---- scaling ----
    async def _scale(
        self, key: Key, spec: TranslationClusterSpec, current: int, pods: list[PodView], budget: BudgetState | None
    ) -> Scale:
        workers = [p for p in pods if p.is_worker and not p.deleting]
        if not self.observer.worth_trying(key):
            return Scale()
        try:
            conns = await self.connections.for_cluster_async(key[0], key[1], spec)
            snapshot = await self.observer.read(key, conns, wake=lambda: self.loop.enqueue(key))
        except Exception as exc:  # the queue is down or its Secret is missing: keep the worker count
            self.observer.remember_error(key, exc, "not scaling")
            return Scale()
        busy = busy_pods(snapshot.heartbeats, (p.name for p in workers))
        history = self.histories.setdefault(key, History())
        decision = decide_for_cluster(spec, current, snapshot.backlog, workers, busy, history, time.monotonic(), budget)
        for d in snapshot.depth:
            metrics.QUEUE_DEPTH.labels(key[0], key[1], d.priority).set(d.waiting)
            metrics.QUEUE_OLDEST_AGE.labels(key[0], key[1], d.priority).set(d.oldest_age_seconds)
        return Scale(decision, snapshot, len(busy))

    # ---- metering ----
    async def _budget(self, key: Key, spec: TranslationClusterSpec, pods: list[PodView]) -> BudgetState | None:
        """Meter the cluster's GPU time and evaluate its budget, at most every BUDGET_SECONDS."""
        if not is_metered(spec, self.config.default_prices_set):
            return None
        cached = self.budgets.get(key)
        if cached is not None and time.monotonic() - cached[0] < BUDGET_SECONDS:
            return cached[1]
        if not self.observer.worth_trying(key):
            return cached[1] if cached is not None else None
        jobs: list[tuple[str, str]] = []
        for job_key in self.jobs.group(key):
            body = self.jobs.get(job_key)
            if body is not None:
                tenant = (body.get("spec") or {}).get("tenant") or job_key[0]
                jobs.append((str(body["metadata"].get("uid", "")), str(tenant)))
        workers = [p for p in pods if p.is_worker]
        nodes = {}  # the workers' nodes' labels only
        for name in {p.node for p in workers if p.node}:
            view = self.nodes.view(name)
            nodes[name] = dict(view.labels) if view is not None else {}
        try:
            conns = await self.connections.for_cluster_async(key[0], key[1], spec)

            def run() -> BudgetState:
                return meter(key, spec, conns, workers, nodes, jobs, self.meter, self.config.default_prices, self.clock)

            state = await self.gate.call(conns.queue.r, run, wake=lambda: self.loop.enqueue(key))
        except Exception as exc:
            self.observer.remember_error(key, exc, "not metering")
            return cached[1] if cached is not None else None
        self.budgets[key] = (time.monotonic(), state)
        return state
