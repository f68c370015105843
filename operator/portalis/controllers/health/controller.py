"""The GPU health controller as the composition root builds it: alerts in, quarantines, remediation, releases,
and the health fields of each cluster's status.

All state lives on the Node (label, taint, ``portalis.dev/quarantine*`` and ``portalis.dev/drain*``
annotations), so a restarted operator recomputes status and resumes an unfinished drain from the node watch,
and the cluster controller reads from the Node which of its Ray workers must leave.
"""

from __future__ import annotations

import logging

from portalis.api.alertmanager import WebhookPayload
from portalis.api.meta import Key
from portalis.clients.connections import Connections
from portalis.clients.kube import Kube
from portalis.clients.nodes import NodeClient
from portalis.controllers.caches import Index, NodeCache, SpecCache
from portalis.controllers.health.quarantine import Quarantine
from portalis.controllers.health.release import NodeWatch
from portalis.controllers.health.remediation import Remediation
from portalis.controllers.health.state import HealthState
from portalis.controllers.health.status import StatusSync
from portalis.controllers.runtime import Controller, Result
from portalis.desired.health import HealthSettings, NodeView

log = logging.getLogger("portalis.health")


class HealthController:
    def __init__(
        self,
        *,
        kube: Kube,
        connections: Connections,
        settings: HealthSettings,
        nodes: NodeCache,
        pods: Index,
        clusters: Index,
        rayclusters: Index,
        specs: SpecCache,
        api: NodeClient | None = None,
    ) -> None:
        loop = Controller("health-status", self._sync, workers=2, resync_seconds=60.0)
        self.state = HealthState(
            kube, api or NodeClient(kube), connections, settings, nodes, pods, clusters, rayclusters, specs, loop
        )
        self.remediation = Remediation(self.state)
        self.quarantine = Quarantine(self.state, self.remediation)
        self.node_watch = NodeWatch(self.state, self.remediation)
        self.status = StatusSync(self.state)

    async def _sync(self, key: Key) -> Result:
        return await self.status.sync(key)

    def start(self) -> None:
        self.state.status.start()
        settings = self.state.settings
        log.info(
            "GPU health: acting on nodes matching %r; default eccAction %s; fleet-wide limit %s",
            settings.managed_selector_text,
            settings.default_action.value,
            settings.fleet_max_unavailable,
        )

    async def stop(self) -> None:
        state = self.state
        for task in [*state.tasks.values(), *state.background]:
            task.cancel()
        await state.status.stop()
        state.pool.shutdown(wait=False, cancel_futures=True)

    # ---- inputs ----
    def submit(self, payload: WebhookPayload) -> bool:
        """A notification from the webhook receiver or the poller (on the event loop)."""
        return self.quarantine.submit(payload)

    async def on_node(self, event_type: str | None, view: NodeView) -> None:
        """A node's watch event, as the node's view."""
        state = self.state
        if event_type == "DELETED":
            state.known_views.pop(view.name, None)
            state.nodes.gone(view.name)
            state.fleet_version += 1
        elif state.known_views.get(view.name) != view:
            state.known_views[view.name] = view
            state.fleet_version += 1  # what the fleet is built from changed (not a mere heartbeat): rebuild it
        await self.node_watch.on_node(event_type, view)

    def fleet_changed(self) -> None:
        """A worker pod appeared, moved or went: the fleet (which clusters run on which nodes) is out of date."""
        self.state.fleet_version += 1

    def enqueue_status(self, key: Key) -> None:
        self.state.status.enqueue(key)
