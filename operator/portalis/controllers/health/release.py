"""The node watch of the health controller: it notices releases and unfinished quarantines.

A person releases a node by uncordoning it, removing the taint or the label, or annotating it
``portalis.dev/release=true``; Portalis then removes whatever of its marks are left. A quarantine another
operator process started (before a restart, or under another leader) and did not finish is carried on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from portalis import metrics
from portalis.api.meta import parse_time
from portalis.api.v1alpha1.cluster import EccAction, QuarantinePhase
from portalis.controllers.health.remediation import Remediation
from portalis.controllers.health.state import PENDING_SECONDS, HealthState
from portalis.desired.health import (
    CORDONED_ANNOTATION,
    DRAIN_DEADLINE_ANNOTATION,
    QUARANTINE_ANNOTATIONS,
    RELEASE_ANNOTATION,
    NodeView,
    build_release_patch,
    is_managed,
    release_reason,
    view_node,
)

log = logging.getLogger("portalis.health")

IN_PROGRESS = (QuarantinePhase.REMOVING_WORKERS, QuarantinePhase.DRAINING, QuarantinePhase.DRAIN_BLOCKED)


class NodeWatch:
    def __init__(self, state: HealthState, remediation: Remediation) -> None:
        self.state = state
        self.remediation = remediation

    async def on_node(self, event_type: str | None, view: NodeView) -> None:
        state = self.state
        name = view.name
        known = state.node_clusters.get(name, ())
        if event_type == "DELETED":
            task = state.tasks.pop(name, None)
            if task is not None:
                task.cancel()
            state.pending.pop(name, None)
            state.node_clusters.pop(name, None)
            state.enqueue_status(known)
            return
        if view.quarantined:
            state.node_clusters[name] = view.clusters
        if view.quarantined or known:
            state.enqueue_status(set(view.clusters) | set(known))
        if not is_managed(view, state.settings) or name in state.releasing:
            return
        reason = release_reason(view)
        if reason is not None:
            state.releasing.add(name)
            state.spawn(self.release(view, reason), f"release-{name}")
        elif (
            view.quarantined
            and view.phase in IN_PROGRESS
            and name not in state.tasks
            and name not in state.quarantining
            and name not in state.pending
            and time.monotonic() - state.finished.get(name, -PENDING_SECONDS) > PENDING_SECONDS
        ):
            self.resume(view)

    def resume(self, view: NodeView) -> None:
        """Carry on with a quarantine another operator process started (after a restart or a new leader)."""
        state = self.state
        wall = parse_time(view.annotations.get(DRAIN_DEADLINE_ANNOTATION))
        remaining = (wall - datetime.now(UTC)).total_seconds() if wall else state.settings.drain_timeout_seconds
        deadline = time.monotonic() + max(0.0, remaining)
        on_node = state.clusters_on_node(view.name)
        spared = frozenset(
            f"{c.key[0]}/{p}"
            for c in on_node
            if c.key not in view.clusters and (c.policy.dry_run or c.policy.action == EccAction.ALERT)
            for p in c.pods
        )
        log.info("node %s: resuming its quarantine (%s)", view.name, view.phase.value if view.phase else "")
        self.remediation.start(view.name, view.action or EccAction.CORDON, view.clusters, deadline, spared)

    async def release(self, view: NodeView, reason: str) -> None:
        state = self.state
        name = view.name
        try:
            task = state.tasks.pop(name, None)
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
                result = await asyncio.to_thread(state.api.patch_guarded, name, build, None)
            except ApiException as exc:
                metrics.NODE_ACTIONS.labels("release", "error").inc()
                log.error("node %s: could not release it: %s %s", name, exc.status, exc.reason)
                return
            if result is not None:
                state.nodes.wrote(name, result)  # every controller sees the release from now on
            async with state.lock:
                state.pending.pop(name, None)
                state.released[name] = time.monotonic()
            clusters = view.clusters or state.node_clusters.get(name, ())
            metrics.NODE_ACTIONS.labels("release", "ok").inc()
            done = "removed its taint, label and annotations" + ("; uncordoned it" if uncordon else "")
            text = f"Node {name} released ({reason}): {done}"
            log.info("node %s: released (%s): %s", name, reason, done)
            await state.events(name, clusters, "Normal", "NodeReleased", text)
            state.settle_breakers()
            state.enqueue_status(clusters)
            state.enqueue_status(state.breakers)
        finally:
            state.releasing.discard(name)
