"""GPU health policy (pure): which node an alert names, what to do to it, and the limits that keep it safe.

Flow: Alertmanager posts to ``/alerts`` -> the receiver validates the payload -> ``alerts_from_payload`` turns it
into ``GpuAlert``s -> the health controller observes the fleet (nodes, which clusters' workers run where, what is
quarantined already) into a ``Fleet`` -> ``decide`` returns a ``Decision`` -> the controller applies it
(``build_quarantine_patch``, Ray worker removal, drain) or only records it (dry run, held by the breaker) ->
``compute_health_status`` writes each cluster's ``quarantinedNodes``, ``circuitBreaker`` and
``plannedNodeActions``.

Everything the controller needs to recompute after a restart lives on the Node itself (the label, the taint and
the ``portalis.dev/quarantine*`` annotations), so nothing here keeps state between calls. The names below are the
ones the runbooks and ``kubectl`` commands use; change them only together with docs/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from portalis.api.alertmanager import WebhookPayload
from portalis.api.v1alpha1.cluster import EccAction, HealthSpec, QuarantinePhase
from portalis.api.v1alpha1.common import is_count_or_percent, resolve_count_or_percent
from portalis.desired.conditions import format_time
from portalis.desired.merge import patch_changes

Key = tuple[str, str]  # (namespace, TranslationCluster name)

# --- names on the Node ---------------------------------------------------------------------------------------

TAINT_KEY = "portalis.dev/gpu-unhealthy"
TAINT_EFFECT = "NoSchedule"
QUARANTINED_LABEL = "portalis.dev/quarantined"
RELEASE_ANNOTATION = "portalis.dev/release"
BY_ANNOTATION = "portalis.dev/quarantined-by"
AT_ANNOTATION = "portalis.dev/quarantined-at"
REASON_ANNOTATION = "portalis.dev/quarantine-reason"
ALERT_ANNOTATION = "portalis.dev/quarantine-alert"
CLUSTERS_ANNOTATION = "portalis.dev/quarantine-clusters"
ACTION_ANNOTATION = "portalis.dev/quarantine-action"
CORDONED_ANNOTATION = "portalis.dev/quarantine-cordoned"
DRAIN_ANNOTATION = "portalis.dev/drain"
DRAIN_MESSAGE_ANNOTATION = "portalis.dev/drain-message"
DRAIN_DEADLINE_ANNOTATION = "portalis.dev/drain-deadline"
QUARANTINE_ANNOTATIONS = (
    BY_ANNOTATION,
    AT_ANNOTATION,
    REASON_ANNOTATION,
    ALERT_ANNOTATION,
    CLUSTERS_ANNOTATION,
    ACTION_ANNOTATION,
    CORDONED_ANNOTATION,
    DRAIN_ANNOTATION,
    DRAIN_MESSAGE_ANNOTATION,
    DRAIN_DEADLINE_ANNOTATION,
)

# --- names in alerts -----------------------------------------------------------------------------------------

ACTION_LABEL = "portalis_action"
QUARANTINE = "quarantine"
# labels that name the node, most specific first: dcgm-exporter's Hostname, the node name Prometheus'
# Kubernetes service discovery relabels in, then the scrape target
NODE_LABELS = ("Hostname", "node", "kubernetes_node", "node_name", "nodename", "instance")
HOSTNAME_LABEL = "kubernetes.io/hostname"

DEFAULT_MANAGED_SELECTOR = "nvidia.com/gpu.present=true"
DEFAULT_FLEET_MAX_UNAVAILABLE = "10%"
DEFAULT_DRAIN_TIMEOUT_SECONDS = 300
FLEET: Key = ("*", "*")  # the scope of the fleet-wide limit, in metrics and breaker bookkeeping

_STRENGTH = {EccAction.ALERT: 0, EccAction.CORDON: 1, EccAction.CORDON_AND_DRAIN: 2}
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]")


# --- label selectors (the managed-node selector) -------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if self.op in ("=", "in"):
            return has and value in self.values
        return not has or value not in self.values  # "!=" and "notin", as Kubernetes defines them


_SET_RE = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_KEY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9./_-]*[A-Za-z0-9])?$")


def _split_selector(text: str) -> list[str]:
    """Split at commas outside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """A Kubernetes label selector string (``a=b,c!=d,e in (f,g),h,!i``); an empty one matches every node."""
    out: list[Requirement] = []
    for part in _split_selector(text):
        m = _SET_RE.match(part)
        if m:
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            out.append(Requirement(m.group(1), m.group(2), values))
            continue
        for op, name in (("!=", "!="), ("==", "="), ("=", "=")):
            if op in part:
                key, value = (s.strip() for s in part.split(op, 1))
                if not _KEY_RE.match(key):
                    raise ValueError(f"label selector {text!r}: bad key {key!r}")
                out.append(Requirement(key, name, (value,)))
                break
        else:
            negated = part.startswith("!")
            key = part[1:].strip() if negated else part
            if not _KEY_RE.match(key):
                raise ValueError(f"label selector {text!r}: cannot parse {part!r}")
            out.append(Requirement(key, "!exists" if negated else "exists"))
    return tuple(out)


