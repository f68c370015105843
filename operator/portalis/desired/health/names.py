"""The names Portalis writes on a quarantined Node and reads in alerts, and the operator-wide defaults.

The runbooks and ``kubectl`` commands use these names; change them only together with docs/."""

from __future__ import annotations

from portalis.api.meta import Key

# on the Node
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


# in alerts
ACTION_LABEL = "portalis_action"

QUARANTINE = "quarantine"

# labels that name the node, most specific first: dcgm-exporter's Hostname, the node name Prometheus'
# Kubernetes service discovery relabels in, then the scrape target
NODE_LABELS = ("Hostname", "node", "kubernetes_node", "node_name", "nodename", "instance")

HOSTNAME_LABEL = "kubernetes.io/hostname"


# operator-wide defaults
DEFAULT_MANAGED_SELECTOR = "nvidia.com/gpu.present=true"

DEFAULT_FLEET_MAX_UNAVAILABLE = "10%"

DEFAULT_DRAIN_TIMEOUT_SECONDS = 300

FLEET: Key = ("*", "*")  # the scope of the fleet-wide limit, in metrics and breaker bookkeeping
