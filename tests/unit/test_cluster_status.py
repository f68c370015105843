"""TranslationCluster status from observations: what a person reads when the backend or the queue fails."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.desired.apply import annotate, applied_replicas
from portalis.desired.cluster_status import ClusterObservation, QueueProblem, compute_cluster_status
from portalis.desired.podview import PodView

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SPEC = TranslationClusterSpec.model_validate(
    {"queue": {"url": "redis://redis:6379/0"}, "storage": {"bucket": "artifacts"}, "workers": {"minWorkers": 1}}
)
HEAD = PodView("tc-head", "head", "Running", True, False, 0, "cpu-1")
WORKER = PodView("tc-w1", "worker", "Running", True, False, 1, "gpu-1")


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


def test_a_refused_backend_object_is_reported_with_the_apiservers_words() -> None:
    why = 'The apiserver refused the RayCluster tc made from this spec: metadata.labels: Invalid value: "x y"'
    status = compute_cluster_status(SPEC, 3, {}, ClusterObservation("tc", False, False, 1, refused=why), NOW)
    assert status["phase"] == "Degraded"
    assert status["observedGeneration"] == 3
    assert conditions(status)["Ready"] == ("False", "BackendRefused", why)
    assert conditions(status)["Degraded"] == ("True", "BackendRefused", why)


def test_a_refused_update_of_a_suspended_cluster_is_still_reported() -> None:
    spec = SPEC.model_copy(update={"suspend": True})
    status = compute_cluster_status(spec, 2, {}, ClusterObservation("tc", True, True, 0, refused="no"), NOW)
    assert status["phase"] == "Degraded"
    assert conditions(status)["Ready"][1] == "BackendRefused"
    assert conditions(status)["Suspended"][0] == "True"


def test_an_accepted_backend_object_clears_the_report() -> None:
    refused = compute_cluster_status(SPEC, 1, {}, ClusterObservation("tc", False, False, 1, refused="no"), NOW)
    fixed = compute_cluster_status(SPEC, 2, refused, ClusterObservation("tc", True, False, 1, [HEAD, WORKER]), NOW)
    assert fixed["phase"] == "Ready"
    assert conditions(fixed)["Degraded"][:2] == ("False", "AsExpected")


def test_a_queue_that_cannot_be_read_makes_the_cluster_degraded_and_says_why() -> None:
    why = "The cluster's Redis does not answer: Timeout reading from socket. The operator keeps the worker count ..."
    obs = ClusterObservation("tc", True, False, 1, [HEAD, WORKER], queue_problem=QueueProblem("QueueUnavailable", why))
    status = compute_cluster_status(SPEC, 1, {}, obs, NOW)
    assert conditions(status)["Degraded"] == ("True", "QueueUnavailable", why)
    assert conditions(status)["Ready"][:2] == ("True", "ClusterReady")  # the pods are fine; scaling is not


def test_a_missing_secret_is_named_by_its_own_reason() -> None:
    problem = QueueProblem("SecretNotFound", "Secret ns/portalis-redis does not exist; create it with key url")
    obs = ClusterObservation("tc", True, False, 1, [HEAD, WORKER], queue_problem=problem)
    assert conditions(compute_cluster_status(SPEC, 1, {}, obs, NOW))["Degraded"][:2] == ("True", "SecretNotFound")


def test_missing_gpus_come_before_the_queue() -> None:
    short = PodView("tc-w1", "worker", "Pending", False, False, 0, None, unschedulable_message="0/4 nodes fit.")
    obs = ClusterObservation("tc", True, False, 1, [HEAD, short], queue_problem=QueueProblem("QueueUnavailable", "x"))
    assert conditions(compute_cluster_status(SPEC, 1, {}, obs, NOW))["Degraded"][1] == "InsufficientGPUs"


def test_the_worker_count_portalis_chose_is_kept_on_the_backend_object() -> None:
    desired = annotate({"metadata": {"name": "tc"}, "spec": {"workerGroupSpecs": [{"replicas": 3}]}}, 4, 3)
    assert applied_replicas(desired) == 3
    assert desired["metadata"]["annotations"]["portalis.dev/cluster-generation"] == "4"
    assert applied_replicas(None) is None  # not created yet: the status says
    assert applied_replicas({"metadata": {"annotations": {"portalis.dev/workers": "x"}}}) is None