def selector_matches(selector: Sequence[Requirement], labels: Mapping[str, str]) -> bool:
    return all(r.matches(labels) for r in selector)


# --- settings and policies -----------------------------------------------------------------------------------


def strongest(actions: Iterable[EccAction]) -> EccAction:
    return max(actions, key=lambda a: _STRENGTH[a], default=EccAction.ALERT)


@dataclass(frozen=True)
class HealthPolicy:
    """One TranslationCluster's ``spec.health``, or the operator-wide default."""

    action: EccAction = EccAction.CORDON
    dry_run: bool = False
    max_unavailable: int | str = 1
    drain_timeout_seconds: int = DEFAULT_DRAIN_TIMEOUT_SECONDS


def policy_from_spec(spec: HealthSpec | None) -> HealthPolicy:
    if spec is None:
        return HealthPolicy()
    return HealthPolicy(
        action=spec.ecc_action,
        dry_run=spec.dry_run,
        max_unavailable=spec.max_unavailable_nodes,
        drain_timeout_seconds=spec.drain_timeout_seconds,
    )


@dataclass(frozen=True)
class HealthSettings:
    """Operator-wide settings (environment variables the chart can set through ``extraEnv``)."""

    managed_selector: tuple[Requirement, ...] = field(default_factory=lambda: parse_selector(DEFAULT_MANAGED_SELECTOR))
    managed_selector_text: str = DEFAULT_MANAGED_SELECTOR
    default_action: EccAction = EccAction.CORDON
    fleet_max_unavailable: int | str = DEFAULT_FLEET_MAX_UNAVAILABLE
    drain_timeout_seconds: int = DEFAULT_DRAIN_TIMEOUT_SECONDS
    identity: str = "portalis-operator"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HealthSettings:
        """Read ``PORTALIS_MANAGED_NODE_SELECTOR``, ``PORTALIS_DEFAULT_ECC_ACTION``,
        ``PORTALIS_FLEET_MAX_UNAVAILABLE`` and ``PORTALIS_DEFAULT_DRAIN_TIMEOUT_SECONDS``; raises ValueError with
        the variable's name when one is malformed."""
        selector_text = env.get("PORTALIS_MANAGED_NODE_SELECTOR", DEFAULT_MANAGED_SELECTOR)
        try:
            selector = parse_selector(selector_text)
        except ValueError as exc:
            raise ValueError(f"PORTALIS_MANAGED_NODE_SELECTOR: {exc}") from None
        raw_action = env.get("PORTALIS_DEFAULT_ECC_ACTION", EccAction.CORDON.value)
        try:
            action = EccAction(raw_action)
        except ValueError:
            known = ", ".join(a.value for a in EccAction)
            raise ValueError(f"PORTALIS_DEFAULT_ECC_ACTION: {raw_action!r} is not one of {known}") from None
        limit_raw = env.get("PORTALIS_FLEET_MAX_UNAVAILABLE", DEFAULT_FLEET_MAX_UNAVAILABLE).strip()
        limit: int | str = int(limit_raw) if limit_raw.isdigit() else limit_raw
        if not is_count_or_percent(limit):
            raise ValueError(
                f"PORTALIS_FLEET_MAX_UNAVAILABLE: {limit_raw!r} is neither a count nor a percentage such as 10%"
            )
        timeout_raw = env.get("PORTALIS_DEFAULT_DRAIN_TIMEOUT_SECONDS", str(DEFAULT_DRAIN_TIMEOUT_SECONDS))
        if not timeout_raw.isdigit() or int(timeout_raw) < 1:
            raise ValueError(f"PORTALIS_DEFAULT_DRAIN_TIMEOUT_SECONDS: {timeout_raw!r} is not a positive integer")
        identity = env.get("POD_NAME") or "portalis-operator"
        return cls(selector, selector_text, action, limit, int(timeout_raw), identity)

    def default_policy(self) -> HealthPolicy:
        return HealthPolicy(
            action=self.default_action,
            max_unavailable=self.fleet_max_unavailable,
            drain_timeout_seconds=self.drain_timeout_seconds,
        )


