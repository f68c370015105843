"""A release seen through the health controller (portalis.controllers.health) with its watch caches held back,
and what the cluster controller reads from the Nodes meanwhile (``gpus.healthy`` leaves quarantined nodes out).

The API server and the watch caches are plain dicts here, so the test decides exactly when the node watch
delivers the release: after the operator's release patch has been applied, but after the status sync that the
release enqueues has run. No status the controller writes on the way may reset the circuit breaker while still
listing the released node in ``quarantinedNodes``, and the last one written must be right.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from portalis.api.meta import Key
from portalis.controllers.caches import NodeCache, SpecCache
from portalis.controllers.health import HealthController
from portalis.controllers.runtime import WorkQueue
from portalis.desired.health import (
    ACTION_ANNOTATION,
    CLUSTERS_ANNOTATION,
    CORDONED_ANNOTATION,
    DRAIN_ANNOTATION,
    QUARANTINED_LABEL,
    RELEASE_ANNOTATION,
    TAINT_EFFECT,
    TAINT_KEY,
    Breaker,
    HealthSettings,
    parse_selector,
    quarantined_nodes,
    view_node,
)
from portalis.desired.merge import merge_patch
from portalis.desired.podview import PodView

KEY = ("team", "tc")
GPU = {"nvidia.com/gpu.present": "true"}
# the cluster's workers, one on each node: the cluster controller reads from these nodes which are quarantined
WORKERS = [
    PodView(f"w-{n}", "worker", "Running", node=n, namespace=KEY[0], cluster=KEY[1])
    for n in ("gpu-1", "gpu-2", "gpu-3")
]


def quarantined_node(name: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": "10",
            "labels": {**GPU, QUARANTINED_LABEL: "true"},
            "annotations": {
                CLUSTERS_ANNOTATION: f"{KEY[0]}/{KEY[1]}",
                ACTION_ANNOTATION: "Cordon",
                DRAIN_ANNOTATION: "Cordoned",
                CORDONED_ANNOTATION: "true",
            },
        },
        "spec": {"unschedulable": True, "taints": [{"key": TAINT_KEY, "value": "ecc", "effect": TAINT_EFFECT}]},
    }


class ApiServer:
    """Nodes and the TranslationCluster as the API server holds them; the watch caches lag behind it."""

    def __init__(self) -> None:
        self.nodes = {n: quarantined_node(n) for n in ("gpu-1", "gpu-2", "gpu-3")}
        del self.nodes["gpu-3"]["metadata"]["labels"][QUARANTINED_LABEL]
        self.nodes["gpu-3"]["metadata"]["annotations"] = {}
        self.nodes["gpu-3"]["spec"] = {}
        self.tc: dict[str, Any] = {
            "metadata": {"namespace": KEY[0], "name": KEY[1], "uid": "uid-tc", "generation": 1},
            "spec": {"health": {"eccAction": "Cordon", "maxUnavailableNodes": 2}},
            "status": {},
        }
        self.status_writes: list[dict[str, Any]] = []
        self.events: list[str] = []
        self.version = 10

    # NodeClient's part
    def patch_guarded(
        self, name: str, build: Callable[[dict[str, Any]], dict[str, Any] | None], _first: Any = None
    ) -> dict[str, Any] | None:
        body = build(copy.deepcopy(self.nodes[name]))
        if body is None:
            return None
        self.version += 1
        body["metadata"]["resourceVersion"] = str(self.version)
        self.nodes[name] = merge_patch(self.nodes[name], body)
        return copy.deepcopy(self.nodes[name])

    def node_event(self, _node: str, _uid: str, _type: str, reason: str, _message: str) -> None:
        self.events.append(reason)

    # Kube's part
    def patch_status(self, _ref: Any, status: dict[str, Any]) -> None:
        self.status_writes.append(copy.deepcopy(status))
        self.tc["status"] = merge_patch(self.tc["status"], status)

    def event(self, _ref: Any, _type: str, reason: str, _message: str) -> None:
        self.events.append(reason)


def controller(api: ApiServer, settings: HealthSettings, nodes: NodeCache, tc_index: Any) -> HealthController:
    return HealthController(
        kube=cast(Any, api),
        connections=cast(Any, None),
        settings=settings,
        nodes=nodes,
        pods={},
        clusters=tc_index,
        rayclusters={},
        specs=SpecCache(),
        api=cast(Any, api),
    )


def names(status: dict[str, Any]) -> list[str]:
    return [e["name"] for e in status.get("quarantinedNodes") or []]


async def take(queue: WorkQueue) -> list[Key]:
    """The keys queued for a status sync, taken off the queue as the controller's workers would."""
    keys = []
    while len(queue):
        key = await queue.get()  # returns at once: the queue is not empty
        queue.done(key)
        keys.append(key)
    return keys


