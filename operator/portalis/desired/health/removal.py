"""The Node as the interface between GPU health and the clusters that run on it.

The health controller writes a quarantine on the Node itself before it acts (the ``portalis.dev/quarantined``
label, the taint, and the ``portalis.dev/quarantine-clusters`` annotation naming the clusters whose policy
acted). The cluster controller watches Nodes and derives from them, with these functions, which nodes its GPUs
count as unhealthy on and which of its Ray workers must leave through the RayCluster's ``workersToDelete``.
Nothing is handed over in memory, so a restarted operator derives the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from portalis.api.meta import Key
from portalis.desired.health.nodes import NodeView
from portalis.desired.podview import PodView

NodeLookup = Callable[[str], NodeView | None]


def quarantined_nodes(pods: Iterable[PodView], node: NodeLookup) -> frozenset[str]:
    """The nodes among those ``pods`` run on that are quarantined now."""
    names = {p.node for p in pods if p.node}
    return frozenset(n for n in names if (view := node(n)) is not None and view.quarantined)


def workers_to_remove(key: Key, pods: Iterable[PodView], node: NodeLookup) -> set[str]:
    """The worker pods of cluster ``key`` on nodes quarantined for it: they leave through the RayCluster's
    ``workersToDelete``, so KubeRay neither restarts them there nor counts them against the replicas. Once a pod
    is gone, or its node released, it drops out of the set."""
    out = set()
    for p in pods:
        if not p.is_worker or not p.node:
            continue
        view = node(p.node)
        if view is not None and view.quarantined and key in view.clusters:
            out.add(p.name)
    return out
