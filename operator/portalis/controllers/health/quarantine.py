"""GPU alerts into quarantines: each alert (from the ``/alerts`` receiver or the dcgm-exporter poller) gets a
task; under one lock the task observes the fleet, ``decide``s with the pure policy of
``portalis.desired.health`` and, when the decision is to quarantine, cordons, taints, labels and annotates the
node with one merge patch guarded by its resourceVersion. Outside the lock it records Events, dry-run plans and
tripped breakers, and starts the node's remediation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from portalis import metrics
from portalis.api.alertmanager import WebhookPayload
from portalis.api.meta import Key, format_time
from portalis.api.v1alpha1.cluster import EccAction
from portalis.controllers.health.remediation import Remediation
from portalis.controllers.health.state import HealthState
from portalis.desired.health import (
    FLEET,
    TAINT_EFFECT,
    TAINT_KEY,
    AlertDecision,
    Breaker,
    ClusterOnNode,
    GpuAlert,
    Outcome,
    PlannedAction,
    alerts_from_payload,
    build_dry_run_plan,
    build_quarantine_patch,
    decide,
    drain_targets,
    resolve_node,
    taint_value,
    view_node,
)
from portalis.desired.podview import view_pod

log = logging.getLogger("portalis.health")


class Quarantine:
    def __init__(self, state: HealthState, remediation: Remediation) -> None:
        self.state = state
        self.remediation = remediation

    def submit(self, payload: WebhookPayload) -> bool:
        for alert in alerts_from_payload(payload):
            self.state.spawn(self.handle_alert(alert), f"alert-{alert.name}")
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

    async def decide_and_cordon(self, alert: GpuAlert) -> AlertDecision:
        state = self.state
        async with state.lock:
            fleet = state.fleet()
            node = resolve_node(alert.labels, fleet.nodes)
            on_node: list[ClusterOnNode] = []
            if node is not None and node in fleet.managed and alert.firing:
                # which clusters' workers run there decides the policy: read it fresh, not from the watch cache
                try:
                    bodies = await asyncio.to_thread(state.api.pods_on_node, node)
                except ApiException as exc:
                    log.warning("node %s: cannot list its pods (%s); using the watch cache", node, exc.reason)
                    bodies = None
                on_node = state.clusters_on_node(node, bodies)
            decision = decide(alert, fleet, on_node, state.settings)
            if decision.outcome != Outcome.QUARANTINED or decision.node is None:
                return decision
            name = decision.node
            # counted as quarantined from now on: the node watch may report the patch before it returns here
            state.pending[name] = (decision.clusters, time.monotonic())
            state.quarantining.add(name)
            try:
                return await self._cordon(decision, name)
            finally:
                state.quarantining.discard(name)

    async def _cordon(self, decision: AlertDecision, name: str) -> AlertDecision:
        state = self.state
        now = datetime.now(UTC)
        already = False

        def build(body: dict[str, Any]) -> dict[str, Any] | None:
            nonlocal already
            current = view_node(body)
            if current.quarantined:
                already = True
                return None
            return build_quarantine_patch(current, decision, state.settings.identity, now)

        result = None
        for attempt in range(3):
            try:
                result = await asyncio.to_thread(state.api.patch_guarded, name, build, state.node_body(name))
                break
            except ApiException as exc:
                if attempt == 2:
                    state.pending.pop(name, None)
                    metrics.NODE_ACTIONS.labels("cordon", "error").inc()
                    log.error("node %s: could not cordon and taint it: %s %s", name, exc.status, exc.reason)
                    return replace(decision, outcome=Outcome.FAILED, message=f"cordon failed: {exc.reason}")
                await asyncio.sleep(0.2 * (attempt + 1))
        if result is None:
            state.pending.pop(name, None)
            return replace(decision, outcome=Outcome.ALREADY_QUARANTINED if already else Outcome.UNKNOWN_NODE)
        state.nodes.wrote(name, result)  # every controller sees the quarantine from now on
        metrics.NODE_ACTIONS.labels("cordon", "ok").inc()
        state.pending[name] = (decision.clusters, time.monotonic())
        state.released.pop(name, None)
        state.node_clusters[name] = decision.clusters
        deadline = time.monotonic() + decision.drain_timeout_seconds
        self.remediation.start(
            name, decision.action, decision.clusters, deadline, decision.spared, decision.ray_workers
        )
        log.warning(
            "node %s: quarantined (cordoned, tainted %s:%s) after %s; eccAction %s for %s",
            name,
            TAINT_KEY,
            TAINT_EFFECT,
            decision.alert.describe(),
            decision.action.value,
            ", ".join(f"{k[0]}/{k[1]}" for k in decision.clusters) or "the operator-wide default",
        )
        return decision

    async def follow_up(self, d: AlertDecision) -> None:
        state = self.state
        alert = d.alert
        if d.outcome == Outcome.UNKNOWN_NODE:
            log.warning("alert %s", d.message)
            return
        if d.outcome in (Outcome.UNMANAGED, Outcome.ALREADY_QUARANTINED):
            log.info("alert %s", d.message)
            return
        if d.outcome == Outcome.RESOLVED:
            log.info("alert %s", d.message)
            touched = [k for k, plans in state.planned.items() if plans.pop(d.node or "", None) is not None]
            state.enqueue_status(touched)
            return
        if d.outcome == Outcome.OBSERVED:
            text = f"{alert.describe()}: {alert.summary or 'GPU warning'}; the node stays in service"
            await state.events(d.node, d.alert_only_clusters, "Warning", "GpuWarning", text)
            return
        if d.outcome == Outcome.FAILED:
            await state.events(d.node, d.clusters, "Warning", "QuarantineFailed", f"{alert.describe()}: {d.message}")
            return
        if d.alert_only_clusters:
            text = (
                f"{alert.describe()} on node {d.node}: {alert.summary or 'uncorrectable ECC errors'}; "
                "spec.health.eccAction is Alert, so the node is left in service"
            )
            node = d.node if d.outcome == Outcome.ALERT_ONLY else None
            await state.events(node, d.alert_only_clusters, "Warning", "GpuAlert", text)
        if d.dry_run_clusters:
            await self.record_plan(d)
        if d.outcome == Outcome.HELD:
            await self.hold(d)
        elif d.outcome == Outcome.QUARANTINED:
            text = (
                f"Quarantined node {d.node} after {alert.describe()}: cordoned, tainted "
                f"{TAINT_KEY}={taint_value(alert)}:{TAINT_EFFECT}; eccAction {d.action.value}"
            )
            await state.events(d.node, d.clusters, "Warning", "NodeQuarantined", text)
            state.enqueue_status(d.clusters)
        elif d.outcome == Outcome.ALERT_ONLY and not d.alert_only_clusters:
            await state.node_event(
                d.node or "", "Warning", "GpuAlert", f"{alert.describe()}: the operator-wide default is Alert"
            )

    async def record_plan(self, d: AlertDecision) -> None:
        state = self.state
        evictable = 0
        if d.node is not None and d.dry_run_action == EccAction.CORDON_AND_DRAIN:
            bodies = await asyncio.to_thread(state.api.pods_on_node, d.node)
            workers = {f"{k[0]}/{p}" for k, pods in d.ray_workers.items() for p in pods}
            pods = [view_pod(b) for b in bodies]
            evictable = len([p for p in drain_targets(pods) if f"{p.namespace}/{p.name}" not in workers])
        steps = build_dry_run_plan(d, evictable)
        now = format_time(datetime.now(UTC))
        reason = d.alert.summary or d.alert.describe()
        for key in d.dry_run_clusters:
            state.planned.setdefault(key, {})[d.node or ""] = PlannedAction(d.node or "", tuple(steps), reason, now)
        metrics.NODE_ACTIONS.labels("plan", "dry_run").inc()
        text = f"Dry run, nothing changed. For {d.alert.describe()} on node {d.node} it would: " + "; ".join(steps)
        log.info("node %s: %s", d.node, text)
        for key in d.dry_run_clusters:
            await state.tc_event(key, "Normal", "DryRun", text)
        state.enqueue_status(d.dry_run_clusters)

    async def hold(self, d: AlertDecision) -> None:
        state = self.state
        now = datetime.now(UTC)
        reason = "; ".join(h.message for h in d.holds)
        tripped: list[Key] = []
        if any(h.scope == FLEET for h in d.holds):
            if not state.fleet_breaker.tripped:
                log.warning("fleet-wide circuit breaker tripped: %s", reason)
            state.fleet_breaker = state.fleet_breaker.trip(now, reason)
            metrics.CIRCUIT_BREAKER_TRIPPED.labels(*FLEET).set(1)
        for key in d.clusters:
            before = state.breakers.get(key, Breaker.from_status(state.cluster_status(key).get("circuitBreaker")))
            state.breakers[key] = before.trip(now, reason)
            state.tripped_here.add(key)
            metrics.CIRCUIT_BREAKER_TRIPPED.labels(*key).set(1)
            if not before.tripped:
                tripped.append(key)
        metrics.NODE_ACTIONS.labels("cordon", "held").inc()
        text = f"Held: did not quarantine node {d.node} after {d.alert.describe()}: {reason}"
        log.warning("node %s: %s", d.node, text)
        await state.events(d.node, [], "Warning", "QuarantineHeld", text)
        for key in d.clusters:
            if key in tripped:
                message = (
                    f"Circuit breaker tripped: {reason}. Further GPU alerts are only recorded until quarantined "
                    "nodes are released."
                )
                await state.tc_event(key, "Warning", "CircuitBreakerTripped", message)
            await state.tc_event(key, "Warning", "QuarantineHeld", text)
        state.enqueue_status(d.clusters)