def test_the_status_a_release_enqueues_is_right_before_the_node_watch_shows_the_release() -> None:
    api = ApiServer()
    node_index = {n: [copy.deepcopy(b)] for n, b in api.nodes.items()}
    tc_index = {KEY: [copy.deepcopy(api.tc)]}
    nodes = NodeCache(node_index)  # the node watch cache both controllers read

    def watch_node(name: str) -> Any:
        node_index[name] = [copy.deepcopy(api.nodes[name])]
        return copy.deepcopy(api.nodes[name])

    def unwatch_node(name: str) -> Any:  # the watch reports a deletion: kopf drops the node from its index
        return node_index.pop(name)[0]

    def healthy_excludes() -> frozenset[str]:  # the nodes the cluster controller leaves out of gpus.healthy
        return quarantined_nodes(WORKERS, nodes.view)

    def watch_tc() -> dict[str, Any]:
        tc_index[KEY] = [copy.deepcopy(api.tc)]
        return dict(api.tc["status"])

    async def scenario() -> None:
        settings = HealthSettings(fleet_max_unavailable="100%")
        ctx = controller(api, settings, nodes, tc_index)
        queue = ctx.state.status.queue
        try:
            # an alert storm quarantined gpu-1 and gpu-2 and tripped the breaker (2 of at most 2)
            ctx.state.breakers[KEY] = Breaker().trip(datetime.now(UTC), f"{KEY[0]}/{KEY[1]}: 2 of at most 2")
            await ctx.status.sync(KEY)
            status = watch_tc()
            assert names(status) == ["gpu-1", "gpu-2"] and status["circuitBreaker"]["tripped"]
            assert healthy_excludes() == {"gpu-1", "gpu-2"}  # gpus.healthy in the cluster's status

            # a Portalis process that manages none of these nodes (another selector) leaves that status alone: it
            # neither resets the breaker it cannot judge nor writes the cluster's health status
            elsewhere = HealthSettings(managed_selector=parse_selector("pool=elsewhere"), fleet_max_unavailable="100%")
            its_nodes = {**node_index, "n-else": [{"metadata": {"name": "n-else", "labels": {"pool": "elsewhere"}}}]}
            other = controller(api, elsewhere, NodeCache(its_nodes), tc_index)
            writes = len(api.status_writes)
            await other.status.sync(KEY)
            await other.stop()
            assert len(api.status_writes) == writes and watch_tc()["circuitBreaker"]["tripped"]

            # a person annotates gpu-1 for release; the node watch delivers that and the operator releases it
            release = {"metadata": {"annotations": {RELEASE_ANNOTATION: "true"}}}
            api.nodes["gpu-1"] = merge_patch(api.nodes["gpu-1"], release)
            await ctx.on_node("MODIFIED", view_node(watch_node("gpu-1")))
            assert await take(queue) == [KEY]  # a sync that sees gpu-1 still quarantined changes nothing
            await asyncio.gather(*ctx.state.background)
            assert not view_node(api.nodes["gpu-1"]).quarantined  # released at the API server...
            assert view_node(node_index["gpu-1"][0]).quarantined  # ...but the node watch has not said so yet

            # the release asked for the status again, and that sync runs before the node watch catches up
            assert await take(queue) == [KEY]
            await ctx.status.sync(KEY)
            status = watch_tc()
            assert not status["circuitBreaker"]["tripped"]
            assert names(status) == ["gpu-2"]
            assert healthy_excludes() == {"gpu-2"}

            # the node watch delivers the release: the status it asks for is the same
            await ctx.on_node("MODIFIED", view_node(watch_node("gpu-1")))
            assert await take(queue) == [KEY]
            await ctx.status.sync(KEY)
            status = watch_tc()
            assert names(status) == ["gpu-2"] and not status["circuitBreaker"]["tripped"]
            assert healthy_excludes() == {"gpu-2"}
            ctx.state.released.clear()  # (once its release is old news, the watch alone says gpu-1 is healthy)
            assert healthy_excludes() == {"gpu-2"}
            # quarantined again: the node watch alone brings it back
            again = {"metadata": {"labels": {QUARANTINED_LABEL: "true"}}}
            api.nodes["gpu-1"] = merge_patch(api.nodes["gpu-1"], again)
            await ctx.on_node("MODIFIED", view_node(watch_node("gpu-1")))
            assert healthy_excludes() == {"gpu-1", "gpu-2"}
            await ctx.on_node("DELETED", view_node(unwatch_node("gpu-1")))
            assert healthy_excludes() == {"gpu-2"}

            # no status written on the way reset the breaker beside the released node
            for written in api.status_writes:
                assert written["circuitBreaker"]["tripped"] or "gpu-1" not in names(written), written
            assert {"NodeReleased", "CircuitBreakerReset"} <= set(api.events)
        finally:
            await ctx.stop()

    asyncio.run(scenario())
