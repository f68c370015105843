"""The pydantic API models: examples parse, invalid objects are rejected like the apiserver rejects them,
defaults are what the API reference says, and the money, quantity and percentage helpers are exact."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from portalis.api.v1alpha1 import (
    Backend,
    BudgetAction,
    Condition,
    ConditionStatus,
    EccAction,
    EngineName,
    GpuType,
    Priority,
    TranslationCluster,
    TranslationClusterSpec,
    TranslationClusterStatus,
    TranslationJob,
    TranslationJobSpec,
    TranslationJobStatus,
    format_money,
    is_money,
    is_quantity,
    parse_money,
    parse_quantity,
    resolve_count_or_percent,
)
from portalis.api.v1alpha1.common import COUNT_OR_PERCENT_MESSAGE, MONEY_MESSAGE, is_label_key
from portalis.desired.merge import merge_patch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))
CASES: list[dict[str, Any]] = yaml.safe_load((ROOT / "tests" / "integration" / "admission_cases.yaml").read_text())
MODELS: dict[str, type[TranslationCluster] | type[TranslationJob]] = {
    "TranslationCluster": TranslationCluster,
    "TranslationJob": TranslationJob,
}
QUEUE = {"urlSecretRef": {"name": "portalis-redis", "key": "url"}}
STORAGE = {"bucket": "portalis-artifacts"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


# --- examples ----------------------------------------------------------------------------------------------


def test_the_examples_are_all_there() -> None:
    names = {p.name for p in EXAMPLES}
    assert names >= {
        "translationcluster-h100.yaml",
        "translationcluster-a100.yaml",
        "translationcluster-spot.yaml",
        "translationcluster-dask.yaml",
        "translationcluster-budget.yaml",
        "translationjob-interactive.yaml",
        "translationjob-batch.yaml",
        "translationjob-training.yaml",
        "translationjob-lowpriority.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_parses(path: Path) -> None:
    manifest = load(path)
    assert "namespace" not in manifest["metadata"], "examples must apply into any namespace"
    obj = MODELS[manifest["kind"]].model_validate(manifest)
    assert obj.metadata.name
    # Round trip: what the operator would write back reads the same.
    again = MODELS[manifest["kind"]].model_validate(obj.model_dump(mode="json", exclude_none=True))
    assert again == obj


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_secrets_have_the_documented_names(path: Path) -> None:
    spec = load(path)["spec"]
    if "queue" in spec and "urlSecretRef" in spec["queue"]:
        assert spec["queue"]["urlSecretRef"]["name"] == "portalis-redis"
    if "storage" in spec and "credentialsSecretRef" in spec["storage"]:
        assert spec["storage"]["credentialsSecretRef"]["name"] == "portalis-s3"


def test_h100_example() -> None:
    tc = TranslationCluster.model_validate(load(ROOT / "manifests/examples/translationcluster-h100.yaml"))
    assert tc.metadata.name == "h100"
    assert tc.spec.backend is Backend.RAY
    assert tc.spec.workers.gpu_type is GpuType.H100
    assert (tc.spec.workers.gpus_per_worker, tc.spec.workers.min_workers, tc.spec.workers.max_workers) == (1, 2, 8)


def test_variant_examples() -> None:
    spot = TranslationCluster.model_validate(load(ROOT / "manifests/examples/translationcluster-spot.yaml"))
    assert spot.spec.workers.spot and spot.spec.workers.gpu_type is GpuType.A100
    dask = TranslationCluster.model_validate(load(ROOT / "manifests/examples/translationcluster-dask.yaml"))
    assert dask.spec.backend is Backend.DASK
    assert dask.spec.queue.url is not None, "one example shows the plain URL option"


def test_budget_example_documents_every_on_exceeded_setting() -> None:
    path = ROOT / "manifests/examples/translationcluster-budget.yaml"
    tc = TranslationCluster.model_validate(load(path))
    assert tc.spec.budget is not None and tc.spec.pricing is not None
    comments = "\n".join(line for line in path.read_text().splitlines() if line.lstrip().startswith("#"))
    for action in BudgetAction:
        assert re.search(rf"#\s+{action.value}\b", comments), f"{action.value} is not explained"


@pytest.mark.parametrize("path", [p for p in EXAMPLES if p.name.startswith("translationjob-")], ids=lambda p: p.name)
def test_job_examples_point_at_h100(path: Path) -> None:
    job = TranslationJob.model_validate(load(path))
    assert job.spec.cluster_ref.name == "h100"


def test_job_examples_cover_every_priority() -> None:
    seen = {
        TranslationJob.model_validate(load(p)).spec.priority for p in EXAMPLES if p.name.startswith("translationjob")
    }
    assert seen == set(Priority)


# --- invalid objects ---------------------------------------------------------------------------------------


def test_admission_cases_are_well_formed() -> None:
    assert len(CASES) >= 24
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    for case in CASES:
        assert set(case) <= {"name", "manifest", "update", "expect"}
        assert case["expect"] and case["manifest"]["kind"] in MODELS
    expects = {c["expect"] for c in CASES}
    for kind in ("Unsupported value", "Required value", "should match", "should be less than or equal to"):
        assert kind in expects
    assert "should be greater than or equal to" in expects
    assert any("update" in c for c in CASES)


REJECT_CASES = [c for c in CASES if "update" not in c]
UPDATE_CASES = [c for c in CASES if "update" in c]
# Schema-level errors are worded by the apiserver; the others carry a rule's own message.
GENERIC = ("Unsupported value", "Required value", "should match", "should be", "Duplicate value", "unknown field")
RULE_CASES = [c for c in REJECT_CASES if not c["expect"].startswith(GENERIC)]


@pytest.mark.parametrize("case", REJECT_CASES, ids=[c["name"] for c in REJECT_CASES])
def test_models_reject_what_the_apiserver_rejects(case: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        MODELS[case["manifest"]["kind"]].model_validate(case["manifest"])


@pytest.mark.parametrize("case", RULE_CASES, ids=[c["name"] for c in RULE_CASES])
def test_cel_messages_match_the_models(case: dict[str, Any]) -> None:
    """Where the apiserver answers with a rule's own message, the models raise the same message."""
    with pytest.raises(ValidationError) as info:
        MODELS[case["manifest"]["kind"]].model_validate(case["manifest"])
    assert case["expect"] in str(info.value)


