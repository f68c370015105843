"""``kubectl portalis``: the pure pieces (formatting, the cost report, file selection, the job manifest, S3 and
kubeconfig resolution) and the command line, without a cluster."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from portalis.api.meta import parse_time
from portalis.api.v1alpha1 import TranslationJob
from portalis.cli import kubeconfig
from portalis.cli.kubeconfig import PluginError
from portalis.cli.kubectl.cost import build_cost_report, render_cost, window_start
from portalis.cli.kubectl.events import (
    condition_changes,
    event_key,
    event_time,
    format_conditions,
    format_event,
    sort_events,
)
from portalis.cli.kubectl.logs import parse_target
from portalis.cli.kubectl.main import build_parser, main
from portalis.cli.kubectl.output import (
    conditions_needing_attention,
    format_duration,
    format_money,
    progress_bar,
    progress_line,
    render_table,
    spend_vs_limit,
)
from portalis.cli.kubectl.release import portalis_marks, unhealthy_taint
from portalis.cli.kubectl.status import cluster_row, job_row, render_status
from portalis.cli.kubectl.submit import (
    build_job_manifest,
    default_job_name,
    dns_label,
    final_summary,
    normalise_prefix,
    parse_cluster_ref,
    parse_count_or_percent,
    resolve_s3,
    select_files,
)

NOW = datetime(2026, 11, 19, 15, 30, tzinfo=UTC)  # a Thursday


def cond(type_: str, status: str, reason: str = "R", message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def tc(name: str = "h100", ns: str = "ml", status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"backend": "Ray"}, "status": status or {}}


def tj(name: str = "j", ns: str = "ml", status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterRef": {"name": "h100"}, "priority": "Batch", **spec},
        "status": status or {},
    }


# ---- formatting ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "bar"),
    [
        (0, "[" + "." * 20 + "]"),
        (None, "[" + "." * 20 + "]"),
        (45, "[" + "#" * 9 + "." * 11 + "]"),
        (100, "[" + "#" * 20 + "]"),
        (250, "[" + "#" * 20 + "]"),
        (-5, "[" + "." * 20 + "]"),
    ],
)
def test_progress_bar(percent: int | None, bar: str) -> None:
    assert progress_bar(percent) == bar


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0s"), (45, "45s"), (185, "3m05s"), (7800, "2h10m"), (97200, "1d03h"), (-3, "0s")],
)
def test_format_duration(seconds: int | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_money_is_two_decimals_and_missing_or_malformed_is_zero() -> None:
    assert format_money("12.3") == "12.30"
    assert format_money("1.005") == "1.01"
    assert format_money(None) == "0.00"
    assert format_money("") == "0.00"
    assert format_money("n/a") == "0.00"
    assert format_money("NaN") == "0.00"
    assert spend_vs_limit({"spent": "12.3", "limit": "500"}) == "12.30/500.00"
    assert spend_vs_limit({"spent": "7"}) == "7.00"
    assert spend_vs_limit(None) == "0.00"


def test_render_table_aligns_columns_and_strips_trailing_space() -> None:
    text = render_table(["A", "LONGER"], [["wide-cell", "x"], ["b", ""]])
    assert text.splitlines() == ["A           LONGER", "wide-cell   x", "b"]


def test_conditions_needing_attention_by_polarity() -> None:
    obj = tc(
        status={
            "conditions": [
                cond("Ready", "False", "WorkersPending", "0/2 ready"),
                cond("Degraded", "False"),
                cond("BudgetExceeded", "True", "DailyLimit"),
                cond("Suspended", "False"),
                cond("SomethingNew", "True"),
            ]
        }
    )
    assert [c["type"] for c in conditions_needing_attention(obj)] == ["Ready", "BudgetExceeded"]
    ok = tj(status={"conditions": [cond("Planned", "True"), cond("Failed", "False"), cond("AtRisk", "False")]})
    assert conditions_needing_attention(ok) == []
    assert [
        c["type"] for c in conditions_needing_attention(tj(status={"conditions": [cond("Planned", "Unknown")]}))
    ] == ["Planned"]


def test_rows_tolerate_an_object_without_status() -> None:
    assert cluster_row(tc(), with_namespace=False) == ["h100", "Ray", "0/0", "0", "0", "0.00", "-"]
    row = job_row(tj(), with_namespace=True)
    assert row[:4] == ["ml", "j", "h100", "Batch"]
    assert row[5:] == ["0/0", "0 (0%)", "0.00", "-", "Pending"]


def test_status_report_has_both_tables_and_the_conditions_that_are_not_ok() -> None:
    cluster = tc(
        status={
            "workers": {"ready": 1, "desired": 2},
            "gpus": {"allocated": 1},
            "queue": {"depth": 40},
            "budget": {"daily": {"spent": "12.5", "limit": "500.00"}},
            "conditions": [cond("Ready", "False", "WorkersPending", "1/2 workers ready")],
        }
    )
    job = tj(
        status={
            "phase": "Running",
            "progressPercent": 45,
            "items": {"done": 45, "total": 100},
            "cost": {"spent": "3.2"},
            "etaSeconds": 185,
            "conditions": [cond("AtRisk", "True", "EtaPastDeadline", "ETA 3m05s is past the deadline")],
        }
    )
    text = render_status([cluster], [job], all_ns=True)
    lines = text.splitlines()
    assert lines[0].split() == [
        "NAMESPACE",
        "CLUSTER",
        "BACKEND",
        "WORKERS",
        "GPUS",
        "QUEUE",
        "SPENT",
        "TODAY",
        "READY",
    ]
    assert lines[1].split() == ["ml", "h100", "Ray", "1/2", "1", "40", "12.50/500.00", "False"]
    job_line = next(line for line in lines if line.startswith("ml ") and " j " in line)
    assert "[#########...........] 45%" in job_line and "45/100" in job_line and "3.20" in job_line
    assert "3m05s" in job_line and job_line.rstrip().endswith("Running")
    assert "Conditions that are not OK:" in text
    assert "  tc/h100 -n ml: Ready=False WorkersPending: 1/2 workers ready" in text
    assert "  tj/j -n ml: AtRisk=True EtaPastDeadline: ETA 3m05s is past the deadline" in text
    assert render_status([], [], all_ns=False) == "No TranslationClusters.\n\nNo TranslationJobs."


def test_progress_line() -> None:
    status = {
        "phase": "Running",
        "progressPercent": 50,
        "items": {"done": 4, "compiles": 3, "failed": 1, "total": 10},
        "etaSeconds": 9,
    }
    assert progress_line(status) == ("[##########..........]  50%  4/10 done  3 compile  1 failed  ETA 9s  Running")
    done = {"phase": "Succeeded", "progressPercent": 100, "items": {"done": 10, "total": 10}, "etaSeconds": 0}
    assert progress_line(done).endswith("ETA -  Succeeded")
    assert progress_line({}).endswith("0/0 done  0 compile  0 failed  ETA -  Pending")


# ---- Events and conditions ----------------------------------------------------------------------------------


def event(name: str, rv: str, last: str | None, reason: str = "R", **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": rv,
            "creationTimestamp": "2026-11-19T00:00:00Z",
        },
        "lastTimestamp": last,
        "reason": reason,
        "type": "Normal",
        "message": f"message {name}",
        **extra,
    }


def test_events_sort_by_time_then_by_write_order() -> None:
    events = [
        event("c", "30", "2026-11-19T10:00:05Z"),
        event("b", "25", "2026-11-19T10:00:01Z"),
        event("a", "20", "2026-11-19T10:00:01Z"),
        event("d", "10", None, eventTime="2026-11-19T09:59:59.123456Z"),
    ]
    assert [e["metadata"]["name"] for e in sort_events(events)] == ["d", "a", "b", "c"]


def test_event_time_falls_back_through_the_fields() -> None:
    assert event_time({"series": {"lastObservedTime": "2026-11-19T01:00:00Z"}}) == "2026-11-19T01:00:00Z"
    assert event_time({"firstTimestamp": "2026-11-19T02:00:00Z"}) == "2026-11-19T02:00:00Z"
    assert event_time({"metadata": {"creationTimestamp": "2026-11-19T03:00:00Z"}}) == "2026-11-19T03:00:00Z"
    assert event_time({}) == ""


def test_format_event_and_its_key() -> None:
    ev = event("a", "1", "2026-11-19T10:00:01Z", reason="Requeued", count=3, message="Re-queued\n  5 items")
    ev["type"] = "Warning"
    assert format_event(ev) == "2026-11-19T10:00:01Z  Warning  Requeued: Re-queued 5 items (x3)"
    assert event_key(ev) == ("uid-a", 3)


def test_condition_changes_lists_new_and_changed_conditions_only() -> None:
    old = [cond("Ready", "False", "WorkersPending"), cond("Degraded", "False", "AsExpected")]
    new = [
        cond("Ready", "True", "ClusterReady", "2/2 ready"),
        cond("Degraded", "False", "AsExpected"),
        cond("X", "True"),
    ]
    assert condition_changes(old, new) == [
        "condition Ready: False -> True (ClusterReady): 2/2 ready",
        "condition X: True (R)",
    ]


def test_format_conditions() -> None:
    text = format_conditions([cond("Planned", "True", "Planned", "55 files planned.")])
    assert text.splitlines()[0].split() == ["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"]
    assert "Planned" in text and "55 files planned." in text
    assert format_conditions([]) == "  (no conditions yet)"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-19T10:00:01Z", datetime(2026, 11, 19, 10, 0, 1, tzinfo=UTC)),
        ("2026-11-19T10:00:01.123456789Z", datetime(2026, 11, 19, 10, 0, 1, 123456, tzinfo=UTC)),
        ("2026-11-19T10:00:01", datetime(2026, 11, 19, 10, 0, 1, tzinfo=UTC)),
        ("not a time", None),
        (None, None),
    ],
)
def test_parse_time(value: str | None, expected: datetime | None) -> None:
    assert parse_time(value) == expected


def test_parse_target() -> None:
    assert parse_target("batch") == (None, "batch")
    assert parse_target("tj/batch") == ("TranslationJob", "batch")
    assert parse_target("translationclusters.portalis.dev/h100") == ("TranslationCluster", "h100")
    with pytest.raises(ValueError, match="use tj/NAME or tc/NAME"):
        parse_target("pod/x")


# ---- cost ---------------------------------------------------------------------------------------------------


def test_window_start() -> None:
    assert window_start("day", NOW) == datetime(2026, 11, 19, tzinfo=UTC)
    assert window_start("week", NOW) == datetime(2026, 11, 16, tzinfo=UTC)  # Monday
    assert window_start("month", NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown window"):
        window_start("year", NOW)


def test_cost_report_reads_budget_status_and_job_cost() -> None:
    cluster = tc(
        status={
            "budget": {
                "daily": {"spent": "120.5", "limit": "500.00", "percent": 24, "windowStart": "2026-11-19T05:00:00Z"},
                "weekly": {"spent": "400.00"},
                "tenants": [
                    {"name": "team-a", "daily": {"spent": "100", "limit": "300.00", "percent": 33}},
                    {"name": "team-b"},
                ],
            }
        }
    )
    jobs = [
        tj("running", status={"phase": "Running", "cost": {"spent": "20.1", "gpuSeconds": 3600, "perItem": "0.2"}}),
        tj("today", status={"phase": "Succeeded", "completionTime": "2026-11-19T06:00:00Z", "cost": {"spent": "5"}}),
        # finished before the cluster's window began (05:00 in the budget's time zone): not in this window
        tj("earlier", status={"phase": "Succeeded", "completionTime": "2026-11-19T04:00:00Z", "cost": {"spent": "9"}}),
        tj("new", tenant="team-a"),
    ]
    report = build_cost_report([cluster, tc("empty")], jobs, "day", NOW)
    assert report["window"] == "day" and report["since"] == "2026-11-19T00:00:00Z"
    assert report["total"] == "120.50"
    assert report["clusters"] == [
        {
            "namespace": "ml",
            "cluster": "h100",
            "spent": "120.50",
            "limit": "500.00",
            "percent": 24,
            "windowStart": "2026-11-19T05:00:00Z",
        },
        {
            "namespace": "ml",
            "cluster": "empty",
            "spent": "0.00",
            "limit": None,
            "percent": 0,
            "windowStart": "2026-11-19T00:00:00Z",
        },
    ]
    assert [(t["tenant"], t["spent"], t["limit"]) for t in report["tenants"]] == [
        ("team-a", "100.00", "300.00"),
        ("team-b", "0.00", None),
    ]
    rows = {j["job"]: j for j in report["jobs"]}
    assert set(rows) == {"running", "today", "new"}
    assert rows["running"] == {
        "namespace": "ml",
        "job": "running",
        "cluster": "h100",
        "tenant": "ml",
        "phase": "Running",
        "spent": "20.10",
        "gpuSeconds": 3600,
        "perItem": "0.20",
    }
    assert rows["new"]["tenant"] == "team-a" and rows["new"]["spent"] == "0.00" and rows["new"]["perItem"] is None
    json.dumps(report)  # serialisable as is

    weekly = build_cost_report([cluster], jobs, "week", NOW)
    assert weekly["total"] == "400.00" and weekly["clusters"][0]["limit"] is None
    assert "earlier" in {j["job"] for j in weekly["jobs"]}


def test_render_cost_shows_dashes_for_missing_limits() -> None:
    report = build_cost_report([tc()], [tj()], "month", NOW)
    text = render_cost(report, all_ns=False)
    assert text.startswith("Spend this month (since 2026-11-01T00:00:00Z): 0.00")
    assert "h100      0.00    -       0" in text
    assert render_cost(build_cost_report([], [], "day", NOW), all_ns=True).endswith(
        "No TranslationJobs active in this window."
    )


# ---- submit ---------------------------------------------------------------------------------------------------


def test_names_prefixes_and_counts() -> None:
    assert dns_label("My_Repo (v2)") == "my-repo-v2"
    assert dns_label("___") == "job"
    assert default_job_name(Path("/src/Sample Codebase"), suffix="ab12c") == "sample-codebase-ab12c"
    assert len(default_job_name(Path("/x" * 1) / ("a" * 80))) <= 46
    assert normalise_prefix("/sources/x") == "sources/x/"
    assert normalise_prefix("sources/x/") == "sources/x/"
    assert normalise_prefix("") == ""
    assert parse_count_or_percent("3") == 3
    assert parse_count_or_percent(" 10% ") == "10%"
    for bad in ("ten", "-1", "101%", "1.5"):
        with pytest.raises(ValueError, match=r"count such as 3 or a percentage|must be between 0% and 100%"):
            parse_count_or_percent(bad)
    assert parse_cluster_ref("h100", "ml") == ("ml", "h100")
    assert parse_cluster_ref("shared/h100", "ml") == ("shared", "h100")


def test_select_files_uses_the_plans_glob_rules(tmp_path: Path) -> None:
    for rel in ("a.py", "pkg/b.py", "pkg/tests/test_b.py", "README.md", "pkg/data.json", "deep/er/c.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    assert select_files(tmp_path, ["**/*.py"]) == ["a.py", "deep/er/c.py", "pkg/b.py", "pkg/tests/test_b.py"]
    assert select_files(tmp_path, ["**/*.py"], ["**/tests/**"]) == ["a.py", "deep/er/c.py", "pkg/b.py"]
    assert select_files(tmp_path, ["*.md", "pkg/*.json"]) == ["README.md", "pkg/data.json"]


def test_job_manifest_is_a_valid_translationjob() -> None:
    manifest = build_job_manifest(
        "sample-ab12c",
        "ml",
        ("ml", "h100"),
        "artifacts",
        "sources/sample-ab12c/",
        priority="Interactive",
        target="go",
        max_failed_items="10%",
        exclude=["**/tests/**"],
    )
    job = TranslationJob.model_validate(manifest)
    assert job.spec.cluster_ref.name == "h100" and job.spec.cluster_ref.namespace is None
    assert job.spec.source.bucket == "artifacts" and job.spec.source.include == ["**/*.py"]
    assert job.spec.source.exclude == ["**/tests/**"]
    assert job.spec.priority == "Interactive" and job.spec.target_language == "go"
    assert manifest["spec"]["maxFailedItems"] == "10%"
    other = build_job_manifest("j", "team-a", ("shared", "h100"), "src", "p/")
    assert other["spec"]["clusterRef"] == {"name": "h100", "namespace": "shared"}
    assert "maxFailedItems" not in other["spec"] and "exclude" not in other["spec"]["source"]
    TranslationJob.model_validate(other)


def test_resolve_s3_precedence() -> None:
    storage = {"endpoint": "http://minio.portalis:9000", "region": "eu-west-1", "bucket": "b"}
    secret = {"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"}
    s3 = resolve_s3(storage, secret, {}, secret_name="ml/portalis-s3")
    assert (s3.endpoint, s3.region, s3.access_key, s3.secret_key) == (
        "http://minio.portalis:9000",
        "eu-west-1",
        "key",
        "secret",
    )
    assert s3.force_path_style and s3.credentials_from == "Secret ml/portalis-s3"

    env = {"AWS_ACCESS_KEY_ID": "mine", "AWS_REGION": "us-west-2", "AWS_ENDPOINT_URL": "http://env:9000"}
    s3 = resolve_s3(storage, secret, env, endpoint_flag="http://localhost:9000")
    assert s3.endpoint == "http://localhost:9000" and s3.region == "us-west-2"
    assert s3.access_key is None and s3.secret_key is None  # left to boto3, with AWS_SESSION_TOKEN if any
    assert "environment" in s3.credentials_from
    assert resolve_s3(storage, secret, env).endpoint == "http://env:9000"

    aws = resolve_s3({"bucket": "b"}, None, {})
    assert aws.endpoint is None and aws.region == "us-east-1" and not aws.force_path_style
    assert aws.credentials_from == "the default AWS credential chain"


def test_final_summary_names_the_output_and_the_failed_files() -> None:
    status = {
        "phase": "Failed",
        "items": {"done": 5, "compiles": 3, "total": 7, "failed": 2, "cached": 1},
        "verifiedPercent": 42,
        "cost": {"spent": "0.5", "gpuSeconds": 30},
        "outputLocation": "s3://b/translations/j/",
        "failedItems": ["x.py: unsupported", "y.py: not UTF-8"],
        "conditions": [cond("Failed", "True", "ItemsFailed", "2 files failed")],
    }
    text = final_summary("ml", "j", status)
    assert text.splitlines() == [
        "job ml/j Failed: 3 of 7 files compile (42%), 2 more written that do not or were not checked (1 from the "
        "cache), 2 failed; cost 0.50 (30 GPU-seconds)",
        "output: s3://b/translations/j/",
        "failed files (2):",
        "  x.py: unsupported",
        "  y.py: not UTF-8",
        "why: ItemsFailed: 2 files failed",
    ]


# ---- nodes ----------------------------------------------------------------------------------------------------


def test_unhealthy_taint_and_portalis_marks() -> None:
    node = {
        "metadata": {
            "labels": {"portalis.dev/quarantined": "true", "portalis.dev/devcluster": "true", "kubernetes.io/os": "x"},
            "annotations": {"portalis.dev/quarantine-reason": "ECC", "other": "x"},
        },
        "spec": {
            "taints": [
                {"key": "nvidia.com/gpu", "effect": "NoSchedule"},
                {"key": "portalis.dev/gpu-unhealthy", "value": "true", "effect": "NoSchedule"},
            ]
        },
    }
    assert unhealthy_taint(node) == {
        "key": "portalis.dev/gpu-unhealthy",
        "value": "true",
        "effect": "NoSchedule",
    }
    assert portalis_marks(node) == [
        "label portalis.dev/quarantined=true",
        "annotation portalis.dev/quarantine-reason=ECC",
    ]
    assert unhealthy_taint({"spec": {}}) is None


# ---- command line and kubeconfig ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["status"], ["submit"], ["logs"], ["cost"], ["release-node"]])
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage: kubectl portalis" in capsys.readouterr().out


def test_connection_flags_go_before_or_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["-n", "ml", "--context", "prod", "status", "-A"])
    assert (before.namespace, before.context, before.all_namespaces) == ("ml", "prod", True)
    after = parser.parse_args(["status", "-n", "ml", "--kubeconfig", "/k"])
    assert (after.namespace, after.kubeconfig, after.context) == ("ml", "/k", None)
    both = parser.parse_args(["-n", "outer", "cost", "-n", "inner", "-o", "json", "--window", "week"])
    assert (both.namespace, both.output, both.window) == ("inner", "json", "week")
    submit = parser.parse_args(["submit", "src", "--cluster", "h100", "--priority", "lowpriority", "--target", "RUST"])
    assert (submit.priority, submit.target, submit.timeout, submit.no_follow) == ("LowPriority", "rust", 0, False)


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["submit", "src"],
        ["submit", "src", "--cluster", "c", "--priority", "Urgent"],
        ["cost", "--window", "year"],
    ):
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args(argv)
        assert exit_.value.code == 2
    assert "Urgent" in capsys.readouterr().err


def write_kubeconfig(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "a", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}},
                    {"name": "b", "cluster": {"server": "https://10.0.0.1:6443", "insecure-skip-tls-verify": True}},
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "dev", "context": {"cluster": "a", "user": "u", "namespace": "ml-platform"}},
                    {"name": "prod", "context": {"cluster": "b", "user": "u"}},
                ],
                "current-context": "dev",
            }
        )
    )
    return path


def test_kubeconfig_namespace_and_context_like_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_kubeconfig(tmp_path / "config")
    ctx = kubeconfig.load(str(config))
    assert (ctx.context, ctx.namespace, ctx.server) == ("dev", "ml-platform", "https://127.0.0.1:6443")
    assert kubeconfig.load(str(config), namespace="team-a").namespace == "team-a"
    prod = kubeconfig.load(str(config), context="prod")
    assert (prod.context, prod.namespace, prod.server) == ("prod", "default", "https://10.0.0.1:6443")
    with pytest.raises(PluginError, match="cannot use kubeconfig"):
        kubeconfig.load(str(config), context="nope")

    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{config}")
    assert kubeconfig.load().namespace == "ml-platform"  # the files in $KUBECONFIG that exist
    assert kubeconfig.kubeconfig_paths(None, {"KUBECONFIG": "/a:/b"}) == [Path("/a"), Path("/b")]
    assert kubeconfig.kubeconfig_paths("/x", {"KUBECONFIG": "/a"}) == [Path("/x")]


def test_no_kubeconfig_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(PluginError, match="no kubeconfig found"):
        kubeconfig.load()
    with pytest.raises(PluginError, match="does not exist"):
        kubeconfig.load(str(tmp_path / "also-missing"))


def test_main_prints_errors_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert main(["--kubeconfig", str(tmp_path / "missing"), "status"], out=out) == 1
    assert capsys.readouterr().err.startswith("error: kubeconfig ")
    assert main(["submit", str(tmp_path / "nope"), "--cluster", "c"], out=out) == 1
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["submit", str(tmp_path / "empty"), "--cluster", "c"], out=out) == 1
    assert "no files under" in capsys.readouterr().err


def api_exception(status: int, message: str) -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = json.dumps({"kind": "Status", "message": message})
    return exc


def test_api_errors_say_what_failed() -> None:
    forbidden = api_exception(403, 'translationclusters.portalis.dev is forbidden: User "bob" cannot list')
    assert kubeconfig.describe_api_error(forbidden, "list clusters") == (
        'forbidden: cannot list clusters: translationclusters.portalis.dev is forbidden: User "bob" cannot list'
    )
    assert kubeconfig.describe_api_error(api_exception(401, "Unauthorized"), "x").startswith("unauthorized: ")
    plain = ApiException(status=500, reason="Internal Server Error")
    assert kubeconfig.describe_api_error(plain, "get x") == "cannot get x: Internal Server Error"
    with pytest.raises(PluginError, match=r"^forbidden: cannot list clusters"), kubeconfig.api_errors("list clusters"):
        raise forbidden
