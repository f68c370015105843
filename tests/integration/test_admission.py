"""The generated CRDs against a real kube-apiserver: what they reject, accept, default, explain and print.

Every entry of ``admission_cases.yaml`` must be rejected with its expected message, every file in
``manifests/examples`` must be accepted as it is, the apiserver's defaulting must agree with the pydantic
models, and ``kubectl explain`` / ``kubectl get`` must show the descriptions and printer columns.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from portalis.api.v1alpha1 import TranslationCluster, TranslationJob
from portalis.desired.merge import merge_patch

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))
CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "admission_cases.yaml").read_text())
CRD_NAMES = ("translationclusters.portalis.dev", "translationjobs.portalis.dev")
MODELS: dict[str, type[TranslationCluster] | type[TranslationJob]] = {
    "TranslationCluster": TranslationCluster,
    "TranslationJob": TranslationJob,
}


@pytest.fixture(scope="module")
def crds(kube: Any) -> None:
    """The CRDs from ``crds/``, installed (or updated) and established."""
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in CRD_NAMES))


@pytest.fixture
def ns(kube: Any, namespace: str, crds: None) -> str:  # noqa: ARG001 (the CRDs installed first)
    """The test's namespace, created if the fixture only named it."""
    if kube.kubectl("get", "namespace", namespace, check=False).returncode != 0:
        kube.kubectl("create", "namespace", namespace, check=False)
    return namespace


def apply(kube: Any, ns: str, manifest: dict[str, Any], *, check: bool) -> Any:
    return kube.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(manifest), check=check)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_invalid_object_is_rejected(kube: Any, ns: str, case: dict[str, Any]) -> None:
    manifest = case["manifest"]
    if "update" in case:
        apply(kube, ns, manifest, check=True)
        manifest = merge_patch(manifest, case["update"])
    result = apply(kube, ns, manifest, check=False)
    assert result.returncode != 0, f"{case['name']}: accepted, but should fail with {case['expect']!r}"
    assert case["expect"] in result.stderr, f"{case['name']}: expected {case['expect']!r} in:\n{result.stderr}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_accepted_and_defaulted_like_the_models(kube: Any, ns: str, path: Path) -> None:
    manifest = yaml.safe_load(path.read_text())
    kube.kubectl("apply", "-n", ns, "-f", str(path))
    stored = json.loads(
        kube.kubectl("get", "-n", ns, manifest["kind"], manifest["metadata"]["name"], "-o", "json").stdout
    )
    model = MODELS[manifest["kind"]].model_validate(manifest)
    assert stored["spec"] == model.spec.model_dump(mode="json", exclude_none=True)


@pytest.mark.usefixtures("crds")
def test_explain_shows_descriptions(kube: Any) -> None:
    # The OpenAPI document of a new CRD is published a moment after it is established.
    deadline = time.monotonic() + 60
    while True:
        out = kube.kubectl("explain", "translationcluster.spec.workers", check=False)
        if out.returncode == 0 and "gpusPerWorker" in out.stdout:
            break
        assert time.monotonic() < deadline, f"kubectl explain never showed the schema:\n{out.stdout}{out.stderr}"
        time.sleep(1)
    text = " ".join(out.stdout.split())
    for phrase in (
        "The GPU workers: GPU model and count, bounds and placement.",
        "GPUs each worker pod requests (nvidia.com/gpu); one translator per GPU.",
        "Fewest workers kept running, even with an empty queue.",
        "Most workers the autoscaler may run; caps GPU spend.",
    ):
        assert phrase in text, f"{phrase!r} missing from kubectl explain:\n{out.stdout}"


def test_get_shows_printer_columns(kube: Any, ns: str) -> None:
    kube.kubectl("apply", "-n", ns, "-f", str(ROOT / "manifests" / "examples" / "translationcluster-h100.yaml"))
    kube.kubectl("apply", "-n", ns, "-f", str(ROOT / "manifests" / "examples" / "translationjob-batch.yaml"))
    out = kube.kubectl("get", "tc,tj", "-n", ns).stdout
    for header in ("BACKEND", "DESIRED", "READY", "GPUS", "QUEUE", "SPENT TODAY", "STATUS", "AGE"):
        assert header in out, f"{header} missing from:\n{out}"
    for header in ("CLUSTER", "PRIORITY", "PROGRESS", "DONE", "TOTAL", "COST", "ETA"):
        assert header in out, f"{header} missing from:\n{out}"
    assert "h100" in out and "Ray" in out and "Batch" in out
    wide = kube.kubectl("get", "tc,tj", "-n", ns, "-o", "wide").stdout
    for header in ("GPU TYPE", "DAILY LIMIT", "RAYCLUSTER", "FAILED", "TARGET", "TENANT"):
        assert header in wide, f"{header} missing from:\n{wide}"
    assert "portalis" in kube.kubectl("get", "crd", CRD_NAMES[0], "-o", "jsonpath={.spec.names.categories}").stdout
