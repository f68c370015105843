"""What to do about one alert, given the fleet: quarantine, hold, dry-run, alert only, or nothing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from portalis.api.meta import Key
from portalis.api.v1alpha1.cluster import EccAction
from portalis.desired.health.alerts import GpuAlert, node_hints, resolve_node
from portalis.desired.health.names import (
    DEFAULT_DRAIN_TIMEOUT_SECONDS,
    FLEET,
)
from portalis.desired.health.nodes import (
    NodeView,
    is_managed,
)
from portalis.desired.health.policy import (
    HealthPolicy,
    HealthSettings,
    resolve_limit,
    strongest,
)


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
class AlertDecision:
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


def decide(alert: GpuAlert, fleet: Fleet, on_node: Sequence[ClusterOnNode], settings: HealthSettings) -> AlertDecision:
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
        return AlertDecision(Outcome.UNKNOWN_NODE, alert, message=f"{alert.describe()}: no node matches ({hints})")
    if node not in fleet.managed:
        return AlertDecision(
            Outcome.UNMANAGED,
            alert,
            node,
            message=f"{alert.describe()}: node {node} is not managed (PORTALIS_MANAGED_NODE_SELECTOR)",
        )
    keys = tuple(sorted(c.key for c in on_node))
    if not alert.firing:
        return AlertDecision(Outcome.RESOLVED, alert, node, message=f"{alert.describe()} resolved on node {node}")
    if not alert.quarantine:
        return AlertDecision(
            Outcome.OBSERVED,
            alert,
            node,
            alert_only_clusters=keys,
            message=f"{alert.describe()} on node {node}: {alert.summary or 'recorded'}",
        )
    if node in fleet.quarantined:
        return AlertDecision(
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
            return AlertDecision(
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
        return AlertDecision(
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
        return AlertDecision(
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
    return AlertDecision(
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


def apply_to_fleet(fleet: Fleet, decision: AlertDecision) -> Fleet:
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


def cluster_limit(key: Key, policy: HealthPolicy, fleet: Fleet) -> tuple[int, int]:
    """(quarantined, limit) for one cluster, as ``decide`` counts them."""
    mine = fleet.quarantined_for.get(key, frozenset())
    base = fleet.cluster_nodes.get(key, frozenset()) | mine
    return len(mine), resolve_limit(policy.max_unavailable, len(base))


def fleet_limit(fleet: Fleet, settings: HealthSettings) -> tuple[int, int]:
    return len(fleet.quarantined), resolve_limit(settings.fleet_max_unavailable, len(fleet.managed))