def resolve_limit(value: int | str, total: int) -> int:
    """A count passes through; a percentage of ``total`` rounds up, as a PodDisruptionBudget's maxUnavailable
    does, so any non-zero percentage allows one node. ``0`` and ``"0%"`` allow none."""
    return max(0, resolve_count_or_percent(value, max(0, total), round_up=True))


# --- nodes ---------------------------------------------------------------------------------------------------


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


# --- alerts --------------------------------------------------------------------------------------------------


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


# --- pods ----------------------------------------------------------------------------------------------------

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


@dataclass(frozen=True)
class PodRef:
    """A pod on a node, as the drain sees it."""

    namespace: str
    name: str
    cluster: str | None = None  # the TranslationCluster it belongs to (portalis.dev/cluster), if any
    role: str | None = None  # portalis.dev/role: head or worker
    daemonset: bool = False
    mirror: bool = False
    deleting: bool = False
    finished: bool = False  # Succeeded or Failed

    @property
    def key(self) -> Key | None:
        return (self.namespace, self.cluster) if self.cluster else None


def view_pod_ref(body: Mapping[str, Any], cluster_label: str, role_label: str) -> PodRef:
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    owners = meta.get("ownerReferences") or []
    phase = (body.get("status") or {}).get("phase")
    return PodRef(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        cluster=labels.get(cluster_label),
        role=labels.get(role_label),
        daemonset=any(o.get("kind") == "DaemonSet" and o.get("controller") for o in owners),
        mirror=MIRROR_ANNOTATION in (meta.get("annotations") or {}),
        deleting=bool(meta.get("deletionTimestamp")),
        finished=phase in ("Succeeded", "Failed"),
    )


def drain_targets(pods: Iterable[PodRef], spared: Iterable[str] = ()) -> list[PodRef]:
    """The pods a drain must see gone: all but DaemonSet pods (their controller ignores cordons and would put
    them back), mirror pods (the kubelet owns them) and the pods of clusters that only alert or dry-run. Pods
    already terminating are included: the drain waits for them."""
    keep = set(spared)
    return [p for p in pods if not p.daemonset and not p.mirror and f"{p.namespace}/{p.name}" not in keep]


# --- decisions -----------------------------------------------------------------------------------------------


class Outcome(StrEnum):
    """What became of one alert; also the ``result`` label of ``portalis_alerts_received_total``."""

    QUARANTINED = "quarantined"
    FAILED = "failed"
    DRY_RUN = "dry_run"
    ALERT_ONLY = "alert_only"
    HELD = "held"
    ALREADY_QUARANTINED = "already_quarantined"
    UNKNOWN_NODE = "unknown_node"
    UNMANAGED = "unmanaged"
    OBSERVED = "observed"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class ClusterOnNode:
    """A TranslationCluster whose worker pods run on the node an alert names, with its policy."""

    key: Key
    policy: HealthPolicy
    pods: tuple[str, ...] = ()  # its worker pods on the node


@dataclass(frozen=True)
class Fleet:
    """The managed nodes and what is quarantined now (including quarantines not yet seen in the watch cache)."""

    nodes: Mapping[str, NodeView]
    managed: frozenset[str]
    quarantined: frozenset[str]
    cluster_nodes: Mapping[Key, frozenset[str]] = field(default_factory=dict)  # where each cluster's workers run
    quarantined_for: Mapping[Key, frozenset[str]] = field(default_factory=dict)
    # released by this process though ``nodes`` (the watch cache) may still show them quarantined: neither counted
    # nor listed in status, so a breaker that resets on a release never sits beside the released node
    released: frozenset[str] = frozenset()


