"""The chart's alert rules (charts/portalis/files/prometheus-rules.yaml): valid for promtool, covered by its unit
tests (each GPU rule firing and not firing), and carrying what Alertmanager routing and the runbooks rely on.

promtool comes with Debian's `prometheus` package (`apt-get install prometheus`); without it the promtool tests
are skipped and the structural checks still run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "portalis"
RULES = CHART / "files" / "prometheus-rules.yaml"
RULE_TESTS = CHART / "tests" / "prometheus-rules.test.yaml"
RUNBOOK_BASE = "https://github.com/portalis/portalis/blob/main/docs/"

GPU_ALERTS = {
    "PortalisGpuEccDoubleBitErrors": ("critical", "quarantine", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"),
    "PortalisGpuEccSingleBitErrors": ("warning", "observe", "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"),
    "PortalisGpuXidErrors": ("warning", "observe", "DCGM_FI_DEV_XID_ERRORS"),
    "PortalisGpuRetiredPagesPending": ("warning", "observe", "DCGM_FI_DEV_RETIRED_PENDING"),
}
OPERATOR_ALERTS = {"PortalisBudgetExceeded", "PortalisQueueBacklogStuck", "PortalisOperatorDown"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return path


def rules() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r for group in doc["groups"] for r in group["rules"] if "alert" in r}


def test_promtool_check_rules() -> None:
    proc = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules())} rules found" in proc.stdout


def test_promtool_test_rules() -> None:
    proc = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS.relative_to(ROOT))], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_is_there() -> None:
    assert set(rules()) == set(GPU_ALERTS) | OPERATOR_ALERTS


def test_double_bit_ecc_rule_is_the_documented_one() -> None:
    rule = rules()["PortalisGpuEccDoubleBitErrors"]
    assert rule["expr"] == "increase(DCGM_FI_DEV_ECC_DBE_VOL_TOTAL[5m]) > 0"
    assert "for" not in rule  # acted on at the first evaluation
    assert rule["labels"] == {"severity": "critical", "portalis_action": "quarantine"}
    assert rules()["PortalisGpuRetiredPagesPending"]["expr"] == "DCGM_FI_DEV_RETIRED_PENDING > 0"
    assert rules()["PortalisBudgetExceeded"]["expr"] == "portalis_budget_percent >= 100"


@pytest.mark.parametrize("alert", sorted(GPU_ALERTS))
def test_gpu_alert_labels_and_annotations(alert: str) -> None:
    severity, action, metric = GPU_ALERTS[alert]
    rule = rules()[alert]
    assert metric in rule["expr"]
    assert rule["labels"]["severity"] == severity
    assert rule["labels"]["portalis_action"] == action
    text = rule["annotations"]["summary"] + rule["annotations"]["description"]
    for label in ("Hostname", "gpu"):  # dcgm-exporter's labels name the node and the GPU
        assert f"$labels.{label}" in text
    assert "$labels.UUID" in rule["annotations"]["description"]
    assert "$labels.modelName" in rule["annotations"]["description"]


@pytest.mark.parametrize("alert", sorted(set(GPU_ALERTS) | OPERATOR_ALERTS))
def test_runbook_links_point_at_existing_docs(alert: str) -> None:
    annotations = rules()[alert]["annotations"]
    assert {"summary", "description", "runbook_url"} <= set(annotations)
    url = annotations["runbook_url"]
    assert url.startswith(RUNBOOK_BASE), url
    path, _, anchor = url.removeprefix(RUNBOOK_BASE).partition("#")
    doc = ROOT / "docs" / path
    assert doc.is_file(), f"{alert} links to missing {doc}"
    if anchor:  # GitHub's heading anchors: lower case, spaces to dashes
        headings = [
            line.lstrip("#").strip().lower().replace(" ", "-")
            for line in doc.read_text().splitlines()
            if line.startswith("#")
        ]
        assert anchor in headings, f"{doc.name} has no heading for #{anchor}"


def test_every_gpu_rule_is_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    for alert in set(GPU_ALERTS) | OPERATOR_ALERTS:
        assert alert in firing, f"no test shows {alert} firing"
        assert alert in quiet, f"no test shows {alert} staying quiet"
