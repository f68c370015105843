"""The GPU health policy (portalis.desired.health): node mapping, decisions, limits, the breaker, patches, status.

The properties: whatever alerts and releases arrive, in any order, no more nodes are quarantined than the
fleet-wide limit and each cluster's limit allow; a node outside the managed selector is never chosen; and a
release undoes exactly what a quarantine wrote.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portalis.api.alertmanager import WebhookPayload
from portalis.api.meta import parse_time
from portalis.api.v1alpha1.cluster import EccAction, HealthSpec, QuarantinePhase
from portalis.desired.health import (
    ACTION_ANNOTATION,
    AT_ANNOTATION,
    BY_ANNOTATION,
    CLUSTERS_ANNOTATION,
    CORDONED_ANNOTATION,
    DRAIN_ANNOTATION,
    FLEET,
    QUARANTINE_ANNOTATIONS,
    QUARANTINED_LABEL,
    RELEASE_ANNOTATION,
    TAINT_KEY,
    AlertDecision,
    Breaker,
    ClusterOnNode,
    GpuAlert,
    HealthPolicy,
    HealthSettings,
    NodeView,
    Outcome,
    PlannedAction,
    alerts_from_payload,
    apply_to_fleet,
    build_dry_run_plan,
    build_fleet,
    build_phase_patch,
    build_quarantine_patch,
    build_release_patch,
    cluster_limit,
    compute_health_status,
    decide,
    drain_targets,
    fleet_limit,
    format_clusters,
    health_status_changed,
    node_hints,
    parse_clusters,
    parse_selector,
    policy_from_spec,
    release_from_fleet,
    release_reason,
    resolve_limit,
    resolve_node,
    selector_matches,
    taint_value,
    view_node,
)
from portalis.desired.merge import merge_patch
from portalis.desired.pods import CLUSTER_LABEL, ROLE_LABEL
from portalis.desired.podview import PodView, view_pod

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
GPU = {"nvidia.com/gpu.present": "true"}
DEFAULT = HealthSettings()


def node(name: str, *, gpu: bool = True, **kw: Any) -> NodeView:
    labels = {"kubernetes.io/hostname": name, **(GPU if gpu else {}), **kw.pop("labels", {})}
    return NodeView(name=name, labels=labels, **kw)


def dbe(host: str, *, firing: bool = True, label: str = "Hostname", **extra: str) -> GpuAlert:
    labels = {
        "alertname": "PortalisGpuEccDoubleBitErrors",
        "portalis_action": "quarantine",
        "gpu": "0",
        "UUID": "GPU-abc",
        label: host,
        **extra,
    }
    return GpuAlert("PortalisGpuEccDoubleBitErrors", firing, labels, summary=f"ECC errors on {host}")


def fleet_of(*views: NodeView, settings_: HealthSettings = DEFAULT, **kw: Any) -> Any:
    return build_fleet(views, settings_, **kw)


# ---- selectors, limits, settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("nvidia.com/gpu.present=true", GPU, True),
        ("nvidia.com/gpu.present=true", {}, False),
        ("nvidia.com/gpu.present==true", GPU, True),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("a in (x, y),b", {"a": "y", "b": ""}, True),
        ("a notin (x,y)", {"a": "x"}, False),
        ("!spot", {"spot": "1"}, False),
        ("!spot", {}, True),
        ("", {"anything": "at all"}, True),
        ("pool=a, nvidia.com/gpu.present=true", {"pool": "a", **GPU}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(parse_selector(selector), labels) is expected


@pytest.mark.parametrize("bad", ["=x", "a b c", "in (x)"])
def test_a_malformed_selector_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="label selector"):
        parse_selector(bad)


@pytest.mark.parametrize(
    ("value", "total", "expected"),
    [(1, 100, 1), (0, 10, 0), ("10%", 100, 10), ("10%", 8, 1), ("10%", 0, 0), ("50%", 5, 3), ("0%", 50, 0)],
)
def test_limits_round_percentages_up(value: int | str, total: int, expected: int) -> None:
    assert resolve_limit(value, total) == expected


def test_settings_from_env_defaults_and_errors() -> None:
    s = HealthSettings.from_env({})
    assert s.default_action == EccAction.CORDON and s.fleet_max_unavailable == "10%"
    assert s.managed_selector_text == "nvidia.com/gpu.present=true"
    s = HealthSettings.from_env(
        {"PORTALIS_DEFAULT_ECC_ACTION": "CordonAndDrain", "PORTALIS_FLEET_MAX_UNAVAILABLE": "3", "POD_NAME": "op-1"}
    )
    assert s.default_action == EccAction.CORDON_AND_DRAIN and s.fleet_max_unavailable == 3 and s.identity == "op-1"
    for env, name in [
        ({"PORTALIS_DEFAULT_ECC_ACTION": "Reboot"}, "PORTALIS_DEFAULT_ECC_ACTION"),
        ({"PORTALIS_FLEET_MAX_UNAVAILABLE": "ten"}, "PORTALIS_FLEET_MAX_UNAVAILABLE"),
        ({"PORTALIS_MANAGED_NODE_SELECTOR": "a b"}, "PORTALIS_MANAGED_NODE_SELECTOR"),
        ({"PORTALIS_DEFAULT_DRAIN_TIMEOUT_SECONDS": "0"}, "PORTALIS_DEFAULT_DRAIN_TIMEOUT_SECONDS"),
    ]:
        with pytest.raises(ValueError, match=name):
            HealthSettings.from_env(env)


def test_policy_from_spec() -> None:
    p = policy_from_spec(HealthSpec.model_validate({"eccAction": "CordonAndDrain", "maxUnavailableNodes": "25%"}))
    assert p == HealthPolicy(EccAction.CORDON_AND_DRAIN, False, "25%", 300)
    assert policy_from_spec(None) == HealthPolicy()


# ---- alerts and nodes -----------------------------------------------------------------------------------


def test_node_hints_prefer_hostname_and_strip_ports() -> None:
    labels = {"instance": "10.0.0.7:9400", "Hostname": "gpu-1", "node": "gpu-1"}
    assert node_hints(labels) == ["gpu-1", "10.0.0.7"]
    assert node_hints({"instance": "[fd00::7]:9400"}) == ["fd00::7"]
    assert node_hints({}) == []


def test_resolve_node_by_name_hostname_label_and_address() -> None:
    nodes = {
        "ip-10-0-0-7.ec2.internal": NodeView(
            "ip-10-0-0-7.ec2.internal", labels={"kubernetes.io/hostname": "ip-10-0-0-7"}, addresses=("10.0.0.7",)
        ),
        "gpu-2": NodeView("gpu-2"),
    }
    assert resolve_node({"Hostname": "gpu-2"}, nodes) == "gpu-2"
    assert resolve_node({"Hostname": "ip-10-0-0-7"}, nodes) == "ip-10-0-0-7.ec2.internal"
    assert resolve_node({"instance": "10.0.0.7:9400"}, nodes) == "ip-10-0-0-7.ec2.internal"
    assert resolve_node({"Hostname": "nope", "node": "gpu-2"}, nodes) == "gpu-2"
    assert resolve_node({"Hostname": "nope"}, nodes) is None


def test_alerts_from_payload_fill_in_common_labels() -> None:
    payload = WebhookPayload.model_validate(
        {
            "status": "firing",
            "commonLabels": {"alertname": "PortalisGpuEccDoubleBitErrors", "portalis_action": "quarantine"},
            "commonAnnotations": {"summary": "ECC"},
            "alerts": [
                {"status": "firing", "labels": {"Hostname": "gpu-1", "gpu": "3"}, "fingerprint": "f1"},
                {"status": "resolved", "labels": {"alertname": "Other", "Hostname": "gpu-2"}},
            ],
        }
    )
    first, second = alerts_from_payload(payload)
    assert first.name == "PortalisGpuEccDoubleBitErrors" and first.quarantine and first.firing and first.gpu == "3"
    assert first.summary == "ECC" and first.fingerprint == "f1"
    assert second.name == "Other" and not second.firing
    assert "GPU 3" in first.describe()


def test_view_node_and_pods() -> None:
    body = {
        "metadata": {
            "name": "n",
            "resourceVersion": "7",
            "uid": "u",
            "labels": {QUARANTINED_LABEL: "true"},
            "annotations": {
                CLUSTERS_ANNOTATION: "ns/a,ns/b",
                DRAIN_ANNOTATION: "Draining",
                ACTION_ANNOTATION: "CordonAndDrain",
            },
        },
        "spec": {"unschedulable": True, "taints": [{"key": TAINT_KEY, "effect": "NoSchedule"}]},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.1.1.1"}]},
    }
    v = view_node(body)
    assert v.quarantined and v.tainted and v.unschedulable and v.addresses == ("10.1.1.1",)
    assert v.clusters == (("ns", "a"), ("ns", "b")) and v.phase == QuarantinePhase.DRAINING
    assert v.action == EccAction.CORDON_AND_DRAIN and v.resource_version == "7"
    pod = view_pod(
        {
            "metadata": {
                "namespace": "ns",
                "name": "p",
                "labels": {CLUSTER_LABEL: "tc", ROLE_LABEL: "worker"},
                "ownerReferences": [{"kind": "DaemonSet", "controller": True}],
            },
            "status": {"phase": "Running"},
        },
    )
    assert pod.key == ("ns", "tc") and pod.role == "worker" and pod.daemonset and not pod.finished


def test_drain_targets_skip_daemonsets_mirror_pods_and_spared_pods() -> None:
    pods = [
        PodView("ds", namespace="a", daemonset=True),
        PodView("static", namespace="kube-system", mirror=True),
        PodView("web", namespace="a"),
        PodView("spared-worker", namespace="b"),
        PodView("leaving", namespace="a", deleting=True),
    ]
    assert [p.name for p in drain_targets(pods, {"b/spared-worker"})] == ["web", "leaving"]


@pytest.mark.parametrize(
    ("labels", "annotations", "unschedulable", "taints", "expected"),
    [
        ({QUARANTINED_LABEL: "true"}, {}, True, [{"key": TAINT_KEY}], None),
        ({QUARANTINED_LABEL: "true"}, {RELEASE_ANNOTATION: "true"}, True, [{"key": TAINT_KEY}], "annotation"),
        ({QUARANTINED_LABEL: "true"}, {RELEASE_ANNOTATION: "false"}, True, [{"key": TAINT_KEY}], None),
        ({QUARANTINED_LABEL: "true"}, {}, False, [{"key": TAINT_KEY}], "uncordoned"),
        ({QUARANTINED_LABEL: "true"}, {}, True, [], "taint removed"),
        ({}, {}, True, [{"key": TAINT_KEY}], "label removed"),
        ({}, {RELEASE_ANNOTATION: "true"}, False, [], None),  # nothing of Portalis' left
    ],
)
def test_release_reason(
    labels: dict[str, str], annotations: dict[str, str], unschedulable: bool, taints: list[Any], expected: str | None
) -> None:
    v = NodeView("n", labels=labels, annotations=annotations, unschedulable=unschedulable, taints=tuple(taints))
    assert release_reason(v) == expected


# ---- decisions ------------------------------------------------------------------------------------------


def tc(name: str, pods: tuple[str, ...] = ("w-0",), ns: str = "ml", **policy: Any) -> ClusterOnNode:
    return ClusterOnNode((ns, name), HealthPolicy(**policy), pods)


def test_unknown_unmanaged_resolved_and_observed_alerts_change_nothing() -> None:
    fleet = fleet_of(node("gpu-1"), node("cpu-1", gpu=False))
    assert decide(dbe("nope"), fleet, [], DEFAULT).outcome == Outcome.UNKNOWN_NODE
    assert decide(dbe("cpu-1"), fleet, [], DEFAULT).outcome == Outcome.UNMANAGED
    assert decide(dbe("gpu-1", firing=False), fleet, [], DEFAULT).outcome == Outcome.RESOLVED
    sbe = GpuAlert("PortalisGpuEccSingleBitErrors", True, {"Hostname": "gpu-1", "portalis_action": "observe"})
    d = decide(sbe, fleet, [tc("a")], DEFAULT)
    assert d.outcome == Outcome.OBSERVED and d.alert_only_clusters == (("ml", "a"),) and not d.writes
    no_label = GpuAlert("PortalisGpuEccDoubleBitErrors", True, {"Hostname": "gpu-1"})
    assert decide(no_label, fleet, [], DEFAULT).outcome == Outcome.OBSERVED


def test_the_strongest_acting_policy_wins_and_dry_run_and_alert_clusters_are_spared() -> None:
    fleet = fleet_of(*(node(f"gpu-{i}") for i in range(10)), settings_=HealthSettings(fleet_max_unavailable=5))
    on_node = [
        tc("a", ("a-0",), action=EccAction.CORDON),
        tc("b", ("b-0",), action=EccAction.CORDON_AND_DRAIN, drain_timeout_seconds=60),
        tc("c", ("c-0",), action=EccAction.CORDON_AND_DRAIN, dry_run=True),
        tc("d", ("d-0",), action=EccAction.ALERT),
    ]
    d = decide(dbe("gpu-3"), fleet, on_node, HealthSettings(fleet_max_unavailable=5))
    assert d.outcome == Outcome.QUARANTINED and d.writes and d.node == "gpu-3"
    assert d.action == EccAction.CORDON_AND_DRAIN and d.drain_timeout_seconds == 300
    assert d.clusters == (("ml", "a"), ("ml", "b"))
    assert d.ray_workers == {("ml", "a"): ("a-0",), ("ml", "b"): ("b-0",)}
    assert d.dry_run_clusters == (("ml", "c"),) and d.alert_only_clusters == (("ml", "d"),)
    assert d.spared == frozenset({"ml/c-0", "ml/d-0"})


def test_dry_run_and_alert_only() -> None:
    fleet = fleet_of(node("gpu-1"), node("gpu-2"))
    d = decide(dbe("gpu-1"), fleet, [tc("a", action=EccAction.CORDON_AND_DRAIN, dry_run=True)], DEFAULT)
    assert d.outcome == Outcome.DRY_RUN and not d.writes and d.dry_run_action == EccAction.CORDON_AND_DRAIN
    plan = build_dry_run_plan(d, evictable=3)
    assert plan[0] == "cordon node gpu-1" and any("evict the other 3 pods" in s for s in plan)
    assert any("remove Ray workers of ml/a" in s and "w-0" in s for s in plan)
    d = decide(dbe("gpu-1"), fleet, [tc("a", action=EccAction.ALERT)], DEFAULT)
    assert d.outcome == Outcome.ALERT_ONLY and not d.writes
    alert_default = HealthSettings(default_action=EccAction.ALERT)
    assert decide(dbe("gpu-1"), fleet, [], alert_default).outcome == Outcome.ALERT_ONLY


def test_no_cluster_on_the_node_uses_the_operator_wide_default() -> None:
    s = HealthSettings(default_action=EccAction.CORDON_AND_DRAIN, fleet_max_unavailable="50%", drain_timeout_seconds=90)
    fleet = fleet_of(node("gpu-1"), node("gpu-2"), settings_=s)
    d = decide(dbe("gpu-1"), fleet, [], s)
    assert d.outcome == Outcome.QUARANTINED and d.action == EccAction.CORDON_AND_DRAIN
    assert d.clusters == () and d.drain_timeout_seconds == 90


def test_limits_hold_the_alert() -> None:
    s = HealthSettings(fleet_max_unavailable=2)
    views = [node(f"gpu-{i}") for i in range(6)]
    fleet = fleet_of(*views, settings_=s, cluster_nodes={("ml", "a"): {"gpu-0", "gpu-1", "gpu-2"}})
    # the cluster allows one node
    d = decide(dbe("gpu-0"), fleet, [tc("a")], s)
    assert d.outcome == Outcome.QUARANTINED
    fleet = apply_to_fleet(fleet, d)
    d = decide(dbe("gpu-1"), fleet, [tc("a")], s)
    assert d.outcome == Outcome.HELD and not d.writes and d.holds[0].scope == ("ml", "a")
    assert "maxUnavailableNodes" in d.holds[0].message and d.holds[0].limit == 1
    # a node without the cluster is only limited by the fleet: 2 of 6
    d = decide(dbe("gpu-4"), fleet, [], s)
    assert d.outcome == Outcome.QUARANTINED
    fleet = apply_to_fleet(fleet, d)
    d = decide(dbe("gpu-5"), fleet, [], s)
    assert d.outcome == Outcome.HELD and d.holds[0].scope == FLEET and "PORTALIS_FLEET_MAX_UNAVAILABLE" in d.message
    assert decide(dbe("gpu-0"), fleet, [tc("a")], s).outcome == Outcome.ALREADY_QUARANTINED
    fleet = release_from_fleet(fleet, "gpu-0")
    assert decide(dbe("gpu-1"), fleet, [tc("a")], s).outcome == Outcome.QUARANTINED
    assert fleet_limit(fleet, s) == (1, 2)
    assert cluster_limit(("ml", "a"), HealthPolicy(), fleet) == (0, 1)


def test_build_fleet_counts_pending_and_ignores_released_and_unmanaged() -> None:
    q = {QUARANTINED_LABEL: "true"}
    views = [
        node("gpu-1", labels=q, annotations={CLUSTERS_ANNOTATION: "ml/a"}),
        node("gpu-2"),
        node("gpu-3", labels=q),
        node("cpu-1", gpu=False, labels=q),
    ]
    f = build_fleet(views, DEFAULT, pending={"gpu-2": (("ml", "b"),)}, released={"gpu-3"})
    assert f.managed == {"gpu-1", "gpu-2", "gpu-3"}
    assert f.quarantined == {"gpu-1", "gpu-2"}
    assert f.quarantined_for == {("ml", "a"): {"gpu-1"}, ("ml", "b"): {"gpu-2"}}


# ---- the breaker ----------------------------------------------------------------------------------------


def test_breaker_trips_once_and_resets_under_the_limit() -> None:
    b = Breaker()
    assert b.to_status() == {"tripped": False, "since": None, "reason": None}
    tripped = b.trip(NOW, "storm")
    assert tripped.tripped and tripped.since == "2025-03-01T12:00:00Z" and tripped.reason == "storm"
    again = tripped.trip(datetime(2025, 3, 1, 13, tzinfo=UTC), "more")
    assert again.since == tripped.since and again.reason == "more"
    assert again.settle(quarantined=2, limit=2).tripped
    assert not again.settle(quarantined=1, limit=2).tripped
    assert Breaker.from_status(again.to_status()) == again
    assert Breaker.from_status(None) == Breaker() == Breaker.from_status({"tripped": False, "reason": "x"})


# ---- patches and status ---------------------------------------------------------------------------------


def node_body(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "gpu-1", "resourceVersion": "42", "labels": {"a": "b", **GPU}, "annotations": {"x": "y"}},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}], **spec},
    }


def quarantine_decision(alert: GpuAlert | None = None) -> AlertDecision:
    return AlertDecision(Outcome.QUARANTINED, alert or dbe("gpu-1"), "gpu-1", EccAction.CORDON, (("ml", "a"),))


def test_quarantine_patch_cordons_taints_and_records_who_why_when() -> None:
    body = node_body()
    patch = build_quarantine_patch(view_node(body), quarantine_decision(), "portalis-operator-abc", NOW)
    assert patch["metadata"]["resourceVersion"] == "42"
    after = merge_patch(body, patch)
    assert after["spec"]["unschedulable"] is True
    assert {"key": TAINT_KEY, "value": "PortalisGpuEccDoubleBitErrors", "effect": "NoSchedule"} in after["spec"][
        "taints"
    ]
    assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in after["spec"]["taints"]
    ann = after["metadata"]["annotations"]
    assert ann[BY_ANNOTATION] == "portalis-operator-abc" and ann[AT_ANNOTATION] == "2025-03-01T12:00:00Z"
    assert ann[CLUSTERS_ANNOTATION] == "ml/a" and ann[CORDONED_ANNOTATION] == "true"
    assert ann[DRAIN_ANNOTATION] == "RemovingWorkers" and ann["x"] == "y"
    assert after["metadata"]["labels"][QUARANTINED_LABEL] == "true"
    view = view_node(after)
    assert view.quarantined and release_reason(view) is None
    # a node someone had cordoned already: Portalis does not claim the cordon
    already = build_quarantine_patch(view_node(node_body(unschedulable=True)), quarantine_decision(), "op", NOW)
    assert CORDONED_ANNOTATION not in already["metadata"]["annotations"]


def test_taint_value_is_a_valid_label_value() -> None:
    weird = GpuAlert("My Alert/with:odd*chars" + "x" * 80, True, {})
    value = taint_value(weird)
    assert len(value) <= 63 and all(c.isalnum() or c in "-._" for c in value)
    assert taint_value(GpuAlert("", True, {})) == "ecc"


def test_phase_patch() -> None:
    patch = build_phase_patch(QuarantinePhase.DRAIN_BLOCKED, "pdb", deadline="2025-03-01T12:05:00Z")
    assert patch["metadata"]["annotations"][DRAIN_ANNOTATION] == "DrainBlocked"
    assert parse_time("2025-03-01T12:05:00Z") == datetime(2025, 3, 1, 12, 5, tzinfo=UTC)
    assert parse_time("garbage") is None and parse_time(None) is None


@given(
    unschedulable=st.booleans(),
    other_taints=st.lists(
        st.fixed_dictionaries(
            {"key": st.sampled_from(["a", "b.io/c", "nvidia.com/gpu"]), "effect": st.sampled_from(["NoSchedule"])}
        ),
        max_size=3,
        unique_by=lambda t: t["key"],
    ),
    labels=st.dictionaries(st.sampled_from(["x", "y", "z"]), st.sampled_from(["1", "2"]), max_size=3),
)
def test_release_undoes_exactly_what_a_quarantine_wrote(
    unschedulable: bool, other_taints: list[dict[str, str]], labels: dict[str, str]
) -> None:
    before: dict[str, Any] = {
        "metadata": {"name": "gpu-1", "resourceVersion": "1", "labels": {**labels, **GPU}, "annotations": {"k": "v"}},
        "spec": {"taints": other_taints, **({"unschedulable": True} if unschedulable else {})},
    }
    quarantined = merge_patch(before, build_quarantine_patch(view_node(before), quarantine_decision(), "op", NOW))
    quarantined["metadata"]["annotations"][RELEASE_ANNOTATION] = "true"
    view = view_node(quarantined)
    assert release_reason(view) == "annotation"
    uncordon = view.annotations.get(CORDONED_ANNOTATION) == "true"
    released = merge_patch(quarantined, build_release_patch(view, uncordon))
    released["metadata"].pop("resourceVersion")
    expected = copy.deepcopy(before)
    expected["metadata"].pop("resourceVersion")
    if not other_taints:
        expected["spec"].pop("taints")
    assert released == expected
    assert not any(k in released["metadata"]["annotations"] for k in QUARANTINE_ANNOTATIONS)


def test_health_status_lists_the_clusters_quarantined_nodes_and_plans() -> None:
    q = {QUARANTINED_LABEL: "true"}
    views = [
        node(
            "gpu-2",
            labels=q,
            annotations={
                CLUSTERS_ANNOTATION: "ml/a",
                AT_ANNOTATION: "2025-03-01T12:00:00Z",
                DRAIN_ANNOTATION: "Cordoned",
                ACTION_ANNOTATION: "Cordon",
            },
        ),
        node("gpu-1", labels=q, annotations={CLUSTERS_ANNOTATION: "ml/a,ml/b"}),
        node("gpu-3", labels=q, annotations={CLUSTERS_ANNOTATION: "ml/b"}),
        node("gpu-4", annotations={CLUSTERS_ANNOTATION: "ml/a"}),  # released
    ]
    plans = [
        PlannedAction("gpu-9", ("cordon",), "old", "2025-03-01T11:00:00Z"),
        PlannedAction("gpu-9", ("cordon", "evict"), "new", "2025-03-01T12:00:00Z"),
        PlannedAction("gpu-8", ("cordon",), "x", "2025-03-01T11:30:00Z"),
    ]
    status = compute_health_status(("ml", "a"), fleet_of(*views), Breaker().trip(NOW, "storm"), plans)
    assert [e["name"] for e in status["quarantinedNodes"]] == ["gpu-1", "gpu-2"]
    assert status["quarantinedNodes"][1] == {
        "name": "gpu-2",
        "since": "2025-03-01T12:00:00Z",
        "action": "Cordon",
        "phase": "Cordoned",
    }
    assert [p["node"] for p in status["plannedNodeActions"]] == ["gpu-9", "gpu-8"]
    assert status["plannedNodeActions"][0]["reason"] == "new"
    assert status["circuitBreaker"]["tripped"] is True
    assert health_status_changed({}, status)
    assert not health_status_changed(status, status)
    empty = compute_health_status(("ml", "z"), fleet_of(*views), None)
    assert "circuitBreaker" not in empty and not health_status_changed({}, empty)


def test_the_status_that_resets_the_breaker_after_a_release_no_longer_lists_the_released_node() -> None:
    # An alert storm quarantined gpu-1 and gpu-2 for ml/a (maxUnavailableNodes 2) and tripped its breaker. A
    # person released gpu-1; the operator removed its marks, but the node watch has not delivered that yet, so the
    # cache still shows gpu-1 quarantined. The status sync settles the breaker against the fleet, which counts
    # the release, and must list the nodes from that same fleet: never "breaker reset" beside gpu-1.
    key = ("ml", "a")
    marks = {CLUSTERS_ANNOTATION: "ml/a", DRAIN_ANNOTATION: "Cordoned", ACTION_ANNOTATION: "Cordon"}
    q = {QUARANTINED_LABEL: "true"}
    views = [node("gpu-1", labels=q, annotations=marks), node("gpu-2", labels=q, annotations=marks), node("gpu-3")]
    policy = HealthPolicy(max_unavailable=2)
    cluster_nodes = {key: {"gpu-1", "gpu-2", "gpu-3"}}
    tripped = Breaker().trip(NOW, "ml/a: 2 of at most 2 nodes already quarantined")
    before = compute_health_status(key, fleet_of(*views, cluster_nodes=cluster_nodes), tripped)
    assert [e["name"] for e in before["quarantinedNodes"]] == ["gpu-1", "gpu-2"]

    for fleet in (
        fleet_of(*views, cluster_nodes=cluster_nodes, released={"gpu-1"}),  # as the controller builds it
        release_from_fleet(fleet_of(*views, cluster_nodes=cluster_nodes), "gpu-1"),
    ):
        assert cluster_limit(key, policy, fleet) == (1, 2)
        breaker = tripped.settle(*cluster_limit(key, policy, fleet))
        status = compute_health_status(key, fleet, breaker)
        assert status["circuitBreaker"] == {"tripped": False, "since": None, "reason": None}
        assert [e["name"] for e in status["quarantinedNodes"]] == ["gpu-2"]
        assert health_status_changed(before, status)

    # quarantined again before the watch shows the release: counted and listed again
    s = HealthSettings(fleet_max_unavailable="100%")
    released = fleet_of(*views, settings_=s, cluster_nodes=cluster_nodes, released={"gpu-1"})
    d = decide(dbe("gpu-1"), released, [ClusterOnNode(key, policy, ("w",))], s)
    assert d.outcome == Outcome.QUARANTINED
    again = apply_to_fleet(released, d)
    assert cluster_limit(key, policy, again) == (2, 2)
    assert [e["name"] for e in compute_health_status(key, again, None)["quarantinedNodes"]] == ["gpu-1", "gpu-2"]


def test_cluster_lists_round_trip() -> None:
    keys = [("b", "x"), ("a", "y"), ("a", "y")]
    assert parse_clusters(format_clusters(keys)) == (("a", "y"), ("b", "x"))
    assert parse_clusters("garbage,,/x,ns/") == ()


# ---- properties -----------------------------------------------------------------------------------------

limit_values = st.one_of(st.integers(0, 6), st.integers(0, 100).map(lambda p: f"{p}%"))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Any, ...]:
    managed = draw(st.integers(1, 12))
    unmanaged = draw(st.integers(0, 4))
    names = [f"gpu-{i}" for i in range(managed)] + [f"cpu-{i}" for i in range(unmanaged)]
    clusters = {}
    for c in range(draw(st.integers(0, 3))):
        nodes = draw(st.sets(st.sampled_from(names), max_size=len(names)))
        policy = HealthPolicy(
            action=draw(st.sampled_from(list(EccAction))),
            dry_run=draw(st.booleans()),
            max_unavailable=draw(limit_values),
        )
        clusters[("ml", f"c{c}")] = (nodes, policy)
    fleet_max = draw(limit_values)
    default = draw(st.sampled_from(list(EccAction)))
    events = draw(
        st.lists(
            st.tuples(st.sampled_from(["alert", "alert", "alert", "release"]), st.sampled_from(names)), max_size=40
        )
    )
    return managed, unmanaged, clusters, fleet_max, default, events


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_never_more_than_the_limits_and_never_an_unmanaged_node(scenario: tuple[Any, ...]) -> None:
    managed, unmanaged, clusters, fleet_max, default, events = scenario
    s = HealthSettings(default_action=default, fleet_max_unavailable=fleet_max)
    views = [node(f"gpu-{i}") for i in range(managed)] + [node(f"cpu-{i}", gpu=False) for i in range(unmanaged)]
    cluster_nodes = {k: frozenset(n for n in nodes if n.startswith("gpu-")) for k, (nodes, _p) in clusters.items()}
    fleet = build_fleet(views, s, cluster_nodes=cluster_nodes)
    for kind, name in events:
        if kind == "release":
            fleet = release_from_fleet(fleet, name)
            continue
        on_node = [ClusterOnNode(k, p, (f"{k[1]}-{name}",)) for k, (nodes, p) in clusters.items() if name in nodes]
        d = decide(dbe(name), fleet, on_node, s)
        if name.startswith("cpu-"):
            assert d.outcome == Outcome.UNMANAGED and not d.writes
        if d.writes:
            assert d.node in fleet.managed and d.node not in fleet.quarantined
        fleet = apply_to_fleet(fleet, d)
        assert fleet.quarantined <= fleet.managed
        assert len(fleet.quarantined) <= resolve_limit(fleet_max, managed)
        for key, (_nodes, policy) in clusters.items():
            if policy.action != EccAction.ALERT and not policy.dry_run:
                count, limit = cluster_limit(key, policy, fleet)
                assert count <= limit, (key, count, limit)
            else:  # a cluster that only alerts or dry-runs never has a node quarantined under its name
                assert not fleet.quarantined_for.get(key)


def test_a_reset_breaker_clears_its_trip_from_status_and_is_then_left_alone() -> None:
    # a merge patch of {"tripped": false} alone left since and reason behind, and every later sync found the
    # status different from the one it wanted and patched it again
    tripped = compute_health_status(("ml", "a"), fleet_of(), Breaker().trip(NOW, "storm"))
    reset = compute_health_status(("ml", "a"), fleet_of(), Breaker())
    stored = merge_patch(tripped, reset)
    assert stored["circuitBreaker"] == {"tripped": False}
    assert health_status_changed(tripped, reset) and not health_status_changed(stored, reset)