def build_fleet(
    nodes: Iterable[NodeView],
    settings: HealthSettings,
    cluster_nodes: Mapping[Key, Iterable[str]] | None = None,
    pending: Mapping[str, Sequence[Key]] | None = None,
    released: Iterable[str] = (),
) -> Fleet:
    """The fleet from node views; ``pending`` holds quarantines this process wrote that the watch cache may not
    show yet (node -> clusters), ``released`` nodes it released that the cache may still show quarantined."""
    by_name = {n.name: n for n in nodes}
    gone = set(released)
    managed = frozenset(n for n, v in by_name.items() if is_managed(v, settings))
    quarantined_for: dict[Key, set[str]] = {}
    quarantined: set[str] = set()
    for name, view in by_name.items():
        if name in managed and view.quarantined and name not in gone:
            quarantined.add(name)
            for key in view.clusters:
                quarantined_for.setdefault(key, set()).add(name)
    for name, keys in (pending or {}).items():
        if name in managed and name not in gone:
            quarantined.add(name)
            for key in keys:
                quarantined_for.setdefault(key, set()).add(name)
    return Fleet(
        nodes=by_name,
        managed=managed,
        quarantined=frozenset(quarantined),
        cluster_nodes={k: frozenset(v) for k, v in (cluster_nodes or {}).items()},
        quarantined_for={k: frozenset(v) for k, v in quarantined_for.items()},
        released=frozenset(gone),
    )


@dataclass(frozen=True)
class Hold:
    """A limit that keeps a node from being quarantined: the fleet's (``scope`` FLEET) or a cluster's."""

    scope: Key
    limit: int
    current: int

    @property
    def message(self) -> str:
        if self.scope == FLEET:
            return (
                f"fleet-wide limit reached: {self.current} of at most {self.limit} GPU nodes already quarantined "
                "(PORTALIS_FLEET_MAX_UNAVAILABLE)"
            )
        return (
            f"{self.scope[0]}/{self.scope[1]}: {self.current} of at most {self.limit} nodes already quarantined "
            "(spec.health.maxUnavailableNodes)"
        )


@dataclass(frozen=True)
class Decision:
    """What to do about one alert, and why."""

    outcome: Outcome
    alert: GpuAlert
    node: str | None = None
    action: EccAction = EccAction.ALERT  # what is done for real
    clusters: tuple[Key, ...] = ()  # clusters acting for real (recorded on the node)
    dry_run_clusters: tuple[Key, ...] = ()
    alert_only_clusters: tuple[Key, ...] = ()
    ray_workers: Mapping[Key, tuple[str, ...]] = field(default_factory=dict)  # worker pods to remove, by cluster
    spared: frozenset[str] = frozenset()  # "ns/pod" a drain leaves alone (clusters that only alert or dry-run)
    holds: tuple[Hold, ...] = ()
    drain_timeout_seconds: int = DEFAULT_DRAIN_TIMEOUT_SECONDS
    dry_run_action: EccAction = EccAction.ALERT  # what a dry run would have done
    message: str = ""

    @property
    def writes(self) -> bool:
        return self.outcome == Outcome.QUARANTINED


def _holds(node: str, fleet: Fleet, acting: Sequence[ClusterOnNode], settings: HealthSettings) -> list[Hold]:
    holds = []
    fleet_limit = resolve_limit(settings.fleet_max_unavailable, len(fleet.managed))
    if len(fleet.quarantined) + 1 > fleet_limit:
        holds.append(Hold(FLEET, fleet_limit, len(fleet.quarantined)))
    for c in acting:
        mine = fleet.quarantined_for.get(c.key, frozenset())
        base = fleet.cluster_nodes.get(c.key, frozenset()) | mine | {node}
        limit = resolve_limit(c.policy.max_unavailable, len(base))
        if len(mine) + 1 > limit:
            holds.append(Hold(c.key, limit, len(mine)))
    return holds


