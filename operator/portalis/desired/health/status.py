"""The health fields of a TranslationCluster's status, as a pure function of the fleet."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from portalis.api.meta import Key
from portalis.desired.health.breaker import Breaker
from portalis.desired.health.decide import (
    Fleet,
    shows_quarantined,
)
from portalis.desired.health.names import (
    AT_ANNOTATION,
    DRAIN_MESSAGE_ANNOTATION,
    REASON_ANNOTATION,
)
from portalis.desired.health.nodes import (
    NodeView,
)
from portalis.desired.merge import patch_changes


@dataclass(frozen=True)
class PlannedAction:
    node: str
    actions: tuple[str, ...]
    reason: str
    time: str

    def to_status(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "actions": [a[:512] for a in self.actions[:32]],
            "reason": self.reason[:1024],
            "time": self.time,
        }


def quarantined_entry(node: NodeView) -> dict[str, Any]:
    out: dict[str, Any] = {"name": node.name}
    if node.annotations.get(REASON_ANNOTATION):
        out["reason"] = node.annotations[REASON_ANNOTATION][:1024]
    if node.annotations.get(AT_ANNOTATION):
        out["since"] = node.annotations[AT_ANNOTATION]
    if node.action is not None:
        out["action"] = node.action.value
    if node.phase is not None:
        out["phase"] = node.phase.value
    if node.annotations.get(DRAIN_MESSAGE_ANNOTATION):
        out["message"] = node.annotations[DRAIN_MESSAGE_ANNOTATION][:1024]
    return out


def compute_health_status(
    key: Key,
    fleet: Fleet,
    breaker: Breaker | None,
    planned: Sequence[PlannedAction] = (),
) -> dict[str, Any]:
    """The three status fields the health controller owns, for one cluster: ``quarantinedNodes`` (nodes
    quarantined under its policy), ``circuitBreaker`` and ``plannedNodeActions`` (dry runs, latest first).

    ``quarantinedNodes`` comes from the same ``fleet`` the breaker is settled against (``cluster_limit``), so a
    node this process released is gone from the list in the very status that resets the breaker for it, even
    while the watch cache still shows the node quarantined."""
    entries = [quarantined_entry(n) for n in shows_quarantined(fleet) if key in n.clusters]
    latest: dict[str, PlannedAction] = {}
    for p in sorted(planned, key=lambda p: p.time, reverse=True):
        latest.setdefault(p.node, p)
    out: dict[str, Any] = {
        "quarantinedNodes": sorted(entries, key=lambda e: e["name"])[:1000],
        "plannedNodeActions": [p.to_status() for p in list(latest.values())[:100]],
    }
    if breaker is not None:
        out["circuitBreaker"] = breaker.to_status()
    return out


def health_status_changed(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether merge-patching ``desired`` would change ``existing`` (an absent list reads as an empty one)."""
    return any(patch_changes(existing.get(k, [] if k != "circuitBreaker" else None), v) for k, v in desired.items())