@pytest.mark.parametrize("case", UPDATE_CASES, ids=[c["name"] for c in UPDATE_CASES])
def test_update_cases_are_valid_objects_before_and_after(case: dict[str, Any]) -> None:
    """Transition rules compare old and new; each object on its own is valid."""
    model = MODELS[case["manifest"]["kind"]]
    model.model_validate(case["manifest"])
    model.model_validate(merge_patch(case["manifest"], case["update"]))


def test_cross_field_rules() -> None:
    with pytest.raises(ValidationError, match="minWorkers must be less than or equal to maxWorkers"):
        TranslationClusterSpec.model_validate(
            {"queue": QUEUE, "storage": STORAGE, "workers": {"minWorkers": 3, "maxWorkers": 2}}
        )
    with pytest.raises(ValidationError, match="set exactly one of url and urlSecretRef"):
        TranslationClusterSpec.model_validate({"queue": {}, "storage": STORAGE})
    ok = TranslationClusterSpec.model_validate(
        {
            "queue": QUEUE,
            "storage": STORAGE,
            "pricing": {"onDemandGpuHour": "4"},
            "budget": {"daily": "99.99", "weekly": "100", "monthly": "100.00"},
        }
    )
    assert ok.budget is not None and ok.budget.weekly == "100"


# --- defaults ----------------------------------------------------------------------------------------------


def test_cluster_defaults() -> None:
    spec = TranslationClusterSpec.model_validate({"queue": QUEUE, "storage": STORAGE})
    assert spec.backend is Backend.RAY
    assert spec.image == "ghcr.io/portalis/worker:0.1.0"
    assert spec.suspend is False
    assert spec.engine.name is EngineName.PY2MANY
    w = spec.workers
    assert (w.gpu_type, w.gpus_per_worker, w.min_workers, w.max_workers, w.spot) == (GpuType.ANY, 1, 0, 4, False)
    a = spec.autoscaling
    assert (a.enabled, a.target_items_per_worker) == (True, 50)
    assert (a.scale_up_stabilization_seconds, a.scale_down_stabilization_seconds) == (0, 300)
    assert a.max_step_up is None and a.max_step_down is None
    h = spec.health
    assert (h.ecc_action, h.dry_run, h.max_unavailable_nodes, h.drain_timeout_seconds) == (
        EccAction.CORDON,
        False,
        1,
        300,
    )
    assert spec.storage.region == "us-east-1"
    assert spec.budget is None and spec.pricing is None and spec.admit_namespaces is None