def decide(alert: GpuAlert, fleet: Fleet, on_node: Sequence[ClusterOnNode], settings: HealthSettings) -> Decision:
    """Decide what to do about ``alert``, given the fleet and the clusters with workers on the node it names.

    - An alert that names no node, or an unmanaged node, changes nothing.
    - Only firing alerts labelled ``portalis_action="quarantine"`` act; others are recorded.
    - The node gets the strongest action of the clusters that act for real (not Alert, not dryRun); with no
      cluster on the node, the operator-wide default applies.
    - The fleet-wide limit and every acting cluster's limit must leave room for one more node, else the alert is
      held (the circuit breaker trips) and only recorded.
    """
    node = resolve_node(alert.labels, fleet.nodes)
    if node is None:
        hints = ", ".join(node_hints(alert.labels)) or "no node label"
        return Decision(Outcome.UNKNOWN_NODE, alert, message=f"{alert.describe()}: no node matches ({hints})")
    if node not in fleet.managed:
        return Decision(
            Outcome.UNMANAGED,
            alert,
            node,
            message=f"{alert.describe()}: node {node} is not managed (PORTALIS_MANAGED_NODE_SELECTOR)",
        )
    keys = tuple(sorted(c.key for c in on_node))
    if not alert.firing:
        return Decision(Outcome.RESOLVED, alert, node, message=f"{alert.describe()} resolved on node {node}")
    if not alert.quarantine:
        return Decision(
            Outcome.OBSERVED,
            alert,
            node,
            alert_only_clusters=keys,
            message=f"{alert.describe()} on node {node}: {alert.summary or 'recorded'}",
        )
    if node in fleet.quarantined:
        return Decision(
            Outcome.ALREADY_QUARANTINED, alert, node, message=f"{alert.describe()}: node {node} is already quarantined"
        )

    clusters = list(on_node)
    if not clusters:
        default = settings.default_policy()
        acting = [] if default.action == EccAction.ALERT else [ClusterOnNode(FLEET, default)]
        dry: list[ClusterOnNode] = []
        alerting: list[ClusterOnNode] = []
    else:
        acting = [c for c in clusters if c.policy.action != EccAction.ALERT and not c.policy.dry_run]
        dry = [c for c in clusters if c.policy.action != EccAction.ALERT and c.policy.dry_run]
        alerting = [c for c in clusters if c.policy.action == EccAction.ALERT]
    real_clusters = tuple(sorted(c.key for c in acting if c.key != FLEET))
    spared = frozenset(f"{c.key[0]}/{p}" for c in (*dry, *alerting) for p in c.pods)
    common: dict[str, Any] = {
        "dry_run_clusters": tuple(sorted(c.key for c in dry)),
        "alert_only_clusters": tuple(sorted(c.key for c in alerting)),
        "spared": spared,
    }
    if not acting:
        if dry:
            would = strongest(c.policy.action for c in dry)
            holds = _holds(node, fleet, dry, settings)
            return Decision(
                Outcome.DRY_RUN,
                alert,
                node,
                holds=tuple(holds),
                dry_run_action=would,
                ray_workers={c.key: c.pods for c in dry if c.pods},
                drain_timeout_seconds=max(c.policy.drain_timeout_seconds for c in dry),
                message=f"{alert.describe()} on node {node}: dry run, nothing changed",
                **common,
            )
        return Decision(
            Outcome.ALERT_ONLY,
            alert,
            node,
            message=f"{alert.describe()} on node {node}: eccAction is Alert, the node is left alone",
            **common,
        )
    holds = _holds(node, fleet, [c for c in acting if c.key != FLEET], settings)
    action = strongest(c.policy.action for c in acting)
    timeout = max(c.policy.drain_timeout_seconds for c in acting)
    if holds:
        return Decision(
            Outcome.HELD,
            alert,
            node,
            action=EccAction.ALERT,
            clusters=real_clusters,
            holds=tuple(holds),
            drain_timeout_seconds=timeout,
            message=f"{alert.describe()} on node {node}: held, {'; '.join(h.message for h in holds)}",
            **common,
        )
    return Decision(
        Outcome.QUARANTINED,
        alert,
        node,
        action=action,
        clusters=real_clusters,
        ray_workers={c.key: c.pods for c in acting if c.key != FLEET and c.pods},
        drain_timeout_seconds=timeout,
        message=f"{alert.describe()} on node {node}: {action.value}",
        **common,
    )


