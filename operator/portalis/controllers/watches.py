"""The operator's watches: one kopf index per kind the controllers read, defined once and shared, and the watch
events, each handed to the controllers that depend on what changed.

Indexes (kopf hands them to the start-up handler by these functions' names): ``clusters`` (TranslationClusters
by key), ``rayclusters`` and ``daskclusters`` (by the TranslationCluster that owns them), ``nodes`` (by name)
and ``cluster_pods`` (the pods of TranslationClusters, by cluster). Bodies are kept without
``metadata.managedFields``. TranslationJobs, of which there can be tens of thousands, are cached from their
events instead (``caches.ObjectCache``). Event handlers only route to the composition root kept in kopf's memo
(``memo.portalis``, ``controllers.root``); they run on the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import kopf

from portalis import GROUP, VERSION
from portalis.api.meta import Key
from portalis.controllers.caches import slim
from portalis.desired.pods import CLUSTER_LABEL

if TYPE_CHECKING:
    from portalis.controllers.root import Portalis

Indexed = dict[Key, dict[str, Any]]
OWNED = {CLUSTER_LABEL: kopf.PRESENT}


def _root(memo: Any) -> Portalis | None:
    root: Portalis | None = getattr(memo, "portalis", None)
    return root if root is not None and root.started else None


# ---- indexes ----------------------------------------------------------------------------------------------


@kopf.index(GROUP, VERSION, "translationclusters")
async def clusters(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Indexed:
    return {(namespace or "", name): slim(body)}


@kopf.index("ray.io", "v1", "rayclusters", labels=OWNED)
async def rayclusters(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Indexed:
    return {(namespace or "", labels[CLUSTER_LABEL]): slim(body)}


@kopf.index("kubernetes.dask.org", "v1", "daskclusters", labels=OWNED)
async def daskclusters(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Indexed:
    return {(namespace or "", labels[CLUSTER_LABEL]): slim(body)}


@kopf.index("v1", "nodes")
async def nodes(name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    return {name: slim(body)}


@kopf.index("v1", "pods", labels=OWNED)
async def cluster_pods(namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Indexed:
    return {(namespace or "", labels[CLUSTER_LABEL]): slim(body)}


INDEXES = ("clusters", "rayclusters", "daskclusters", "nodes", "cluster_pods")


# ---- events -----------------------------------------------------------------------------------------------


@kopf.on.event(GROUP, VERSION, "translationclusters")
async def cluster_event(
    namespace: str | None, name: str, body: kopf.Body, type: str | None, memo: Any, **_: Any
) -> None:
    root = _root(memo)
    if root is not None:
        root.cluster_event((namespace or "", name), dict(body), type == "DELETED")


@kopf.on.event(GROUP, VERSION, "translationjobs")
async def job_event(namespace: str | None, name: str, body: kopf.Body, type: str | None, memo: Any, **_: Any) -> None:
    root = _root(memo)
    if root is not None:
        root.jobs.on_job((namespace or "", name), dict(body), type == "DELETED")


@kopf.on.event("ray.io", "v1", "rayclusters", labels=OWNED)
async def raycluster_event(namespace: str | None, labels: kopf.Labels, memo: Any, **_: Any) -> None:
    root = _root(memo)
    if root is not None:
        root.clusters.enqueue((namespace or "", labels[CLUSTER_LABEL]))


@kopf.on.event("kubernetes.dask.org", "v1", "daskclusters", labels=OWNED)
async def daskcluster_event(namespace: str | None, labels: kopf.Labels, memo: Any, **_: Any) -> None:
    root = _root(memo)
    if root is not None:
        root.clusters.enqueue((namespace or "", labels[CLUSTER_LABEL]))


@kopf.on.event("v1", "pods", labels=OWNED)
async def pod_event(namespace: str | None, labels: kopf.Labels, memo: Any, **_: Any) -> None:
    root = _root(memo)
    if root is not None:
        root.health.fleet_changed()
        root.clusters.enqueue((namespace or "", labels[CLUSTER_LABEL]))


@kopf.on.event("v1", "nodes")
async def node_event(type: str | None, body: kopf.Body, memo: Any, **_: Any) -> None:
    root = _root(memo)
    if root is not None:
        await root.node_event(dict(body), type == "DELETED", type)
