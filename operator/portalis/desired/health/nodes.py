"""A Node as the policy sees it, which clusters a quarantine was for, and when a person has released it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from portalis.api.meta import Key
from portalis.api.v1alpha1.cluster import EccAction, QuarantinePhase
from portalis.desired.health.names import (
    ACTION_ANNOTATION,
    CLUSTERS_ANNOTATION,
    DRAIN_ANNOTATION,
    QUARANTINED_LABEL,
    RELEASE_ANNOTATION,
    TAINT_KEY,
)
from portalis.desired.health.policy import (
    HealthSettings,
)
from portalis.desired.health.selector import (
    selector_matches,
)


@dataclass(frozen=True)
class NodeView:
    """What the policy needs to know about one Node."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    unschedulable: bool = False
    taints: tuple[Mapping[str, Any], ...] = ()
    addresses: tuple[str, ...] = ()
    resource_version: str = ""
    uid: str = ""

    @property
    def quarantined(self) -> bool:
        return self.labels.get(QUARANTINED_LABEL) == "true"

    @property
    def tainted(self) -> bool:
        return any(t.get("key") == TAINT_KEY for t in self.taints)

    @property
    def clusters(self) -> tuple[Key, ...]:
        return parse_clusters(self.annotations.get(CLUSTERS_ANNOTATION, ""))

    @property
    def phase(self) -> QuarantinePhase | None:
        raw = self.annotations.get(DRAIN_ANNOTATION)
        try:
            return QuarantinePhase(raw) if raw else None
        except ValueError:
            return None

    @property
    def action(self) -> EccAction | None:
        raw = self.annotations.get(ACTION_ANNOTATION)
        try:
            return EccAction(raw) if raw else None
        except ValueError:
            return None


def view_node(body: Mapping[str, Any]) -> NodeView:
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    return NodeView(
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        unschedulable=bool(spec.get("unschedulable")),
        taints=tuple(dict(t) for t in spec.get("taints") or []),
        addresses=tuple(str(a.get("address")) for a in status.get("addresses") or [] if a.get("address")),
        resource_version=str(meta.get("resourceVersion", "")),
        uid=str(meta.get("uid", "")),
    )


def format_clusters(keys: Iterable[Key]) -> str:
    return ",".join(f"{ns}/{name}" for ns, name in sorted(set(keys)))


def parse_clusters(text: str) -> tuple[Key, ...]:
    out = []
    for part in text.split(","):
        ns, sep, name = part.strip().partition("/")
        if sep and ns and name:
            out.append((ns, name))
    return tuple(sorted(set(out)))


def is_managed(node: NodeView, settings: HealthSettings) -> bool:
    return selector_matches(settings.managed_selector, node.labels)


def release_reason(node: NodeView) -> str | None:
    """Why a quarantined node counts as released by a person, or None while it stays quarantined.

    A person releases a node by annotating it ``portalis.dev/release=true`` (Portalis then uncordons it and
    removes its marks), or by undoing the quarantine by hand: uncordoning it, removing the taint or removing
    the label. Portalis then removes whatever marks are left and leaves schedulability as the person set it.
    """
    marked = node.quarantined or node.tainted
    if not marked:
        return None
    if node.annotations.get(RELEASE_ANNOTATION, "").lower() == "true":
        return "annotation"
    if not node.quarantined:
        return "label removed"
    if not node.tainted:
        return "taint removed"
    if not node.unschedulable:
        return "uncordoned"
    return None
