"""The composition root: the one place where the operator's clients, caches and controllers are built and wired.

``portalis operator run`` makes a ``Portalis`` from the settings (``portalis.config``) before kopf starts and
hands it to kopf as the operator-level memo; kopf's start-up handler here builds the controllers on the shared
watch caches (``controllers.watches``) and starts them, and the clean-up handler stops them. A run without one
(``kopf run``, ``kopf.testing.KopfRunner``) gets one made from the environment. Nothing is kept in module
globals: every handler finds the root in its memo.

The controllers do not call each other. They read the same watch caches and talk through the API objects: the
cluster controller reads from the Nodes which workers the health controller's quarantines remove; the queue
observer feeds both scaling (a backlog change enqueues the cluster) and job progress (the jobs whose items moved,
and the jobs of a queue that emptied).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from portalis import metrics
from portalis.api.alertmanager import WebhookPayload
from portalis.api.meta import Key
from portalis.clients.alerts import AlertReceiver
from portalis.clients.connections import Connections
from portalis.clients.dcgm import DcgmPoller
from portalis.clients.kube import Kube
from portalis.clock import MeteringClock
from portalis.config import OperatorConfig
from portalis.controllers import settings as kopf_settings
from portalis.controllers import watches
from portalis.controllers.caches import NodeCache, ObjectCache, SpecCache, cluster_of_job
from portalis.controllers.cluster import ClusterController
from portalis.controllers.health import HealthController
from portalis.controllers.job import JobController
from portalis.controllers.observer import QueueObserver
from portalis.controllers.redis_gate import RedisGate
from portalis.desired.cluster_status import reconcile_fingerprint
from portalis.desired.health import NodeView, view_node
from portalis.desired.job_status import cluster_fingerprint

log = logging.getLogger("portalis")


def quarantine_fingerprint(view: NodeView) -> tuple[Any, ...]:
    """What of a Node the cluster controller reads: whether it is quarantined, and for which clusters."""
    return view.quarantined, view.clusters


IN_SERVICE = (False, ())  # the fingerprint of a node that is not quarantined


class Portalis:
    """Everything the operator process runs, built once."""

    def __init__(self, config: OperatorConfig, kube: Kube | None = None) -> None:
        self.config = config
        self.kube = kube if kube is not None else Kube.from_kubeconfig()
        self.connections = Connections(self.kube)
        self.gate = RedisGate()
        self.specs = SpecCache()
        self.job_cache = ObjectCache(cluster_of_job)
        self.clock = MeteringClock(config.clock_offset_file)
        self.started = False
        self.tasks: list[asyncio.Task[None]] = []
        self.receiver: AlertReceiver | None = None
        # what of each TranslationCluster its last event showed: for its own and its health status' reconciles,
        # and for its jobs
        self.cluster_seen: dict[Key, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
        self.node_seen: dict[str, tuple[Any, ...]] = {}
        self._clusters: ClusterController | None = None
        self._jobs: JobController | None = None
        self._health: HealthController | None = None

    @property
    def clusters(self) -> ClusterController:
        assert self._clusters is not None, "the operator has not started"
        return self._clusters

    @property
    def jobs(self) -> JobController:
        assert self._jobs is not None, "the operator has not started"
        return self._jobs

    @property
    def health(self) -> HealthController:
        assert self._health is not None, "the operator has not started"
        return self._health

    # ---- start and stop ----
    async def start(self, indexes: Mapping[str, Any]) -> None:
        """Build the controllers on kopf's indexes (``watches.INDEXES``, by name) and start them."""
        clusters = indexes["clusters"]
        pods = indexes["cluster_pods"]
        nodes = NodeCache(indexes["nodes"])
        observer = QueueObserver(clusters, self.specs, self.connections, self.gate)
        self._clusters = ClusterController(
            kube=self.kube,
            connections=self.connections,
            gate=self.gate,
            observer=observer,
            clusters=clusters,
            rayclusters=indexes["rayclusters"],
            daskclusters=indexes["daskclusters"],
            pods=pods,
            nodes=nodes,
            jobs=self.job_cache,
            specs=self.specs,
            config=self.config,
            clock=self.clock,
        )
        self._jobs = JobController(
            jobs=self.job_cache,
            clusters=clusters,
            pods=pods,
            nodes=nodes,
            kube=self.kube,
            connections=self.connections,
            gate=self.gate,
            observer=observer,
            specs=self.specs,
            config=self.config,
        )
        self._health = HealthController(
            kube=self.kube,
            connections=self.connections,
            settings=self.config.health,
            nodes=nodes,
            pods=pods,
            clusters=clusters,
            rayclusters=indexes["rayclusters"],
            specs=self.specs,
        )
        observer.on_backlog = self._clusters.enqueue
        observer.on_progress = self._jobs.on_progress
        observer.on_emptied = self._jobs.on_emptied
        self._clusters.start()
        self._jobs.start()
        self._health.start()
        self.tasks.append(asyncio.create_task(observer.run(), name="queue-observer"))
        self.started = True
        await self._start_alert_inputs()

    async def _start_alert_inputs(self) -> None:
        """The GPU alert inputs: the Alertmanager webhook receiver (``--webhook-port``) and, with
        ``PORTALIS_DCGM_ENDPOINTS``, the dcgm-exporter poller. (kopf serves /healthz only after this.)"""
        config = self.config
        if config.webhook_port:
            self.receiver = AlertReceiver(
                self.submit_alerts,
                config.webhook_token_file,
                config.webhook_host,
                config.webhook_port,
                on_rejected=lambda reason: metrics.ALERTS_RECEIVED.labels("", reason).inc(),
            )
            await self.receiver.start()
        if config.dcgm_endpoints:
            poller = DcgmPoller(config.dcgm_endpoints, self.submit_alerts, config.dcgm_poll_seconds)
            self.tasks.append(asyncio.create_task(poller.run(), name="dcgm-poll"))

    async def stop(self) -> None:
        if self.receiver is not None:
            await self.receiver.stop()
            self.receiver = None
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        for controller in (self._clusters, self._jobs, self._health):
            if controller is not None:
                await controller.stop()
        self.started = False

    # ---- inputs ----
    def submit_alerts(self, payload: WebhookPayload) -> bool:
        """A notification from the Alertmanager webhook receiver or the dcgm-exporter poller; False while the
        operator has not started (the receiver answers 503)."""
        if self._health is None or not self.started:
            return False
        return self._health.submit(payload)

    def cluster_event(self, key: Key, body: dict[str, Any], deleted: bool) -> None:
        """A cluster's arrival, spec, metadata or deletion calls for its reconcile and its health status; a change
        of its status alone (both write it) does not. Its jobs look again when what they depend on changed."""
        before = self.cluster_seen.get(key)
        if deleted:
            self.cluster_seen.pop(key, None)
            mine, theirs = None, None
        else:
            mine, theirs = reconcile_fingerprint(body), cluster_fingerprint(body)
            self.cluster_seen[key] = (mine, theirs)
        if before is None or mine != before[0]:
            self.clusters.enqueue(key)
            self.health.enqueue_status(key)
        if before is None or theirs != before[1]:
            self.jobs.on_cluster(key)

    async def node_event(self, body: dict[str, Any], deleted: bool, event_type: str | None) -> None:
        """A Node's event: the health controller's node watch, and the clusters running on it when its quarantine
        changed (the Node is how a quarantine reaches them)."""
        view = view_node(body)
        seen = IN_SERVICE if deleted else quarantine_fingerprint(view)
        if self.node_seen.get(view.name, IN_SERVICE) != seen:  # (kept only for nodes not in service)
            if seen == IN_SERVICE:
                self.node_seen.pop(view.name, None)
            else:
                self.node_seen[view.name] = seen
            self.clusters.on_node(view.name)
        await self.health.on_node(event_type, view)


# ---- kopf's handlers of the operator's life ------------------------------------------------------------------


@kopf.on.startup()
async def portalis_start(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    """kopf's settings, then the controllers on the shared watch caches (kopf passes its indexes by name)."""
    await kopf_settings.configure(settings)
    root: Portalis | None = getattr(memo, "portalis", None)
    if root is None:
        root = Portalis(OperatorConfig.from_env())
        memo.portalis = root
    await root.start({name: kwargs[name] for name in watches.INDEXES})


@kopf.on.cleanup()
async def portalis_stop(memo: kopf.Memo, **_: Any) -> None:
    root: Portalis | None = getattr(memo, "portalis", None)
    if root is not None:
        await root.stop()
