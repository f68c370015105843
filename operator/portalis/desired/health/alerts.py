"""GPU alerts: from an Alertmanager notification, and the node each one names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from portalis.api.alertmanager import WebhookPayload
from portalis.desired.health.names import (
    ACTION_LABEL,
    HOSTNAME_LABEL,
    NODE_LABELS,
    QUARANTINE,
)
from portalis.desired.health.nodes import NodeView


@dataclass(frozen=True)
class GpuAlert:
    """One alert as the policy sees it."""

    name: str
    firing: bool
    labels: Mapping[str, str]
    summary: str = ""
    fingerprint: str = ""
    starts_at: str = ""

    @property
    def quarantine(self) -> bool:
        return self.labels.get(ACTION_LABEL) == QUARANTINE

    @property
    def gpu(self) -> str:
        return self.labels.get("gpu", "")

    @property
    def uuid(self) -> str:
        return self.labels.get("UUID", "") or self.labels.get("uuid", "")

    def describe(self) -> str:
        """Short text for Events and annotations: the alert and the GPU it names."""
        gpu = f" on GPU {self.gpu}" if self.gpu else ""
        uuid = f" ({self.uuid})" if self.uuid else ""
        return f"{self.name or 'alert'}{gpu}{uuid}"


def alerts_from_payload(payload: WebhookPayload) -> list[GpuAlert]:
    """The alerts of one notification; the group's common labels fill in what an alert lacks."""
    out = []
    for a in payload.alerts:
        labels = {**payload.common_labels, **a.labels}
        summary = a.annotations.get("summary") or payload.common_annotations.get("summary", "")
        out.append(
            GpuAlert(
                name=labels.get("alertname", ""),
                firing=a.status == "firing",
                labels=labels,
                summary=summary,
                fingerprint=a.fingerprint,
                starts_at=a.starts_at,
            )
        )
    return out


def _strip_port(value: str) -> str:
    value = value.strip()
    if value.startswith("["):  # [ipv6]:port
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def node_hints(labels: Mapping[str, str]) -> list[str]:
    """The values that may name the node, most specific first, without ports and duplicates."""
    out: list[str] = []
    for key in NODE_LABELS:
        raw = labels.get(key)
        if not raw:
            continue
        hint = _strip_port(raw) if key == "instance" else raw.strip()
        if hint and hint not in out:
            out.append(hint)
    return out


def resolve_node(labels: Mapping[str, str], nodes: Mapping[str, NodeView]) -> str | None:
    """The node an alert names: by node name, by its ``kubernetes.io/hostname`` label, or by one of its
    addresses (an ``instance`` such as ``10.0.3.7:9400``). None when no node matches."""
    hints = node_hints(labels)
    for hint in hints:
        if hint in nodes:
            return hint
    for hint in hints:
        for name, node in nodes.items():
            if node.labels.get(HOSTNAME_LABEL) == hint or hint in node.addresses:
                return name
    return None