def test_budget_defaults() -> None:
    spec = TranslationClusterSpec.model_validate(
        {"queue": QUEUE, "storage": STORAGE, "pricing": {"onDemandGpuHour": "1"}, "budget": {"monthly": "10"}}
    )
    assert spec.budget is not None
    assert (spec.budget.alert_threshold_percent, spec.budget.on_exceeded, spec.budget.timezone) == (
        80,
        BudgetAction.ALERT,
        "UTC",
    )


def test_job_defaults() -> None:
    spec = TranslationJobSpec.model_validate({"clusterRef": {"name": "h100"}, "source": {"bucket": "src-bucket"}})
    assert spec.source.include == ["**/*.py"] and spec.source.exclude == [] and spec.source.prefix == ""
    assert (spec.source_language.value, spec.target_language.value, spec.priority) == ("python", "rust", Priority.BATCH)
    assert (spec.max_attempts_per_item, spec.suspend, spec.tenant, spec.max_cost) == (3, False, None, None)
    other = TranslationJobSpec.model_validate({"clusterRef": {"name": "h100"}, "source": {"bucket": "src-bucket"}})
    other.source.include.append("**/*.pyi")
    assert spec.source.include == ["**/*.py"], "defaults are not shared between objects"


def test_specs_dump_camel_case() -> None:
    spec = TranslationClusterSpec.model_validate({"queue": QUEUE, "storage": STORAGE})
    dumped = spec.model_dump(mode="json", exclude_none=True)
    assert dumped["workers"]["gpusPerWorker"] == 1
    assert dumped["queue"]["urlSecretRef"] == {"name": "portalis-redis", "key": "url"}
    assert "gpus_per_worker" not in dumped["workers"]


def test_admit_namespaces() -> None:
    own = TranslationClusterSpec.model_validate({"queue": QUEUE, "storage": STORAGE})
    assert own.admits("gpu", "gpu") and not own.admits("gpu", "team-a")
    listed = own.model_copy(update={"admit_namespaces": ["team-a"]})
    assert listed.admits("gpu", "team-a") and not listed.admits("gpu", "gpu")
    everyone = own.model_copy(update={"admit_namespaces": ["*"]})
    assert everyone.admits("gpu", "anything")


# --- status ------------------------------------------------------------------------------------------------


def test_cluster_status_round_trip() -> None:
    raw = {
        "observedGeneration": 3,
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "WorkersReady", "lastTransitionTime": "2025-01-31T12:00:00Z"}
        ],
        "workers": {"desired": 4, "ready": 3},
        "budget": {"daily": {"spent": "12.50", "limit": "500.00", "percent": 2}},
        "quarantinedNodes": [{"name": "gpu-node-7", "reason": "XID 48"}],
        "someFutureField": {"ignored": True},
    }
    status = TranslationClusterStatus.model_validate(raw)
    assert status.workers is not None and status.workers.busy == 0
    assert status.conditions[0].status is ConditionStatus.TRUE
    dumped = status.model_dump(mode="json", exclude_none=True)
    assert dumped["conditions"][0]["lastTransitionTime"] == "2025-01-31T12:00:00Z"
    assert dumped["budget"]["daily"] == {"spent": "12.50", "limit": "500.00", "percent": 2}
    assert "someFutureField" not in dumped


def test_job_status_dump() -> None:
    status = TranslationJobStatus(progress_percent=40, failed_items=["a.py"])
    assert status.model_dump(mode="json", exclude_none=True) == {
        "conditions": [],
        "progressPercent": 40,
        "verifiedPercent": 0,
        "failedItems": ["a.py"],
    }
    with pytest.raises(ValidationError):
        TranslationJobStatus(progress_percent=101)
    with pytest.raises(ValidationError):
        TranslationJobStatus(verified_percent=101)


