"""GPU health controller: quarantine GPU nodes on ECC alerts under each cluster's spec.health, and notice releases.

Flow: ``submit_alerts`` (called by the ``/alerts`` receiver or the dcgm-exporter poller) starts one task per
alert -> under one lock, the task observes the fleet from the watch caches (nodes, the clusters' worker pods,
quarantines this process wrote that the cache does not show yet), ``decide``s with the pure policy of
``portalis.desired.health``, and when the decision is to quarantine, cordons and taints the node with one merge
patch guarded by its resourceVersion -> outside the lock it records Events and starts the node's remediation:
its Ray workers are named for the cluster controller's ``workersToDelete`` (``pods_to_remove``), the items they
hold go back to the queue, and with CordonAndDrain the remaining pods are evicted through the Eviction API, with
PodDisruptionBudgets respected, until ``drainTimeoutSeconds``.

All state lives on the Node (label, taint, ``portalis.dev/quarantine*`` and ``portalis.dev/drain*``
annotations), so a restarted operator recomputes status and resumes an unfinished drain from the node watch.
The node watch also notices releases: a person uncordons the node, removes the taint or the label, or annotates
it ``portalis.dev/release=true``, and Portalis removes whatever of its marks are left.

Status: this controller owns ``quarantinedNodes``, ``circuitBreaker`` and ``plannedNodeActions`` of each
TranslationCluster and writes them with its own merge patch; the cluster controller never writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from portalis import GROUP, VERSION, metrics
from portalis.api.alertmanager import WebhookPayload
from portalis.api.v1alpha1.cluster import Backend, EccAction, HealthSpec, QuarantinePhase, TranslationClusterSpec
from portalis.clients.connections import Connections
from portalis.clients.inflight import release_held_by
from portalis.clients.kube import Kube, Ref
from portalis.clients.nodes import Eviction, NodeClient
from portalis.controllers.caches import SPECS, slim
from portalis.controllers.runtime import Controller, Key, Result, changed
from portalis.desired.cluster_status import reconcile_fingerprint
from portalis.desired.conditions import format_time
from portalis.desired.health import (
    CORDONED_ANNOTATION,
    DRAIN_DEADLINE_ANNOTATION,
    FLEET,
    QUARANTINE_ANNOTATIONS,
    RELEASE_ANNOTATION,
    TAINT_EFFECT,
    TAINT_KEY,
    Breaker,
    ClusterOnNode,
    Decision,
    Fleet,
    GpuAlert,
    HealthPolicy,
    HealthSettings,
    NodeView,
    Outcome,
    PlannedAction,
    alerts_from_payload,
    build_fleet,
    build_phase_patch,
    build_plan,
    build_quarantine_patch,
    build_release_patch,
    cluster_limit,
    compute_health_status,
    decide,
    drain_targets,
    fleet_limit,
    health_status_changed,
    is_managed,
    parse_time,
    policy_from_spec,
    release_reason,
    resolve_node,
    taint_value,
    view_node,
    view_pod_ref,
)
from portalis.desired.pods import CLUSTER_LABEL, ROLE_LABEL

log = logging.getLogger("portalis.health")

TC_API_VERSION = f"{GROUP}/{VERSION}"
PENDING_SECONDS = 30.0  # how long a quarantine this process wrote counts before the watch cache shows it
FLEET_CACHE_SECONDS = 0.5  # how stale the fleet a status report uses may be (decisions always build it anew)
RAY_HANDOFF_SECONDS = 5.0  # time for the cluster controller to name the workers in the RayCluster
POLL_SECONDS = 0.2
EVICT_RETRY_SECONDS = 1.0
IN_PROGRESS = (QuarantinePhase.REMOVING_WORKERS, QuarantinePhase.DRAINING, QuarantinePhase.DRAIN_BLOCKED)


@dataclass(frozen=True)
class WorkerPod:
    """A pod of a TranslationCluster on some node, as the health controller indexes it."""

    namespace: str
    cluster: str
    name: str
    role: str
    deleting: bool

    @property
    def key(self) -> Key:
        return (self.namespace, self.cluster)


# ---- watch caches (async: they run on the event loop, never waiting for kopf's thread pool) ----------------


@kopf.index("v1", "nodes")
async def health_nodes(name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    return {name: slim(body)}


@kopf.index("v1", "pods", labels={CLUSTER_LABEL: kopf.PRESENT})
async def health_pods_by_node(
    namespace: str | None, name: str, labels: kopf.Labels, spec: kopf.Spec, meta: kopf.Meta, **_: Any
) -> dict[str, WorkerPod]:
    node = spec.get("nodeName")
    if not node:
        return {}
    deleting = bool(meta.get("deletionTimestamp"))
    return {node: WorkerPod(namespace or "", labels[CLUSTER_LABEL], name, labels.get(ROLE_LABEL, ""), deleting)}


@kopf.index(GROUP, VERSION, "translationclusters")
async def health_clusters(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {(namespace or "", name): slim(body)}


@kopf.index("ray.io", "v1", "rayclusters", labels={CLUSTER_LABEL: kopf.PRESENT})
async def health_workers_to_delete(
    namespace: str | None, labels: kopf.Labels, spec: kopf.Spec, **_: Any
) -> dict[Key, frozenset[str]]:
    names: set[str] = set()
    for group in spec.get("workerGroupSpecs") or []:
        names.update((group.get("scaleStrategy") or {}).get("workersToDelete") or [])
    return {(namespace or "", labels[CLUSTER_LABEL]): frozenset(names)}


def _first(index: Any, key: Any) -> Any:
    store = index.get(key) if index is not None else None
    if not store:
        return None
    for item in store:
        return item
    return None


# ---- the controller ---------------------------------------------------------------------------------------


class HealthController:
    def __init__(
        self,
        kube: Kube,
        settings: HealthSettings,
        nodes: Any,
        pods: Any,
        clusters: Any,
        workers_to_delete: Any,
    ) -> None:
        self.kube = kube
        self.api = NodeClient(kube)
        self.connections = Connections.shared(kube)
        self.settings = settings
        self.node_index = nodes
        self.pod_index = pods
        self.tc_index = clusters
        self.rc_index = workers_to_delete
        self.lock = asyncio.Lock()
        self.view_cache: dict[str, tuple[Any, NodeView]] = {}  # node -> (resourceVersion, view)
        self.fleet_cache: tuple[float, Any, Fleet] | None = None  # (when, own pending writes, fleet)
        # nodes the node watch shows quarantined, built from the watch cache on first use and kept up to date by
        # node events, so that every cluster reconcile (gpus.healthy) need not look at every node
        self.shown: set[str] | None = None
        self.shown_version = 0
        self.quarantined_cache: tuple[Any, frozenset[str]] | None = None
        self.fleet_version = 0  # bumped on every node or worker-pod event
        self.pending: dict[str, tuple[tuple[Key, ...], float]] = {}
        self.released: dict[str, float] = {}
        self.releasing: set[str] = set()
        self.remove: dict[Key, dict[str, str]] = {}  # cluster -> worker pod -> node
        self.tasks: dict[str, asyncio.Task[None]] = {}  # remediation per node
        self.background: set[asyncio.Task[Any]] = set()
        self.breakers: dict[Key, Breaker] = {}
        self.fleet_breaker = Breaker()
        self.planned: dict[Key, dict[str, PlannedAction]] = {}
        self.node_clusters: dict[str, tuple[Key, ...]] = {}
        self.quarantining: set[str] = set()  # nodes being patched right now
        self.finished: dict[str, float] = {}  # nodes whose remediation ended lately (no resume from stale events)
        self.status = Controller("health-status", self.sync_status, workers=2, resync_seconds=60.0)
        self.cluster_seen: dict[Key, tuple[Any, ...]] = {}  # what of each cluster its last event showed
        self.tripped_here: set[Key] = set()  # clusters whose breaker this process tripped
        self.pool = ThreadPoolExecutor(16, thread_name_prefix="portalis-evict")

    # ---- observing ----
    def node_body(self, name: str) -> dict[str, Any] | None:
        body: dict[str, Any] | None = _first(self.node_index, name)
        return body

    def views(self) -> list[NodeView]:
        """Every node's view; a node's view is computed again only when its resourceVersion changed, since
        every cluster reconcile and status sync asks for the whole fleet."""
        out = []
        cache: dict[str, tuple[Any, NodeView]] = {}
        for name in list(self.node_index.keys()):
            body = self.node_body(name)
            if body is None:
                continue
            version = (body.get("metadata") or {}).get("resourceVersion")
            known = self.view_cache.get(name)
            view = known[1] if known is not None and version is not None and known[0] == version else view_node(body)
            cache[name] = (version, view)
            out.append(view)
        self.view_cache = cache
        return out

    def shown_quarantined(self) -> set[str]:
        if self.shown is None:
            self.shown = {v.name for v in self.views() if v.quarantined}
            self.shown_version += 1
        return self.shown

    def note_node(self, view: NodeView, gone: bool) -> None:
        """A node event: keep ``shown`` in step with the watch."""
        if self.shown is None:
            return
        quarantined = view.quarantined and not gone
        if quarantined != (view.name in self.shown):
            (self.shown.add if quarantined else self.shown.discard)(view.name)
            self.shown_version += 1

    def worker_pods(self, node: str) -> list[WorkerPod]:
        return [p for p in self.pod_index.get(node) or () if p.role == "worker"]

    def cluster_nodes(self) -> dict[Key, set[str]]:
        out: dict[Key, set[str]] = {}
        for node, store in list(self.pod_index.items()):
            for p in store:
                if p.role == "worker" and not p.deleting:
                    out.setdefault(p.key, set()).add(node)
        return out

    def tc(self, key: Key) -> dict[str, Any] | None:
        body: dict[str, Any] | None = _first(self.tc_index, key)
        return body

    def policy(self, key: Key) -> HealthPolicy:
        tc = self.tc(key)
        try:
            spec = HealthSpec.model_validate(((tc or {}).get("spec") or {}).get("health") or {})
        except ValidationError:
            return HealthPolicy()
        return policy_from_spec(spec)

    def clusters_on_node(self, node: str, bodies: list[dict[str, Any]] | None = None) -> list[ClusterOnNode]:
        """The clusters with worker pods on ``node``: from ``bodies`` (pods just listed) or the watch cache."""
        pods: dict[Key, list[str]] = {}
        if bodies is None:
            workers = [(p.key, p.name) for p in self.worker_pods(node) if not p.deleting]
        else:
            refs = [view_pod_ref(b, CLUSTER_LABEL, ROLE_LABEL) for b in bodies]
            workers = [(r.key, r.name) for r in refs if r.key is not None and r.role == "worker" and not r.deleting]
        for key, name in workers:
            pods.setdefault(key, []).append(name)
        return [
            ClusterOnNode(key, self.policy(key), tuple(sorted(names)))
            for key, names in sorted(pods.items())
            if self.tc(key) is not None
        ]

    def fleet(self, fresh: bool = True) -> Fleet:
        """The fleet as the watch caches and this process' own recent writes show it.

        ``fresh=False`` (status reports, which run for every cluster) may return the fleet built up to
        FLEET_CACHE_SECONDS ago, unless a node or worker pod changed since or this process' own pending
        quarantines or releases did; a decision to quarantine always builds it anew."""
        now = time.monotonic()
        mine = (self.fleet_version, tuple(self.pending.items()), tuple(self.released.items()))
        if not fresh and self.fleet_cache is not None:
            at, seen, cached = self.fleet_cache
            if now - at < FLEET_CACHE_SECONDS and seen == mine:
                return cached
        for name, (_keys, at) in list(self.pending.items()):
            body = self.node_body(name)
            if now - at > PENDING_SECONDS or (body is not None and view_node(body).quarantined):
                del self.pending[name]
        for name, at in list(self.released.items()):
            body = self.node_body(name)
            if now - at > PENDING_SECONDS or (body is not None and not view_node(body).quarantined):
                del self.released[name]
        fleet = build_fleet(
            self.views(),
            self.settings,
            self.cluster_nodes(),
            {n: keys for n, (keys, _at) in self.pending.items()},
            self.released,
        )
        self.fleet_cache = (now, (self.fleet_version, tuple(self.pending.items()), tuple(self.released.items())), fleet)
        return fleet

    # ---- small helpers ----
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    async def tc_event(self, key: Key, type_: str, reason: str, message: str) -> None:
        tc = self.tc(key)
        if tc is None:
            return
        ref = Ref(TC_API_VERSION, "TranslationCluster", key[0], key[1], tc.get("metadata", {}).get("uid", ""))
        await asyncio.to_thread(self.kube.event, ref, type_, reason, message)

    async def node_event(self, node: str, type_: str, reason: str, message: str) -> None:
        body = self.node_body(node) or {}
        uid = str(body.get("metadata", {}).get("uid", ""))
        await asyncio.to_thread(self.api.node_event, node, uid, type_, reason, message)

    async def events(self, node: str | None, keys: Iterable[Key], type_: str, reason: str, message: str) -> None:
        if node is not None:
            await self.node_event(node, type_, reason, message)
        for key in sorted(set(keys)):
            await self.tc_event(key, type_, reason, message)

    def enqueue_status(self, keys: Iterable[Key]) -> None:
        for key in set(keys):
            if key != FLEET:
                self.status.enqueue(key)

    @staticmethod
    def enqueue_cluster(key: Key) -> None:
        from portalis.controllers import cluster as cluster_controller  # imported late: it imports this module

        cluster_controller.enqueue(key)

    # ---- alerts ----
    def submit(self, payload: WebhookPayload) -> bool:
        for alert in alerts_from_payload(payload):
            self.spawn(self.handle_alert(alert), f"alert-{alert.name}")
        return True

    async def handle_alert(self, alert: GpuAlert) -> None:
        try:
            decision = await self.decide_and_cordon(alert)
        except Exception:
            log.exception("alert %s: could not be handled", alert.describe())
            metrics.ALERTS_RECEIVED.labels(alert.name, Outcome.FAILED.value).inc()
            return
        metrics.ALERTS_RECEIVED.labels(alert.name, decision.outcome.value).inc()
        try:
            await self.follow_up(decision)
        except Exception:
            log.exception("alert %s: recording what was done failed", alert.describe())

    async def decide_and_cordon(self, alert: GpuAlert) -> Decision:
        async with self.lock:
            fleet = self.fleet()
            node = resolve_node(alert.labels, fleet.nodes)
            on_node: list[ClusterOnNode] = []
            if node is not None and node in fleet.managed and alert.firing:
                # which clusters' workers run there decides the policy: read it fresh, not from the watch cache
                try:
                    bodies = await asyncio.to_thread(self.api.pods_on_node, node)
                except ApiException as exc:
                    log.warning("node %s: cannot list its pods (%s); using the watch cache", node, exc.reason)
                    bodies = None
                on_node = self.clusters_on_node(node, bodies)
            decision = decide(alert, fleet, on_node, self.settings)
            if decision.outcome != Outcome.QUARANTINED or decision.node is None:
                return decision
            name = decision.node
            # counted as quarantined from now on: the node watch may report the patch before it returns here
            self.pending[name] = (decision.clusters, time.monotonic())
            self.quarantining.add(name)
            try:
                return await self._cordon(decision, name)
            finally:
                self.quarantining.discard(name)

    async def _cordon(self, decision: Decision, name: str) -> Decision:
        now = datetime.now(UTC)
        already = False

        def build(body: dict[str, Any]) -> dict[str, Any] | None:
            nonlocal already
            current = view_node(body)
            if current.quarantined:
                already = True
                return None
            return build_quarantine_patch(current, decision, self.settings.identity, now)

        result = None
        for attempt in range(3):
            try:
                result = await asyncio.to_thread(self.api.patch_guarded, name, build, self.node_body(name))
                break
            except ApiException as exc:
                if attempt == 2:
                    self.pending.pop(name, None)
                    metrics.NODE_ACTIONS.labels("cordon", "error").inc()
                    log.error("node %s: could not cordon and taint it: %s %s", name, exc.status, exc.reason)
                    return replace(decision, outcome=Outcome.FAILED, message=f"cordon failed: {exc.reason}")
                await asyncio.sleep(0.2 * (attempt + 1))
        if result is None:
            self.pending.pop(name, None)
            return replace(decision, outcome=Outcome.ALREADY_QUARANTINED if already else Outcome.UNKNOWN_NODE)
        metrics.NODE_ACTIONS.labels("cordon", "ok").inc()
        self.pending[name] = (decision.clusters, time.monotonic())
        self.released.pop(name, None)
        self.node_clusters[name] = decision.clusters
        deadline = time.monotonic() + decision.drain_timeout_seconds
        self.start_remediation(
            name, decision.action, decision.clusters, deadline, decision.spared, decision.ray_workers
        )
        log.warning(
            "node %s: quarantined (cordoned, tainted %s:%s) after %s; eccAction %s for %s",
            name, TAINT_KEY, TAINT_EFFECT, decision.alert.describe(), decision.action.value,
            ", ".join(f"{k[0]}/{k[1]}" for k in decision.clusters) or "the operator-wide default",
        )  # fmt: skip
        return decision

    async def follow_up(self, d: Decision) -> None:
        alert = d.alert
        if d.outcome == Outcome.UNKNOWN_NODE:
            log.warning("alert %s", d.message)
            return
        if d.outcome in (Outcome.UNMANAGED, Outcome.ALREADY_QUARANTINED):
            log.info("alert %s", d.message)
            return
        if d.outcome == Outcome.RESOLVED:
            log.info("alert %s", d.message)
            touched = [k for k, plans in self.planned.items() if plans.pop(d.node or "", None) is not None]
            self.enqueue_status(touched)
            return
        if d.outcome == Outcome.OBSERVED:
            text = f"{alert.describe()}: {alert.summary or 'GPU warning'}; the node stays in service"
            await self.events(d.node, d.alert_only_clusters, "Warning", "GpuWarning", text)
            return
        if d.outcome == Outcome.FAILED:
            await self.events(d.node, d.clusters, "Warning", "QuarantineFailed", f"{alert.describe()}: {d.message}")
            return
        if d.alert_only_clusters:
            text = (
                f"{alert.describe()} on node {d.node}: {alert.summary or 'uncorrectable ECC errors'}; "
                "spec.health.eccAction is Alert, so the node is left in service"
            )
            await self.events(
                d.node if d.outcome == Outcome.ALERT_ONLY else None, d.alert_only_clusters, "Warning", "GpuAlert", text
            )
        if d.dry_run_clusters:
            await self.record_plan(d)
        if d.outcome == Outcome.HELD:
            await self.hold(d)
        elif d.outcome == Outcome.QUARANTINED:
            text = (
                f"Quarantined node {d.node} after {alert.describe()}: cordoned, tainted "
                f"{TAINT_KEY}={taint_value(alert)}:{TAINT_EFFECT}; eccAction {d.action.value}"
            )
            await self.events(d.node, d.clusters, "Warning", "NodeQuarantined", text)
            self.enqueue_status(d.clusters)
        elif d.outcome == Outcome.ALERT_ONLY and not d.alert_only_clusters:
            await self.node_event(
                d.node or "", "Warning", "GpuAlert", f"{alert.describe()}: the operator-wide default is Alert"
            )

    async def record_plan(self, d: Decision) -> None:
        evictable = 0
        if d.node is not None and d.dry_run_action == EccAction.CORDON_AND_DRAIN:
            bodies = await asyncio.to_thread(self.api.pods_on_node, d.node)
            workers = {f"{k[0]}/{p}" for k, pods in d.ray_workers.items() for p in pods}
            pods = [view_pod_ref(b, CLUSTER_LABEL, ROLE_LABEL) for b in bodies]
            evictable = len([p for p in drain_targets(pods) if f"{p.namespace}/{p.name}" not in workers])
        steps = build_plan(d, evictable)
        now = format_time(datetime.now(UTC))
        reason = d.alert.summary or d.alert.describe()
        for key in d.dry_run_clusters:
            self.planned.setdefault(key, {})[d.node or ""] = PlannedAction(d.node or "", tuple(steps), reason, now)
        metrics.NODE_ACTIONS.labels("plan", "dry_run").inc()
        text = f"Dry run, nothing changed. For {d.alert.describe()} on node {d.node} it would: " + "; ".join(steps)
        log.info("node %s: %s", d.node, text)
        for key in d.dry_run_clusters:
            await self.tc_event(key, "Normal", "DryRun", text)
        self.enqueue_status(d.dry_run_clusters)

    async def hold(self, d: Decision) -> None:
        now = datetime.now(UTC)
        reason = "; ".join(h.message for h in d.holds)
        tripped: list[Key] = []
        if any(h.scope == FLEET for h in d.holds):
            if not self.fleet_breaker.tripped:
                log.warning("fleet-wide circuit breaker tripped: %s", reason)
            self.fleet_breaker = self.fleet_breaker.trip(now, reason)
            metrics.CIRCUIT_BREAKER_TRIPPED.labels(*FLEET).set(1)
        for key in d.clusters:
            before = self.breakers.get(key, Breaker.from_status(self._status(key).get("circuitBreaker")))
            self.breakers[key] = before.trip(now, reason)
            self.tripped_here.add(key)
            metrics.CIRCUIT_BREAKER_TRIPPED.labels(*key).set(1)
            if not before.tripped:
                tripped.append(key)
        metrics.NODE_ACTIONS.labels("cordon", "held").inc()
        text = f"Held: did not quarantine node {d.node} after {d.alert.describe()}: {reason}"
        log.warning("node %s: %s", d.node, text)
        await self.events(d.node, [], "Warning", "QuarantineHeld", text)
        for key in d.clusters:
            if key in tripped:
                message = (
                    f"Circuit breaker tripped: {reason}. Further GPU alerts are only recorded until quarantined "
                    "nodes are released."
                )
                await self.tc_event(key, "Warning", "CircuitBreakerTripped", message)
            await self.tc_event(key, "Warning", "QuarantineHeld", text)
        self.enqueue_status(d.clusters)

    def _status(self, key: Key) -> dict[str, Any]:
        return dict((self.tc(key) or {}).get("status") or {})

    # ---- remediation: Ray workers, in-flight items, drain ----
    def start_remediation(
        self,
        node: str,
        action: EccAction,
        clusters: tuple[Key, ...],
        deadline: float,
        spared: frozenset[str],
        workers: Mapping[Key, tuple[str, ...]] | None = None,
    ) -> None:
        old = self.tasks.pop(node, None)
        if old is not None:
            old.cancel()
        task = asyncio.get_running_loop().create_task(
            self.remediate(node, action, clusters, deadline, spared, dict(workers or {})), name=f"quarantine-{node}"
        )
        self.tasks[node] = task
        task.add_done_callback(lambda t: self.tasks.pop(node, None) if self.tasks.get(node) is t else None)

    async def set_phase(self, node: str, keys: Iterable[Key], phase: QuarantinePhase, message: str) -> None:
        await asyncio.to_thread(self.api.annotate, node, build_phase_patch(phase, message))
        log.info("node %s: %s: %s", node, phase.value, message)
        self.enqueue_status(keys)

    async def remediate(
        self,
        node: str,
        action: EccAction,
        clusters: tuple[Key, ...],
        deadline: float,
        spared: frozenset[str],
        workers: dict[Key, tuple[str, ...]],
    ) -> None:
        started = time.monotonic()
        try:
            if not workers:
                workers = {}
                for p in self.worker_pods(node):
                    if p.key in clusters and not p.deleting:
                        workers.setdefault(p.key, ())
                        workers[p.key] = (*workers[p.key], p.name)
            if any(workers.values()):
                await self.remove_ray_workers(node, workers, deadline)
            if action != EccAction.CORDON_AND_DRAIN:
                names = sorted(p for pods in workers.values() for p in pods)
                removed = f"; removed Ray workers {', '.join(names)}" if names else ""
                await self.set_phase(node, clusters, QuarantinePhase.CORDONED, f"cordoned and tainted{removed}")
                return
            await self.drain(node, clusters, deadline, spared, started)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("node %s: remediation failed; the node stays cordoned", node)
        finally:
            self.finished[node] = time.monotonic()

    def _named_in_raycluster(self, key: Key, pods: Iterable[str]) -> bool:
        named = _first(self.rc_index, key) or frozenset()
        return set(pods) <= set(named)

    def _present(self, node: str, key: Key, pods: Iterable[str]) -> set[str]:
        here = {p.name for p in self.pod_index.get(node) or () if p.key == key}
        return set(pods) & here

    def _backend(self, key: Key) -> str:
        return str(((self.tc(key) or {}).get("spec") or {}).get("backend") or Backend.RAY.value)

    async def remove_ray_workers(self, node: str, workers: dict[Key, tuple[str, ...]], deadline: float) -> None:
        for key, pods in workers.items():
            if self._backend(key) == Backend.RAY.value:
                self.remove.setdefault(key, {}).update({p: node for p in pods})
                self.enqueue_cluster(key)
        for key, pods in workers.items():
            released = await asyncio.to_thread(self._release_items, key, pods)
            if released:
                text = f"Returned {len(released)} in-flight items of workers on quarantined node {node} to the queue"
                log.info("%s/%s: %s", key[0], key[1], text)
                await self.tc_event(key, "Normal", "ItemsRequeued", text)
        handoff = min(deadline, time.monotonic() + RAY_HANDOFF_SECONDS)
        while time.monotonic() < handoff:
            left = {k: self._present(node, k, pods) for k, pods in workers.items()}
            if not any(left.values()):
                break
            if all(self._backend(k) == Backend.RAY.value and self._named_in_raycluster(k, p) for k, p in left.items()):
                break
            await asyncio.sleep(POLL_SECONDS)
        direct: dict[Key, set[str]] = {}
        for key, pods in workers.items():
            left_pods = self._present(node, key, pods)
            if left_pods and not (
                self._backend(key) == Backend.RAY.value and self._named_in_raycluster(key, left_pods)
            ):
                direct[key] = left_pods
        last_try = 0.0
        while True:
            left = {k: self._present(node, k, pods) for k, pods in workers.items()}
            if not any(left.values()) or time.monotonic() > deadline:
                break
            if direct and time.monotonic() - last_try >= EVICT_RETRY_SECONDS:
                last_try = time.monotonic()
                targets = [(k[0], p) for k, pods in direct.items() for p in pods if p in left.get(k, set())]
                results = await self._evict_all(targets)
                metrics.NODE_ACTIONS.labels("evict_ray_worker", "ok").inc(sum(1 for r in results if r.done))
            await asyncio.sleep(POLL_SECONDS)
        left = {k: self._present(node, k, pods) for k, pods in workers.items()}
        for key, pods in workers.items():
            gone = sorted(set(pods) - left.get(key, set()))
            named = self.remove.get(key, {})
            for pod in gone:  # gone: nothing left for workersToDelete to do
                named.pop(pod, None)
            how = (
                "by evicting them (the RayCluster did not name them)"
                if key in direct
                else "through the RayCluster's workersToDelete"
            )
            if gone:
                metrics.NODE_ACTIONS.labels("remove_ray_workers", "ok").inc(len(gone))
                text = (
                    f"Removed Ray workers {', '.join(gone)} from quarantined node {node} {how}; replacements are "
                    "scheduled on healthy nodes"
                )
                await self.tc_event(key, "Normal", "RayWorkersRemoved", text)
            if left.get(key):
                metrics.NODE_ACTIONS.labels("remove_ray_workers", "timeout").inc(len(left[key]))
                text = f"Ray workers {', '.join(sorted(left[key]))} are still on quarantined node {node}"
                await self.tc_event(key, "Warning", "RayWorkersNotRemoved", text)

    def _release_items(self, key: Key, pods: Iterable[str]) -> list[str]:
        tc = self.tc(key)
        if tc is None:
            return []
        try:
            spec = SPECS.parse(TranslationClusterSpec, tc)
            conns = self.connections.for_cluster(key[0], key[1], spec)
            return release_held_by(conns.queue, set(pods))
        except Exception as exc:  # the visibility timeout returns them later
            log.warning("%s/%s: could not return in-flight items to the queue now: %s", key[0], key[1], exc)
            return []

    async def _evict_all(self, targets: list[tuple[str, str]]) -> list[Eviction]:
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(self.pool, self.api.evict, ns, name) for ns, name in targets]
        return list(await asyncio.gather(*futures))

    async def drain(
        self, node: str, clusters: tuple[Key, ...], deadline: float, spared: frozenset[str], started: float
    ) -> None:
        tried: dict[str, tuple[float, Eviction]] = {}
        reported: dict[str, str] = {}
        evicted = 0
        phase = QuarantinePhase.DRAINING
        first = True
        while True:
            bodies = await asyncio.to_thread(self.api.pods_on_node, node)
            by_name = {f"{b['metadata'].get('namespace')}/{b['metadata']['name']}": b for b in bodies}
            pods = [view_pod_ref(b, CLUSTER_LABEL, ROLE_LABEL) for b in bodies]
            targets = drain_targets(pods, spared)
            if first:
                await self.set_phase(node, clusters, phase, f"evicting {len(targets)} pods")
                first = False
            if not targets:
                seconds = time.monotonic() - started
                message = f"drained: evicted {evicted} pods in {seconds:.1f}s; the node stays cordoned"
                await self.set_phase(node, clusters, QuarantinePhase.DRAINED, message)
                metrics.NODE_ACTIONS.labels("drain", "ok").inc()
                await self.events(node, clusters, "Normal", "DrainCompleted", f"Node {node} {message}")
                return
            now = time.monotonic()
            if now > deadline:
                names = ", ".join(f"{p.namespace}/{p.name}" for p in targets[:10])
                blockers = "; ".join(sorted(set(reported.values())))[:600]
                message = f"drain timed out with {len(targets)} pods left ({names}); the node stays cordoned"
                if blockers:
                    message += f". {blockers}"
                await self.set_phase(node, clusters, QuarantinePhase.DRAIN_TIMED_OUT, message)
                metrics.NODE_ACTIONS.labels("drain", "timeout").inc()
                await self.events(node, clusters, "Warning", "DrainTimedOut", f"Node {node}: {message}")
                return
            due = []
            for p in targets:
                ident = f"{p.namespace}/{p.name}"
                last = tried.get(ident)
                if p.deleting or (p.finished and last is not None):
                    continue
                if last is None or (not last[1].done and now - last[0] >= EVICT_RETRY_SECONDS):
                    due.append(p)
            if due:
                results = await self._evict_all([(p.namespace, p.name) for p in due])
                blocked_now: list[str] = []
                for p, r in zip(due, results, strict=True):
                    ident = f"{p.namespace}/{p.name}"
                    tried[ident] = (time.monotonic(), r)
                    metrics.NODE_ACTIONS.labels("evict", r.outcome).inc()
                    if r.outcome == "evicted":
                        evicted += 1
                    if r.outcome in ("blocked", "error"):
                        blocked_now.append(ident)
                        if ident not in reported:
                            labels = (by_name.get(ident, {}).get("metadata") or {}).get("labels") or {}
                            pdbs = await asyncio.to_thread(self.api.blocking_budgets, p.namespace, dict(labels))
                            by = (
                                f" by PodDisruptionBudget {', '.join(p.namespace + '/' + n for n in pdbs)}"
                                if pdbs
                                else ""
                            )
                            verb = "blocked" if r.outcome == "blocked" else "failed"
                            reported[ident] = f"eviction of pod {ident} {verb}{by}: {r.message}"
                            text = f"Drain of node {node}: {reported[ident]}; retrying until drainTimeoutSeconds"
                            log.warning("node %s: %s", node, text)
                            await self.events(node, clusters, "Warning", "DrainBlocked", text)
                    elif ident in reported:
                        del reported[ident]
                blocked = [i for i in reported if i in by_name]
                if blocked and phase != QuarantinePhase.DRAIN_BLOCKED:
                    phase = QuarantinePhase.DRAIN_BLOCKED
                    await self.set_phase(node, clusters, phase, "; ".join(reported[i] for i in blocked[:3]))
                elif not blocked and phase == QuarantinePhase.DRAIN_BLOCKED:
                    phase = QuarantinePhase.DRAINING
                    await self.set_phase(node, clusters, phase, f"evicting {len(targets)} pods")
            await asyncio.sleep(POLL_SECONDS)

    # ---- node watch: releases and resumed drains ----
    async def on_node(self, event_type: str | None, body: dict[str, Any], view: NodeView | None = None) -> None:
        view = view or view_node(body)
        name = view.name
        known = self.node_clusters.get(name, ())
        if event_type == "DELETED":
            task = self.tasks.pop(name, None)
            if task is not None:
                task.cancel()
            self.pending.pop(name, None)
            self.node_clusters.pop(name, None)
            self.enqueue_status(known)
            return
        if view.quarantined:
            self.node_clusters[name] = view.clusters
        if view.quarantined or known:
            self.enqueue_status(set(view.clusters) | set(known))
        if not is_managed(view, self.settings) or name in self.releasing:
            return
        reason = release_reason(view)
        if reason is not None:
            self.releasing.add(name)
            self.spawn(self.release(view, reason), f"release-{name}")
        elif (
            view.quarantined
            and view.phase in IN_PROGRESS
            and name not in self.tasks
            and name not in self.quarantining
            and name not in self.pending
            and time.monotonic() - self.finished.get(name, -PENDING_SECONDS) > PENDING_SECONDS
        ):
            self.resume(view)

    def resume(self, view: NodeView) -> None:
        """Carry on with a quarantine another operator process started (after a restart or a new leader)."""
        wall = parse_time(view.annotations.get(DRAIN_DEADLINE_ANNOTATION))
        remaining = (wall - datetime.now(UTC)).total_seconds() if wall else self.settings.drain_timeout_seconds
        deadline = time.monotonic() + max(0.0, remaining)
        on_node = self.clusters_on_node(view.name)
        spared = frozenset(
            f"{c.key[0]}/{p}"
            for c in on_node
            if c.key not in view.clusters and (c.policy.dry_run or c.policy.action == EccAction.ALERT)
            for p in c.pods
        )
        log.info("node %s: resuming its quarantine (%s)", view.name, view.phase.value if view.phase else "")
        self.start_remediation(view.name, view.action or EccAction.CORDON, view.clusters, deadline, spared)

    async def release(self, view: NodeView, reason: str) -> None:
        name = view.name
        try:
            task = self.tasks.pop(name, None)
            if task is not None:
                task.cancel()
            uncordon = reason == "annotation" and view.annotations.get(CORDONED_ANNOTATION) == "true"

            def build(body: dict[str, Any]) -> dict[str, Any] | None:
                current = view_node(body)
                annotations = current.annotations
                if not (
                    current.quarantined
                    or current.tainted
                    or any(k in annotations for k in (*QUARANTINE_ANNOTATIONS, RELEASE_ANNOTATION))
                ):
                    return None
                return build_release_patch(current, uncordon)

            try:
                await asyncio.to_thread(self.api.patch_guarded, name, build, None)
            except ApiException as exc:
                metrics.NODE_ACTIONS.labels("release", "error").inc()
                log.error("node %s: could not release it: %s %s", name, exc.status, exc.reason)
                return
            async with self.lock:
                self.pending.pop(name, None)
                self.released[name] = time.monotonic()
            for pods in self.remove.values():
                for pod in [p for p, n in pods.items() if n == name]:
                    del pods[pod]
            clusters = view.clusters or self.node_clusters.get(name, ())
            metrics.NODE_ACTIONS.labels("release", "ok").inc()
            done = "removed its taint, label and annotations" + ("; uncordoned it" if uncordon else "")
            text = f"Node {name} released ({reason}): {done}"
            log.info("node %s: released (%s): %s", name, reason, done)
            await self.events(name, clusters, "Normal", "NodeReleased", text)
            self.settle_breakers()
            self.enqueue_status(clusters)
            self.enqueue_status(self.breakers)
        finally:
            self.releasing.discard(name)

    def settle_breakers(self) -> None:
        fleet = self.fleet()
        count, limit = fleet_limit(fleet, self.settings)
        if self.fleet_breaker.tripped and count < limit:
            log.info("fleet-wide circuit breaker reset: %d of at most %d nodes quarantined", count, limit)
        self.fleet_breaker = self.fleet_breaker.settle(count, limit)
        metrics.CIRCUIT_BREAKER_TRIPPED.labels(*FLEET).set(int(self.fleet_breaker.tripped))

    # ---- status ----
    async def sync_status(self, key: Key) -> Result:
        tc = self.tc(key)
        if tc is None or tc.get("metadata", {}).get("deletionTimestamp"):
            self.status.forget(key)
            self.breakers.pop(key, None)
            self.tripped_here.discard(key)
            self.planned.pop(key, None)
            for gauge in (metrics.QUARANTINED_NODES, metrics.CIRCUIT_BREAKER_TRIPPED):
                with contextlib.suppress(KeyError):
                    gauge.remove(*key)
            return Result.forget()
        status = dict(tc.get("status") or {})
        policy = self.policy(key)
        fleet = self.fleet(fresh=False)
        if not self.judges(key, fleet, status):
            # none of the cluster's nodes is this process' to manage (PORTALIS_MANAGED_NODE_SELECTOR): its health
            # status, breaker included, is left to the Portalis process that manages them; the metrics show it
            self.breakers.pop(key, None)
            shown = compute_health_status(key, fleet, None)
            metrics.QUARANTINED_NODES.labels(*key).set(len(shown["quarantinedNodes"]))
            tripped = bool((status.get("circuitBreaker") or {}).get("tripped"))
            metrics.CIRCUIT_BREAKER_TRIPPED.labels(*key).set(int(tripped))
            return Result()
        breaker = self.breakers.get(key)
        if breaker is None and status.get("circuitBreaker"):
            breaker = Breaker.from_status(status["circuitBreaker"])
        if breaker is not None:
            count, limit = cluster_limit(key, policy, fleet)
            fleet_count, fleet_max = fleet_limit(fleet, self.settings)
            if breaker.tripped and count < limit and fleet_count < fleet_max:
                breaker = Breaker()
                text = f"Circuit breaker reset: {count} of at most {limit} nodes quarantined"
                log.info("%s/%s: %s", key[0], key[1], text)
                await self.tc_event(key, "Normal", "CircuitBreakerReset", text)
            self.breakers[key] = breaker
        if policy.dry_run:
            if key not in self.planned:
                self.planned[key] = {
                    p["node"]: PlannedAction(
                        p["node"], tuple(p.get("actions") or ()), p.get("reason") or "", p.get("time") or ""
                    )
                    for p in status.get("plannedNodeActions") or []
                    if p.get("node")
                }
            planned = list(self.planned[key].values())
        else:
            self.planned.pop(key, None)
            planned = []
        desired = compute_health_status(key, fleet, breaker, planned)
        metrics.QUARANTINED_NODES.labels(*key).set(len(desired["quarantinedNodes"]))
        metrics.CIRCUIT_BREAKER_TRIPPED.labels(*key).set(int(bool(breaker and breaker.tripped)))
        if health_status_changed(status, desired):
            ref = Ref(TC_API_VERSION, "TranslationCluster", key[0], key[1], tc.get("metadata", {}).get("uid", ""))
            await asyncio.to_thread(self.kube.patch_status, ref, desired)
        return Result()

    def judges(self, key: Key, fleet: Fleet, status: dict[str, Any]) -> bool:
        """Whether this process may write the cluster's health status: it tripped the cluster's breaker, or a
        node the cluster runs on, has quarantined, or lists in its status is one this process manages."""
        if key in self.tripped_here:
            return True
        names = set(fleet.cluster_nodes.get(key, ()))
        names.update(n for n in self.shown_quarantined() if n in fleet.nodes and key in fleet.nodes[n].clusters)
        names.update(str(e.get("name")) for e in status.get("quarantinedNodes") or [] if isinstance(e, dict))
        return bool(names & fleet.managed)

    async def stop(self) -> None:
        for task in [*self.tasks.values(), *self.background]:
            task.cancel()
        await self.status.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)


CONTEXT: HealthController | None = None


# ---- what other parts of the operator call --------------------------------------------------------------


def submit_alerts(payload: WebhookPayload) -> bool:
    """Hand a notification to the controller (the webhook receiver and the poller call this on the loop).

    Returns False while the controller has not started, which the receiver answers with 503.
    """
    ctx = CONTEXT
    if ctx is None:
        return False
    return ctx.submit(payload)


def pods_to_remove(key: Key) -> set[str]:
    """Worker pods of cluster ``key`` on quarantined nodes, for the RayCluster's ``workersToDelete``.

    The cluster controller's reconcile adds these to the names its scaler chose; once a pod is gone it drops
    out of the set, and so out of ``workersToDelete``.
    """
    ctx = CONTEXT
    if ctx is None:
        return set()
    names = ctx.remove.get(key)
    if not names:
        return set()
    for pod, node in list(names.items()):
        if not ctx._present(node, key, [pod]):
            del names[pod]
    if not names:
        ctx.remove.pop(key, None)
    return set(names)


def quarantined_nodes() -> frozenset[str]:
    """Names of the nodes quarantined now (for ``gpus.healthy`` in the cluster's status)."""
    ctx = CONTEXT
    if ctx is None:
        return frozenset()
    # as shows_quarantined(fleet) counts them (less the nodes this process released lately), without a fleet
    now = time.monotonic()
    released = frozenset(name for name, at in ctx.released.items() if now - at <= PENDING_SECONDS)
    shown = ctx.shown_quarantined()
    version = (ctx.shown_version, released)
    if ctx.quarantined_cache is None or ctx.quarantined_cache[0] != version:
        ctx.quarantined_cache = (version, frozenset(shown - released))
    return ctx.quarantined_cache[1]


# ---- handlers ------------------------------------------------------------------------------------------


@kopf.on.startup()
async def health_controller_start(**kwargs: Any) -> None:
    global CONTEXT
    settings = HealthSettings.from_env(os.environ)
    CONTEXT = HealthController(
        Kube.shared(),
        settings,
        kwargs["health_nodes"],
        kwargs["health_pods_by_node"],
        kwargs["health_clusters"],
        kwargs["health_workers_to_delete"],
    )
    CONTEXT.status.start()
    log.info(
        "GPU health: acting on nodes matching %r; default eccAction %s; fleet-wide limit %s",
        settings.managed_selector_text, settings.default_action.value, settings.fleet_max_unavailable,
    )  # fmt: skip


@kopf.on.cleanup()
async def health_controller_stop(**_: Any) -> None:
    global CONTEXT
    ctx, CONTEXT = CONTEXT, None
    if ctx is not None:
        await ctx.stop()


@kopf.on.event("v1", "nodes")
async def health_node_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    ctx = CONTEXT
    if ctx is not None:
        raw = dict(body)
        view = view_node(raw)
        known = ctx.view_cache.get(view.name)
        if type == "DELETED" or known is None or known[1] != view:
            ctx.fleet_version += 1  # what the fleet is built from changed (not a mere heartbeat): rebuild it
        ctx.note_node(view, type == "DELETED")
        await ctx.on_node(type, raw, view)


def fleet_changed() -> None:
    """A worker pod appeared, moved or went: the fleet (which clusters run on which nodes) is out of date."""
    if CONTEXT is not None:
        CONTEXT.fleet_version += 1


@kopf.on.event(GROUP, VERSION, "translationclusters")
async def health_cluster_event(namespace: str | None, name: str, body: kopf.Body, type: str | None, **_: Any) -> None:
    """A cluster's arrival, spec (its health policy) or deletion calls for its health status; its status alone,
    which the cluster controller rewrites with every move of its queue, does not."""
    ctx = CONTEXT
    key = (namespace or "", name)
    if ctx is not None and changed(ctx.cluster_seen, key, None if type == "DELETED" else reconcile_fingerprint(body)):
        ctx.status.enqueue(key)