def apply_to_fleet(fleet: Fleet, decision: Decision) -> Fleet:
    """The fleet after ``decision`` was carried out (for simulations and properties)."""
    if decision.outcome != Outcome.QUARANTINED or decision.node is None:
        return fleet
    quarantined_for = {k: set(v) for k, v in fleet.quarantined_for.items()}
    for key in decision.clusters:
        quarantined_for.setdefault(key, set()).add(decision.node)
    return replace(
        fleet,
        quarantined=fleet.quarantined | {decision.node},
        quarantined_for={k: frozenset(v) for k, v in quarantined_for.items()},
        released=fleet.released - {decision.node},
    )


def release_from_fleet(fleet: Fleet, node: str) -> Fleet:
    """The fleet after ``node`` was released, before the watch cache shows it (its view stays as it was)."""
    return replace(
        fleet,
        quarantined=fleet.quarantined - {node},
        quarantined_for={k: v - {node} for k, v in fleet.quarantined_for.items()},
        released=fleet.released | {node},
    )


def shows_quarantined(fleet: Fleet) -> list[NodeView]:
    """The nodes the watch cache shows quarantined, less those this process has released since."""
    return [v for name, v in fleet.nodes.items() if v.quarantined and name not in fleet.released]


# --- the circuit breaker -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Breaker:
    """Closed (``tripped`` False) or tripped since ``since``; one per cluster and one for the fleet.

    It trips when an alert is held by a limit (an alert storm, or a broken exporter, reaching
    maxUnavailableNodes) and stays tripped, holding every further quarantine it covers, until a person releases
    nodes and the count falls back under the limit.
    """

    tripped: bool = False
    since: str | None = None
    reason: str | None = None

    def trip(self, now: datetime, reason: str) -> Breaker:
        if self.tripped:
            return replace(self, reason=reason)
        return Breaker(True, format_time(now), reason)

    def settle(self, quarantined: int, limit: int) -> Breaker:
        """Reset once fewer nodes than the limit are quarantined."""
        if self.tripped and quarantined < limit:
            return Breaker()
        return self

    def to_status(self) -> dict[str, Any]:
        """As merge-patched into status: a reset breaker clears ``since`` and ``reason`` (null removes them)."""
        if not self.tripped:
            return {"tripped": False, "since": None, "reason": None}
        return {"tripped": True, "since": self.since, "reason": (self.reason or "")[:1024]}

    @classmethod
    def from_status(cls, raw: Mapping[str, Any] | None) -> Breaker:
        if not raw or not raw.get("tripped"):
            return cls()
        return cls(True, raw.get("since"), raw.get("reason"))


def cluster_limit(key: Key, policy: HealthPolicy, fleet: Fleet) -> tuple[int, int]:
    """(quarantined, limit) for one cluster, as ``decide`` counts them."""
    mine = fleet.quarantined_for.get(key, frozenset())
    base = fleet.cluster_nodes.get(key, frozenset()) | mine
    return len(mine), resolve_limit(policy.max_unavailable, len(base))


def fleet_limit(fleet: Fleet, settings: HealthSettings) -> tuple[int, int]:
    return len(fleet.quarantined), resolve_limit(settings.fleet_max_unavailable, len(fleet.managed))


# --- what is written -----------------------------------------------------------------------------------------


def taint_value(alert: GpuAlert) -> str:
    """The taint's value: the alert's name, made a valid label value."""
    value = _LABEL_VALUE.sub("-", alert.name or "ecc")[:63].strip("-._")
    return value or "ecc"