def test_job_spec_verifies_by_default_and_names_what_counts_as_failed() -> None:
    spec = TranslationJobSpec.model_validate({"clusterRef": {"name": "c"}, "source": {"bucket": "src-bucket"}})
    assert spec.verify.enabled is True and spec.verify.count_as_failed == "Failed"
    spec = TranslationJobSpec.model_validate(
        {"clusterRef": {"name": "c"}, "source": {"bucket": "src-bucket"}, "verify": {"countAsFailed": "NotCompiling"}}
    )
    assert spec.verify.count_as_failed == "NotCompiling"
    with pytest.raises(ValidationError):
        TranslationJobSpec.model_validate(
            {"clusterRef": {"name": "c"}, "source": {"bucket": "src-bucket"}, "verify": {"countAsFailed": "Sometimes"}}
        )
    with pytest.raises(ValidationError):
        TranslationJobStatus(failed_items=[f"{i}.py" for i in range(101)])


def test_condition_times_are_rfc3339() -> None:
    c = Condition(
        type="Ready", status=ConditionStatus.FALSE, last_transition_time=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    )
    assert c.model_dump(mode="json", exclude_none=True)["lastTransitionTime"] == "2025-01-02T03:04:05Z"


# --- money -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0", "5", "500.00", "0.5", "12.34", "1000000"])
def test_money_accepts(text: str) -> None:
    assert is_money(text)
    assert parse_money(text) == Decimal(text)


@pytest.mark.parametrize("text", ["", "-1", "1.234", "1.", ".5", "1,00", "$5", "1e3", " 5", "5\n", "\uff15"])
def test_money_rejects(text: str) -> None:
    assert not is_money(text)
    with pytest.raises(ValueError, match=re.escape(MONEY_MESSAGE)):
        parse_money(text)


def test_format_money_rounds_half_up() -> None:
    assert format_money(Decimal("1.005")) == "1.01"
    assert format_money(Decimal("2.344")) == "2.34"
    assert format_money(7) == "7.00"


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_money_round_trip(amount: Decimal) -> None:
    text = format_money(amount)
    assert is_money(text)
    assert parse_money(text) == amount


# --- quantities and percentages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2, Decimal(2)),
        ("2", Decimal(2)),
        ("500m", Decimal("0.5")),
        ("1Gi", Decimal(2**30)),
        ("8Gi", Decimal(8 * 2**30)),
        ("1.5k", Decimal(1500)),
        ("1e3", Decimal(1000)),
        ("100M", Decimal(10**8)),
        ("+1", Decimal(1)),
    ],
)
def test_parse_quantity(value: int | str, expected: Decimal) -> None:
    assert parse_quantity(value) == expected


@pytest.mark.parametrize("value", ["lots", "", "1.2.3", "Gi", "1 Gi", "1gi"])
def test_parse_quantity_rejects(value: str) -> None:
    assert not is_quantity(value)
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        parse_quantity(value)


def test_negative_quantities_are_not_accepted() -> None:
    assert not is_quantity(-1)
    assert not is_quantity("-500m")
    assert not is_quantity(True)


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        (1, 10, False, 1),
        (0, 10, False, 0),
        ("10%", 25, False, 2),
        ("10%", 25, True, 3),
        ("100%", 7, False, 7),
        ("0%", 7, True, 0),
        ("50%", 0, True, 0),
    ],
)
def test_resolve_count_or_percent(value: int | str, total: int, round_up: bool, expected: int) -> None:
    assert resolve_count_or_percent(value, total, round_up=round_up) == expected


@pytest.mark.parametrize("value", ["ten", "101%", "5", "-1%", "10 %"])
def test_resolve_count_or_percent_rejects(value: str) -> None:
    with pytest.raises(ValueError, match=re.escape(COUNT_OR_PERCENT_MESSAGE)):
        resolve_count_or_percent(value, 10)


@given(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=10_000))
def test_percent_of_total_is_within_bounds(percent: int, total: int) -> None:
    down = resolve_count_or_percent(f"{percent}%", total)
    up = resolve_count_or_percent(f"{percent}%", total, round_up=True)
    assert 0 <= down <= up <= total
    assert up - down <= 1
    assert down * 100 <= percent * total <= up * 100


# --- labels ------------------------------------------------------------------------------------------------

# A reference implementation, written from Kubernetes' IsQualifiedName and IsValidLabelValue rather than from
# the patterns the models use.
_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def kubernetes_label_key(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _SUBDOMAIN.fullmatch(prefix)):
        return False
    return 0 < len(name) <= 63 and _NAME.fullmatch(name) is not None


def kubernetes_label_value(value: str) -> bool:
    return value == "" or (len(value) <= 63 and _NAME.fullmatch(value) is not None)


