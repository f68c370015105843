"""What the health controller observes and keeps: the fleet as the watch caches show it, the quarantines and
releases this process is making, the circuit breakers, and the Events it records.

The node watch cache is shared with the cluster controller (``NodeCache``), and a node this process patched is
seen as patched there until the watch brings it back: the Node is what the two controllers share.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import ValidationError

from portalis import metrics
from portalis.api.meta import API_VERSION, Key
from portalis.api.v1alpha1.cluster import Backend, HealthSpec
from portalis.clients.connections import Connections
from portalis.clients.kube import Kube, Ref
from portalis.clients.nodes import NodeClient
from portalis.controllers.caches import Index, NodeCache, SpecCache, first
from portalis.controllers.runtime import Controller
from portalis.desired.health import (
    FLEET,
    Breaker,
    ClusterOnNode,
    Fleet,
    HealthPolicy,
    HealthSettings,
    NodeView,
    PlannedAction,
    build_fleet,
    fleet_limit,
    policy_from_spec,
)
from portalis.desired.pods import ROLE_LABEL
from portalis.desired.podview import view_pod
from portalis.desired.raycluster import named_workers_to_delete

log = logging.getLogger("portalis.health")

PENDING_SECONDS = 30.0  # how long a quarantine this process wrote counts before the watch cache shows it
FLEET_CACHE_SECONDS = 0.5  # how stale the fleet a status report uses may be (decisions always build it anew)


def _worker_node(body: Mapping[str, Any]) -> str | None:
    """The node of a worker pod that is not being deleted (from the body: this runs for every pod of the fleet)."""
    meta = body.get("metadata") or {}
    if (meta.get("labels") or {}).get(ROLE_LABEL) != "worker" or meta.get("deletionTimestamp"):
        return None
    node = (body.get("spec") or {}).get("nodeName")
    return str(node) if node else None


class HealthState:
    def __init__(
        self,
        kube: Kube,
        api: NodeClient,
        connections: Connections,
        settings: HealthSettings,
        nodes: NodeCache,
        pods: Index,
        clusters: Index,
        rayclusters: Index,
        specs: SpecCache,
        status: Controller,
    ) -> None:
        self.kube = kube
        self.api = api
        self.connections = connections
        self.settings = settings
        self.nodes = nodes
        self.pods = pods  # worker pods by cluster (the shared pod index)
        self.clusters = clusters
        self.rayclusters = rayclusters
        self.specs = specs
        self.status = status  # the status sync's loop
        self.lock = asyncio.Lock()
        self.known_views: dict[str, NodeView] = {}  # each node's view as its last event showed it
        self.fleet_cache: tuple[float, Any, Fleet] | None = None  # (when, own pending writes, fleet)
        self.fleet_version = 0  # bumped on every node or worker-pod event that changes the fleet
        self.pending: dict[str, tuple[tuple[Key, ...], float]] = {}  # quarantines written, not yet watched
        self.released: dict[str, float] = {}  # releases written, not yet watched
        self.releasing: set[str] = set()
        self.tasks: dict[str, asyncio.Task[None]] = {}  # remediation per node
        self.background: set[asyncio.Task[Any]] = set()
        self.breakers: dict[Key, Breaker] = {}
        self.fleet_breaker = Breaker()
        self.planned: dict[Key, dict[str, PlannedAction]] = {}
        self.node_clusters: dict[str, tuple[Key, ...]] = {}
        self.quarantining: set[str] = set()  # nodes being patched right now
        self.finished: dict[str, float] = {}  # nodes whose remediation ended lately (no resume from stale events)
        self.tripped_here: set[Key] = set()  # clusters whose breaker this process tripped
        self.pool = ThreadPoolExecutor(16, thread_name_prefix="portalis-evict")

    # ---- observing ----
    def node_body(self, name: str) -> dict[str, Any] | None:
        return self.nodes.get(name)

    def views(self) -> list[NodeView]:
        """Every node's view (a node's view is built again only when its resourceVersion moved)."""
        return [v for name in self.nodes.names() if (v := self.nodes.view(name)) is not None]

    def pod_names_on(self, node: str, key: Key) -> set[str]:
        """Pods of cluster ``key`` on ``node`` now, as the pod watch shows them (those being deleted included)."""
        return {
            str(b["metadata"]["name"])
            for b in self.pods.get(key) or ()
            if (b.get("spec") or {}).get("nodeName") == node
        }

    def workers_on(self, node: str, keys: Iterable[Key]) -> dict[Key, tuple[str, ...]]:
        """The worker pods (not being deleted) of the clusters ``keys`` on ``node``."""
        out: dict[Key, tuple[str, ...]] = {}
        for key in keys:
            names = sorted(str(b["metadata"]["name"]) for b in self.pods.get(key) or () if _worker_node(b) == node)
            if names:
                out[key] = tuple(names)
        return out

    def cluster_nodes(self) -> dict[Key, set[str]]:
        out: dict[Key, set[str]] = {}
        for key, bodies in list(self.pods.items()):
            for b in bodies:
                node = _worker_node(b)
                if node is not None:
                    out.setdefault(key, set()).add(node)
        return out

    def tc(self, key: Key) -> dict[str, Any] | None:
        return first(self.clusters, key)

    def policy(self, key: Key) -> HealthPolicy:
        tc = self.tc(key)
        try:
            spec = HealthSpec.model_validate(((tc or {}).get("spec") or {}).get("health") or {})
        except ValidationError:
            return HealthPolicy()
        return policy_from_spec(spec)

    def backend(self, key: Key) -> str:
        return str(((self.tc(key) or {}).get("spec") or {}).get("backend") or Backend.RAY.value)

    def named_in_raycluster(self, key: Key, pods: Iterable[str]) -> bool:
        return set(pods) <= named_workers_to_delete(first(self.rayclusters, key))

    def clusters_on_node(self, node: str, bodies: list[dict[str, Any]] | None = None) -> list[ClusterOnNode]:
        """The clusters with worker pods on ``node``: from ``bodies`` (pods just listed) or the watch cache."""
        pods: dict[Key, list[str]] = {}
        if bodies is None:
            on_node = self.workers_on(node, list(self.pods.keys()))
            workers = [(key, name) for key, names in on_node.items() for name in names]
        else:
            views = [view_pod(b) for b in bodies]
            workers = [(v.key, v.name) for v in views if v.key is not None and v.is_worker and not v.deleting]
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
            view = self.nodes.view(name)
            if now - at > PENDING_SECONDS or (view is not None and view.quarantined):
                del self.pending[name]
        for name, at in list(self.released.items()):
            view = self.nodes.view(name)
            if now - at > PENDING_SECONDS or (view is not None and not view.quarantined):
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

    def cluster_status(self, key: Key) -> dict[str, Any]:
        return dict((self.tc(key) or {}).get("status") or {})

    def settle_breakers(self) -> None:
        fleet = self.fleet()
        count, limit = fleet_limit(fleet, self.settings)
        if self.fleet_breaker.tripped and count < limit:
            log.info("fleet-wide circuit breaker reset: %d of at most %d nodes quarantined", count, limit)
        self.fleet_breaker = self.fleet_breaker.settle(count, limit)
        metrics.CIRCUIT_BREAKER_TRIPPED.labels(*FLEET).set(int(self.fleet_breaker.tripped))

    # ---- acting ----
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def enqueue_status(self, keys: Iterable[Key]) -> None:
        for key in set(keys):
            if key != FLEET:
                self.status.enqueue(key)

    async def tc_event(self, key: Key, type_: str, reason: str, message: str) -> None:
        tc = self.tc(key)
        if tc is None:
            return
        ref = Ref(API_VERSION, "TranslationCluster", key[0], key[1], tc.get("metadata", {}).get("uid", ""))
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
