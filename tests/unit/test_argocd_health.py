"""The Argo CD health checks in docs/argocd/*.lua, run on TranslationClusters and TranslationJobs shaped as the
operator writes them.

Argo CD runs health checks in gopher-lua, a Lua 5.1, so they run here in Lua 5.1 (lupa's ``lua51``). The
fixtures in fixtures/status/ are whole objects whose status came from ``compute_cluster_status`` and
``compute_job_status``; they are checked against the CRD schemas, and the same verdicts are asserted again on
statuses computed now, so a change in what the operator writes cannot silently break the health checks.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "status"
LUA = {
    "TranslationCluster": ROOT / "docs" / "argocd" / "health-translationcluster.lua",
    "TranslationJob": ROOT / "docs" / "argocd" / "health-translationjob.lua",
}
CRDS = {
    "TranslationCluster": ROOT / "crds" / "portalis.dev_translationclusters.yaml",
    "TranslationJob": ROOT / "crds" / "portalis.dev_translationjobs.yaml",
}
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

LUPA_MISSING = "lupa is not installed: pip install 'lupa>=2.0' (Lua runtimes for Python, in the dev extras)"


def _runtime() -> Any:
    lupa = pytest.importorskip("lupa", reason=LUPA_MISSING)
    try:
        from lupa import lua51  # Lua 5.1, the language of Argo CD's gopher-lua

        return lua51.LuaRuntime(unpack_returned_tuples=True)
    except ImportError:  # pragma: no cover - lupa builds without the bundled 5.1
        return lupa.LuaRuntime(unpack_returned_tuples=True)


def _to_lua(lua: Any, value: Any) -> Any:
    """JSON to Lua as Argo CD converts objects: maps and arrays become tables, null becomes nil."""
    if isinstance(value, dict):
        table = lua.table()
        for key, item in value.items():
            if item is not None:
                table[key] = _to_lua(lua, item)
        return table
    if isinstance(value, list):
        table = lua.table()
        for i, item in enumerate(value, start=1):
            table[i] = _to_lua(lua, item)
        return table
    return value


def health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    lua = _runtime()
    lua.globals().obj = _to_lua(lua, obj)
    hs = lua.execute(LUA[kind].read_text())
    status, message = hs["status"], hs["message"]
    assert status in ARGO_STATUSES, status
    assert isinstance(message, str) and message, f"{kind} health has no message"
    return str(status), str(message)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


# --- the fixtures are what the apiserver would store ---------------------------------------------------------


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.stem)
def test_fixture_matches_crd_schema(path: Path) -> None:
    obj = json.loads(path.read_text())
    schema = yaml.safe_load(CRDS[obj["kind"]].read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(obj)]
    assert not errors


def test_lua_is_plain_lua_51() -> None:
    """gopher-lua has no goto, integer division or bit operators (Lua 5.3+), and Argo CD offers no os or io."""
    for path in LUA.values():
        code = re.sub(r"--[^\n]*", "", path.read_text())
        for construct in ("goto ", "//", "os.", "io.", "require", "<const>", "<close>"):
            assert construct not in code, f"{path.name} uses {construct!r}"


# --- TranslationCluster --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected", "message_part"),
    [
        ("translationcluster-ready", "Healthy", "workers ready with 2 GPUs"),
        ("translationcluster-creating", "Progressing", "Creating RayCluster"),
        ("translationcluster-workers-not-ready", "Progressing", "1/2 workers are ready"),
        ("translationcluster-insufficient-gpus", "Degraded", "cannot be scheduled"),
        ("translationcluster-suspended", "Suspended", "spec.suspend is true"),
        ("translationcluster-budget-exceeded", "Degraded", "reached the limit"),
        ("translationcluster-stale-generation", "Progressing", "observe generation 2"),
    ],
)
def test_cluster_health(name: str, expected: str, message_part: str) -> None:
    status, message = health("TranslationCluster", fixture(name))
    assert status == expected
    assert message_part in message


def test_cluster_without_status_is_progressing() -> None:
    obj = fixture("translationcluster-ready")
    del obj["status"]
    assert health("TranslationCluster", obj)[0] == "Progressing"


def test_cluster_over_budget_with_suspend_action_is_suspended() -> None:
    obj = fixture("translationcluster-budget-exceeded")
    obj["spec"]["budget"]["onExceeded"] = "Suspend"
    assert health("TranslationCluster", obj)[0] == "Suspended"


def test_cluster_insufficient_gpus_is_degraded_from_ready_alone() -> None:
    obj = fixture("translationcluster-insufficient-gpus")
    obj["status"]["conditions"] = [c for c in obj["status"]["conditions"] if c["type"] == "Ready"]
    assert health("TranslationCluster", obj)[0] == "Degraded"


# --- TranslationJob ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected", "message_part"),
    [
        ("translationjob-planning", "Progressing", "Listing the source"),
        ("translationjob-running", "Progressing", "433 of 1200 files finished"),
        ("translationjob-at-risk", "Progressing", "At risk:"),
        ("translationjob-succeeded", "Healthy", "1195 of 1200 files translated"),
        ("translationjob-failed", "Degraded", "200 of 1200 files failed"),
        ("translationjob-failed-source", "Degraded", "does not exist"),
        ("translationjob-budget-held", "Suspended", "daily budget"),
        ("translationjob-suspended", "Suspended", "spec.suspend is true"),
        ("translationjob-cluster-not-found", "Degraded", "fix spec.clusterRef"),
    ],
)
def test_job_health(name: str, expected: str, message_part: str) -> None:
    status, message = health("TranslationJob", fixture(name))
    assert status == expected
    assert message_part in message


def test_job_without_status_is_progressing() -> None:
    obj = fixture("translationjob-running")
    del obj["status"]
    assert health("TranslationJob", obj)[0] == "Progressing"


def test_job_with_stale_status_is_progressing() -> None:
    obj = fixture("translationjob-succeeded")
    obj["metadata"]["generation"] = 3
    assert health("TranslationJob", obj) == ("Progressing", "Waiting for the Portalis operator to observe generation 3")


# --- the same verdicts on statuses the operator computes now -------------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=30)


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _with_status(name: str, status: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    obj = copy.deepcopy(fixture(name))
    obj["metadata"]["generation"] = generation
    obj["status"] = _prune(status)
    return obj


def test_live_cluster_statuses() -> None:
    from portalis.api.v1alpha1.cluster import TranslationClusterSpec
    from portalis.desired.cluster_status import ClusterObservation, QueueProblem, compute_cluster_status
    from portalis.desired.podview import PodView

    base = fixture("translationcluster-ready")
    spec = TranslationClusterSpec.model_validate(base["spec"])
    head = PodView("h-head", "head", "Running", True, False, 0, "cpu-1")
    ok = PodView("h-w1", "worker", "Running", True, False, 1, "gpu-1")
    short = PodView("h-w2", "worker", "Pending", False, False, 0, None, unschedulable_message="0/4 nodes fit.")

    def verdict(obs: ClusterObservation, suspend: bool = False) -> str:
        s = spec.model_copy(update={"suspend": suspend})
        status = compute_cluster_status(s, 1, {}, obs, NOW)
        obj = _with_status("translationcluster-ready", status)
        obj["spec"]["suspend"] = suspend
        return health("TranslationCluster", obj)[0]

    assert verdict(ClusterObservation("h", True, False, 1, [head, ok])) == "Healthy"
    assert verdict(ClusterObservation("h", False, False, 1, [])) == "Progressing"
    assert verdict(ClusterObservation("h", True, False, 2, [head, ok, short])) == "Degraded"
    assert verdict(ClusterObservation("h", True, True, 0, []), suspend=True) == "Suspended"
    assert verdict(ClusterObservation("h", False, False, 1, [], refused="The apiserver refused it")) == "Degraded"
    no_queue = QueueProblem("QueueUnavailable", "The cluster's Redis does not answer")
    assert verdict(ClusterObservation("h", True, False, 1, [head, ok], queue_problem=no_queue)) == "Degraded"


def test_live_job_statuses() -> None:
    from portalis.api.v1alpha1.job import TranslationJobSpec
    from portalis.desired.job_status import JobObservation, Problem, compute_job_status

    base = fixture("translationjob-running")
    spec = TranslationJobSpec.model_validate(base["spec"])
    price = Decimal("3.90")

    def verdict(obs: JobObservation, suspend: bool = False) -> str:
        s = spec.model_copy(update={"suspend": suspend})
        obj = _with_status("translationjob-running", compute_job_status(s, 1, {}, obs, NOW))
        obj["spec"]["suspend"] = suspend
        return health("TranslationJob", obj)[0]

    running: dict[str, Any] = {
        "planned": True,
        "total": 10,
        "done": 4,
        "queued": 6,
        "price_per_gpu_hour": price,
        "created": T0,
    }
    assert verdict(JobObservation(planned=False, created=T0)) == "Progressing"
    assert verdict(JobObservation(**running, rate_items_per_second=1.0)) == "Progressing"
    assert (
        verdict(JobObservation(planned=True, total=10, done=10, finished=True, price_per_gpu_hour=price)) == "Healthy"
    )
    assert verdict(JobObservation(planned=True, total=10, done=2, failed=8, finished=True)) == "Degraded"
    assert verdict(JobObservation(problem=Problem("SourceBucketNotFound", "gone", True))) == "Degraded"
    assert verdict(JobObservation(problem=Problem("ClusterNotFound", "no cluster", False))) == "Degraded"
    assert (
        verdict(JobObservation(**running, budget_held=Problem("BudgetExceeded", "over budget", False))) == "Suspended"
    )
    assert verdict(JobObservation(**running), suspend=True) == "Suspended"


def test_gitops_doc_embeds_the_tested_lua() -> None:
    """docs/gitops.md shows the argocd-cm ConfigMap with exactly the Lua these tests run."""
    doc = (ROOT / "docs" / "gitops.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, flags=re.S)
    configmaps = [
        y for y in (yaml.safe_load(b) for b in blocks) if isinstance(y, dict) and y.get("kind") == "ConfigMap"
    ]
    assert len(configmaps) == 1
    data = configmaps[0]["data"]
    assert (
        data["resource.customizations.health.portalis.dev_TranslationCluster"] == LUA["TranslationCluster"].read_text()
    )
    assert data["resource.customizations.health.portalis.dev_TranslationJob"] == LUA["TranslationJob"].read_text()
