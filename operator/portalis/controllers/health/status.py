"""The health fields of each TranslationCluster's status: ``quarantinedNodes``, ``circuitBreaker`` and
``plannedNodeActions``, which this controller owns and writes with its own merge patch (the cluster controller
never writes them)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from portalis import metrics
from portalis.api.meta import API_VERSION, Key
from portalis.clients.kube import Ref
from portalis.controllers.health.state import HealthState
from portalis.controllers.runtime import Result
from portalis.desired.health import (
    Breaker,
    Fleet,
    PlannedAction,
    cluster_limit,
    compute_health_status,
    fleet_limit,
    health_status_changed,
)

log = logging.getLogger("portalis.health")


class StatusSync:
    def __init__(self, state: HealthState) -> None:
        self.state = state

    async def sync(self, key: Key) -> Result:
        state = self.state
        tc = state.tc(key)
        if tc is None or tc.get("metadata", {}).get("deletionTimestamp"):
            state.status.forget(key)
            state.breakers.pop(key, None)
            state.tripped_here.discard(key)
            state.planned.pop(key, None)
            for gauge in (metrics.QUARANTINED_NODES, metrics.CIRCUIT_BREAKER_TRIPPED):
                with contextlib.suppress(KeyError):
                    gauge.remove(*key)
            return Result.forget()
        status = dict(tc.get("status") or {})
        policy = state.policy(key)
        fleet = state.fleet(fresh=False)
        if not self.judges(key, fleet, status):
            # none of the cluster's nodes is this process' to manage (PORTALIS_MANAGED_NODE_SELECTOR): its health
            # status, breaker included, is left to the Portalis process that manages them; the metrics show it
            state.breakers.pop(key, None)
            shown = compute_health_status(key, fleet, None)
            metrics.QUARANTINED_NODES.labels(*key).set(len(shown["quarantinedNodes"]))
            tripped = bool((status.get("circuitBreaker") or {}).get("tripped"))
            metrics.CIRCUIT_BREAKER_TRIPPED.labels(*key).set(int(tripped))
            return Result()
        breaker = state.breakers.get(key)
        if breaker is None and status.get("circuitBreaker"):
            breaker = Breaker.from_status(status["circuitBreaker"])
        if breaker is not None:
            count, limit = cluster_limit(key, policy, fleet)
            fleet_count, fleet_max = fleet_limit(fleet, state.settings)
            if breaker.tripped and count < limit and fleet_count < fleet_max:
                breaker = Breaker()
                text = f"Circuit breaker reset: {count} of at most {limit} nodes quarantined"
                log.info("%s/%s: %s", key[0], key[1], text)
                await state.tc_event(key, "Normal", "CircuitBreakerReset", text)
            state.breakers[key] = breaker
        if policy.dry_run:
            if key not in state.planned:
                state.planned[key] = {
                    p["node"]: PlannedAction(
                        p["node"], tuple(p.get("actions") or ()), p.get("reason") or "", p.get("time") or ""
                    )
                    for p in status.get("plannedNodeActions") or []
                    if p.get("node")
                }
            planned = list(state.planned[key].values())
        else:
            state.planned.pop(key, None)
            planned = []
        desired = compute_health_status(key, fleet, breaker, planned)
        metrics.QUARANTINED_NODES.labels(*key).set(len(desired["quarantinedNodes"]))
        metrics.CIRCUIT_BREAKER_TRIPPED.labels(*key).set(int(bool(breaker and breaker.tripped)))
        if health_status_changed(status, desired):
            ref = Ref(API_VERSION, "TranslationCluster", key[0], key[1], tc.get("metadata", {}).get("uid", ""))
            await asyncio.to_thread(state.kube.patch_status, ref, desired)
        return Result()

    def judges(self, key: Key, fleet: Fleet, status: dict[str, Any]) -> bool:
        """Whether this process may write the cluster's health status: it tripped the cluster's breaker, or a
        node the cluster runs on, has quarantined, or lists in its status is one this process manages."""
        if key in self.state.tripped_here:
            return True
        names = set(fleet.cluster_nodes.get(key, ()))
        names.update(n for n in fleet.quarantined if n in fleet.nodes and key in fleet.nodes[n].clusters)
        names.update(str(e.get("name")) for e in status.get("quarantinedNodes") or [] if isinstance(e, dict))
        return bool(names & fleet.managed)
