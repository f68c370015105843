"""The Node as the interface between GPU health and the clusters (desired.health.removal): which workers a
cluster removes and which nodes its GPUs count as unhealthy on, from the Nodes and the cluster's pods alone."""

from __future__ import annotations

from portalis.desired.health import (
    CLUSTERS_ANNOTATION,
    QUARANTINED_LABEL,
    NodeView,
    format_clusters,
    quarantined_nodes,
    workers_to_remove,
)
from portalis.desired.podview import PodView

KEY = ("ml", "gpu")
OTHER = ("ml", "cpu")


def nodes(**views: NodeView) -> dict[str, NodeView]:
    return views


def quarantined(name: str, *keys: tuple[str, str]) -> NodeView:
    return NodeView(name, labels={QUARANTINED_LABEL: "true"}, annotations={CLUSTERS_ANNOTATION: format_clusters(keys)})


PODS = [
    PodView("head", "head", "Running", node="n1", namespace="ml", cluster="gpu"),
    PodView("w1", "worker", "Running", node="n1", namespace="ml", cluster="gpu"),
    PodView("w2", "worker", "Running", node="n2", namespace="ml", cluster="gpu"),
    PodView("w3", "worker", "Pending", namespace="ml", cluster="gpu"),  # not scheduled yet
    PodView("w4", "worker", "Running", node="n3", namespace="ml", cluster="gpu", deleting=True),
]


def test_workers_on_a_node_quarantined_for_the_cluster_are_removed() -> None:
    fleet = nodes(n1=quarantined("n1", KEY), n2=NodeView("n2"), n3=quarantined("n3", KEY, OTHER))
    # the head stays (Ray's head is not a worker); a worker being deleted is named until it is gone
    assert workers_to_remove(KEY, PODS, fleet.get) == {"w1", "w4"}
    assert quarantined_nodes(PODS, fleet.get) == {"n1", "n3"}


def test_a_quarantine_for_other_clusters_leaves_the_workers_but_not_the_gpu_count() -> None:
    fleet = nodes(n1=quarantined("n1", OTHER), n2=NodeView("n2"))
    assert workers_to_remove(KEY, PODS, fleet.get) == set()  # its policy did not act (Alert, dry run)
    assert quarantined_nodes(PODS, fleet.get) == {"n1"}  # the GPUs there are unhealthy all the same


def test_a_released_or_unknown_node_removes_nothing() -> None:
    released = NodeView("n1", annotations={CLUSTERS_ANNOTATION: format_clusters([KEY])})  # label gone
    fleet = nodes(n1=released)
    assert workers_to_remove(KEY, PODS, fleet.get) == set()
    assert quarantined_nodes(PODS, fleet.get) == frozenset()
