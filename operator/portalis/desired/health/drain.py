"""The pods a drain must see gone from a node."""

from __future__ import annotations

from collections.abc import Iterable

from portalis.desired.podview import PodView


def drain_targets(pods: Iterable[PodView], spared: Iterable[str] = ()) -> list[PodView]:
    """The pods a drain must see gone: all but DaemonSet pods (their controller ignores cordons and would put
    them back), mirror pods (the kubelet owns them) and the pods of clusters that only alert or dry-run. Pods
    already terminating are included: the drain waits for them."""
    keep = set(spared)
    return [p for p in pods if not p.daemonset and not p.mirror and f"{p.namespace}/{p.name}" not in keep]
