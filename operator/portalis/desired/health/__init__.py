"""GPU health policy (pure): which node an alert names, what to do to it, and the limits that keep it safe.

Flow: Alertmanager posts to ``/alerts`` -> the receiver validates the payload -> ``alerts_from_payload`` turns it
into ``GpuAlert``s -> the health controller observes the fleet (nodes, which clusters' workers run where, what is
quarantined already) into a ``Fleet`` -> ``decide`` returns a ``AlertDecision`` -> the controller applies it
(``build_quarantine_patch``, Ray worker removal, drain) or only records it (dry run, held by the breaker) ->
``compute_health_status`` writes each cluster's ``quarantinedNodes``, ``circuitBreaker`` and
``plannedNodeActions``.

Everything the controller needs to recompute after a restart lives on the Node itself (the label, the taint and
the ``portalis.dev/quarantine*`` annotations), so nothing here keeps state between calls. The names below are the
ones the runbooks and ``kubectl`` commands use; change them only together with docs/.
"""

from portalis.desired.health.alerts import GpuAlert, alerts_from_payload, node_hints, resolve_node
from portalis.desired.health.breaker import Breaker
from portalis.desired.health.decide import (
    AlertDecision,
    ClusterOnNode,
    Fleet,
    Hold,
    Outcome,
    apply_to_fleet,
    build_fleet,
    cluster_limit,
    decide,
    fleet_limit,
    release_from_fleet,
    shows_quarantined,
)
from portalis.desired.health.drain import drain_targets
from portalis.desired.health.names import (
    ACTION_ANNOTATION,
    ACTION_LABEL,
    ALERT_ANNOTATION,
    AT_ANNOTATION,
    BY_ANNOTATION,
    CLUSTERS_ANNOTATION,
    CORDONED_ANNOTATION,
    DEFAULT_DRAIN_TIMEOUT_SECONDS,
    DEFAULT_FLEET_MAX_UNAVAILABLE,
    DEFAULT_MANAGED_SELECTOR,
    DRAIN_ANNOTATION,
    DRAIN_DEADLINE_ANNOTATION,
    DRAIN_MESSAGE_ANNOTATION,
    FLEET,
    HOSTNAME_LABEL,
    NODE_LABELS,
    QUARANTINE,
    QUARANTINE_ANNOTATIONS,
    QUARANTINED_LABEL,
    REASON_ANNOTATION,
    RELEASE_ANNOTATION,
    TAINT_EFFECT,
    TAINT_KEY,
)
from portalis.desired.health.nodes import (
    NodeView,
    format_clusters,
    is_managed,
    parse_clusters,
    release_reason,
    view_node,
)
from portalis.desired.health.patches import (
    build_dry_run_plan,
    build_phase_patch,
    build_quarantine_patch,
    build_release_patch,
    taint_value,
)
from portalis.desired.health.policy import HealthPolicy, HealthSettings, policy_from_spec, resolve_limit, strongest
from portalis.desired.health.removal import NodeLookup, quarantined_nodes, workers_to_remove
from portalis.desired.health.selector import Requirement, parse_selector, selector_matches
from portalis.desired.health.status import (
    PlannedAction,
    compute_health_status,
    health_status_changed,
    quarantined_entry,
)

__all__ = [
    "ACTION_ANNOTATION",
    "ACTION_LABEL",
    "ALERT_ANNOTATION",
    "AT_ANNOTATION",
    "BY_ANNOTATION",
    "CLUSTERS_ANNOTATION",
    "CORDONED_ANNOTATION",
    "DEFAULT_DRAIN_TIMEOUT_SECONDS",
    "DEFAULT_FLEET_MAX_UNAVAILABLE",
    "DEFAULT_MANAGED_SELECTOR",
    "DRAIN_ANNOTATION",
    "DRAIN_DEADLINE_ANNOTATION",
    "DRAIN_MESSAGE_ANNOTATION",
    "FLEET",
    "HOSTNAME_LABEL",
    "NODE_LABELS",
    "QUARANTINE",
    "QUARANTINED_LABEL",
    "QUARANTINE_ANNOTATIONS",
    "REASON_ANNOTATION",
    "RELEASE_ANNOTATION",
    "TAINT_EFFECT",
    "TAINT_KEY",
    "AlertDecision",
    "Breaker",
    "ClusterOnNode",
    "Fleet",
    "GpuAlert",
    "HealthPolicy",
    "HealthSettings",
    "Hold",
    "NodeLookup",
    "NodeView",
    "Outcome",
    "PlannedAction",
    "Requirement",
    "alerts_from_payload",
    "apply_to_fleet",
    "build_dry_run_plan",
    "build_fleet",
    "build_phase_patch",
    "build_quarantine_patch",
    "build_release_patch",
    "cluster_limit",
    "compute_health_status",
    "decide",
    "drain_targets",
    "fleet_limit",
    "format_clusters",
    "health_status_changed",
    "is_managed",
    "node_hints",
    "parse_clusters",
    "parse_selector",
    "policy_from_spec",
    "quarantined_entry",
    "quarantined_nodes",
    "release_from_fleet",
    "release_reason",
    "resolve_limit",
    "resolve_node",
    "selector_matches",
    "shows_quarantined",
    "strongest",
    "taint_value",
    "view_node",
    "workers_to_remove",
]