def build_quarantine_patch(
    node: NodeView, decision: Decision, by: str, now: datetime, resource_version: bool = True
) -> dict[str, Any]:
    """A JSON merge patch that cordons and taints the node and records who, why and when.

    It carries the node's resourceVersion, so the API server refuses it (409) when the node changed since it
    was read; the taint list is replaced whole, keeping every other taint as it was.
    """
    alert = decision.alert
    taints = [dict(t) for t in node.taints if t.get("key") != TAINT_KEY]
    taints.append({"key": TAINT_KEY, "value": taint_value(alert), "effect": TAINT_EFFECT})
    record = {"alert": alert.name, "gpu": alert.gpu, "uuid": alert.uuid, "fingerprint": alert.fingerprint}
    annotations: dict[str, str | None] = {
        BY_ANNOTATION: by,
        AT_ANNOTATION: format_time(now),
        REASON_ANNOTATION: (alert.summary or alert.describe())[:1024],
        ALERT_ANNOTATION: json.dumps({k: v for k, v in record.items() if v}, sort_keys=True),
        CLUSTERS_ANNOTATION: format_clusters(decision.clusters),
        ACTION_ANNOTATION: decision.action.value,
        DRAIN_ANNOTATION: QuarantinePhase.REMOVING_WORKERS.value,
        DRAIN_MESSAGE_ANNOTATION: "removing Ray workers from the node",
        DRAIN_DEADLINE_ANNOTATION: format_time(now + timedelta(seconds=decision.drain_timeout_seconds)),
        RELEASE_ANNOTATION: None,
    }
    if not node.unschedulable:
        annotations[CORDONED_ANNOTATION] = "true"  # Portalis cordoned it, so an annotation release uncordons it
    meta: dict[str, Any] = {"labels": {QUARANTINED_LABEL: "true"}, "annotations": annotations}
    if resource_version and node.resource_version:
        meta["resourceVersion"] = node.resource_version
    return {"metadata": meta, "spec": {"unschedulable": True, "taints": taints}}


def build_release_patch(node: NodeView, uncordon: bool) -> dict[str, Any]:
    """A JSON merge patch that removes Portalis' taint, label and annotations (and uncordons, when asked)."""
    taints = [dict(t) for t in node.taints if t.get("key") != TAINT_KEY]
    annotations: dict[str, None] = {k: None for k in (*QUARANTINE_ANNOTATIONS, RELEASE_ANNOTATION)}
    spec: dict[str, Any] = {"taints": taints or None}
    if uncordon:
        spec["unschedulable"] = None
    meta: dict[str, Any] = {"labels": {QUARANTINED_LABEL: None}, "annotations": annotations}
    if node.resource_version:
        meta["resourceVersion"] = node.resource_version
    return {"metadata": meta, "spec": spec}


def build_phase_patch(phase: QuarantinePhase, message: str, deadline: str | None = None) -> dict[str, Any]:
    annotations: dict[str, str | None] = {DRAIN_ANNOTATION: phase.value, DRAIN_MESSAGE_ANNOTATION: message[:1024]}
    if deadline is not None:
        annotations[DRAIN_DEADLINE_ANNOTATION] = deadline
    return {"metadata": {"annotations": annotations}}


def build_plan(decision: Decision, evictable: int = 0) -> list[str]:
    """The actions a dry run would have taken, in order, as a person would read them."""
    if decision.node is None:
        return []
    action = decision.dry_run_action if decision.outcome == Outcome.DRY_RUN else decision.action
    steps = [
        f"cordon node {decision.node}",
        f"taint {TAINT_KEY}={taint_value(decision.alert)}:{TAINT_EFFECT}",
        f"label {QUARANTINED_LABEL}=true and annotate who, why and when",
    ]
    for key, pods in sorted(decision.ray_workers.items()):
        if pods:
            names = ", ".join(sorted(pods)[:10]) + (" ..." if len(pods) > 10 else "")
            steps.append(f"remove Ray workers of {key[0]}/{key[1]} through the RayCluster: {names}")
            steps.append("return their in-flight items to the queue")
    if action == EccAction.CORDON_AND_DRAIN:
        steps.append(
            f"evict the other {evictable} pods with the Eviction API (PodDisruptionBudgets respected, "
            f"timeout {decision.drain_timeout_seconds}s)"
        )
    for hold in decision.holds:
        steps.append(f"but hold all of it: {hold.message}")
    return steps


# --- status --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedAction:
    node: str
    actions: tuple[str, ...]
    reason: str
    time: str

    def to_status(self) -> dict[str, Any]:
        return {"node": self.node, "actions": [a[:512] for a in self.actions[:32]], "reason": self.reason[:1024],
                "time": self.time}  # fmt: skip


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


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time as written by ``format_time``; None when missing or malformed."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
