"""The operator starts against a kubeconfig, serves /healthz and observes new resources."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from portalis_devcluster.operator import OperatorProcess

pytestmark = pytest.mark.cluster

EXAMPLES = Path(__file__).parents[2] / "manifests" / "examples"


def _status(operator: OperatorProcess, namespace: str, kind: str, name: str) -> dict[str, Any]:
    out = operator.kube.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout
    status: dict[str, Any] = json.loads(out).get("status") or {}
    return status


def test_healthz(operator: OperatorProcess) -> None:
    with urllib.request.urlopen(operator.health_url, timeout=5) as resp:
        assert resp.status == 200


@pytest.mark.parametrize(
    ("kind", "example"),
    [("translationcluster", "translationcluster-h100.yaml"), ("translationjob", "translationjob-batch.yaml")],
)
def test_new_resource_gets_observed_generation_and_conditions_within_5s(
    operator: OperatorProcess, namespace: str, kind: str, example: str
) -> None:
    manifest = yaml.safe_load((EXAMPLES / example).read_text())
    name = manifest["metadata"]["name"]
    applied = time.monotonic()
    operator.kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    status: dict[str, Any] = {}
    while time.monotonic() - applied < 5:
        status = _status(operator, namespace, kind, name)
        if status.get("observedGeneration") == 1:
            break
        time.sleep(0.1)
    assert status.get("observedGeneration") == 1, f"status after 5s: {status}"
    types = {c["type"]: c for c in status["conditions"]}
    assert types, status
    for c in types.values():
        assert c["status"] in {"True", "False", "Unknown"}
        assert c["reason"] and c["lastTransitionTime"]