LABEL_KEYS_OK = [
    "disktype",
    "kubernetes.io/hostname",
    "nvidia.com/gpu.product",
    "A_b.c-d",
    "a" * 63,
    "x/" + "a" * 63,
    "a" * 253 + "/b",
    "a.b-c.d/E_F",
]
LABEL_KEYS_BAD = [
    "",
    "disk type",
    "-a",
    "a-",
    "a" * 64,
    "a" * 254 + "/b",
    "/a",
    "a/",
    "a/b/c",
    "Upper.io/x",
    "\u00fc",
    "a..b/c",
    "a\n",
    "\x00",
    "k\u0087",
]


@pytest.mark.parametrize("key", LABEL_KEYS_OK)
def test_label_keys_accepted(key: str) -> None:
    assert is_label_key(key) and kubernetes_label_key(key)
    spec = TranslationClusterSpec.model_validate(
        {"queue": QUEUE, "storage": STORAGE, "workers": {"nodeSelector": {key: "v"}}}
    )
    assert spec.workers.node_selector == {key: "v"}


@pytest.mark.parametrize("key", LABEL_KEYS_BAD)
def test_label_keys_rejected(key: str) -> None:
    assert not is_label_key(key) and not kubernetes_label_key(key)
    with pytest.raises(ValidationError, match="every node selector key must be a Kubernetes label key"):
        TranslationClusterSpec.model_validate(
            {"queue": QUEUE, "storage": STORAGE, "head": {"nodeSelector": {key: "v"}}}
        )


@given(st.text(alphabet=st.sampled_from("aZ09-_./\u00e9 "), max_size=80) | st.sampled_from(LABEL_KEYS_OK))
def test_label_key_check_agrees_with_kubernetes(key: str) -> None:
    assert is_label_key(key) == kubernetes_label_key(key)


@given(st.text(alphabet=st.sampled_from("aZ09-_./\u00e9 \x85"), max_size=70))
def test_node_selector_values_are_label_values(value: str) -> None:
    data = {"queue": QUEUE, "storage": STORAGE, "workers": {"nodeSelector": {"disktype": value}}}
    if kubernetes_label_value(value):
        TranslationClusterSpec.model_validate(data)
    else:
        with pytest.raises(ValidationError):
            TranslationClusterSpec.model_validate(data)


def test_gpu_product_is_a_label_value() -> None:
    ok = {"queue": QUEUE, "storage": STORAGE, "workers": {"gpuProduct": "NVIDIA-H100-80GB-HBM3"}}
    assert TranslationClusterSpec.model_validate(ok).workers.gpu_product == "NVIDIA-H100-80GB-HBM3"
    for bad in ("NVIDIA H100", "x" * 64, "-H100"):
        with pytest.raises(ValidationError):
            TranslationClusterSpec.model_validate(merge_patch(ok, {"workers": {"gpuProduct": bad}}))


@pytest.mark.parametrize(
    "toleration",
    [
        {"operator": "Exists"},
        {"key": "", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "dedicated", "value": "portalis"},
        {"key": "dedicated", "operator": "Equal", "value": ""},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
    ],
)
def test_tolerations_accepted(toleration: dict[str, Any]) -> None:
    TranslationClusterSpec.model_validate(
        {"queue": QUEUE, "storage": STORAGE, "workers": {"tolerations": [toleration]}}
    )


@pytest.mark.parametrize(
    ("toleration", "message"),
    [
        ({"key": "bad key", "operator": "Exists"}, "must be empty or a Kubernetes label key"),
        ({"key": "dedicated", "value": "team a"}, "should match pattern"),
        ({"value": "portalis"}, "a toleration without a key tolerates every taint and needs operator Exists"),
        (
            {"key": "", "operator": "Equal"},
            "a toleration without a key tolerates every taint and needs operator Exists",
        ),
        ({"key": "a", "operator": "Exists", "value": "b"}, "a toleration with operator Exists matches every value"),
        ({"key": "a", "operator": "Exists", "tolerationSeconds": 5}, "tolerationSeconds needs effect NoExecute"),
        ({"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5}, "tolerationSeconds needs effect NoExecute"),
    ],
)
def test_tolerations_rejected(toleration: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TranslationClusterSpec.model_validate(
            {"queue": QUEUE, "storage": STORAGE, "head": {"tolerations": [toleration]}}
        )
