"""``kubectl portalis`` end to end: run as a real kubectl plugin (the locally built kubectl finds
``kubectl-portalis`` on PATH) against the local cluster, with the operator, Redis, S3 and local workers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import wait_for
from e2e.jobs import ARTIFACTS, JobEnv, job_env, simple_module
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.operator import ROOT, OperatorProcess
from portalis_devcluster.servers import RedisServer, S3Server

pytestmark = pytest.mark.cluster

SAMPLE = ROOT / "examples" / "sample-codebase"
VENV_BIN = Path(sys.executable).parent
UNHEALTHY_TAINT = "portalis.dev/gpu-unhealthy"
RELEASE_ANNOTATION = "portalis.dev/release"
QUARANTINED_LABEL = "portalis.dev/quarantined"
PROGRESS = re.compile(r"^\[[#.]{20}\]\s+(\d+)%\s+(\d+)/(\d+) done\s+(\d+) compile\s+(\d+) failed\s+ETA \S+\s+(\w+)$")


def plugin_env(kube: DevCluster, **extra: str) -> dict[str, str]:
    """The user's shell: KUBECONFIG of the local cluster, kubectl and the plugin on PATH, no AWS_* settings."""
    env = {k: v for k, v in kube.env().items() if not k.startswith("AWS_") and k != "PORTALIS_S3_ENDPOINT"}
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env["PATH"]])
    env.update(extra)
    return env


def kubectl_portalis(
    kube: DevCluster, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``kubectl portalis ARGS`` through the locally built kubectl's plugin mechanism."""
    return subprocess.run(
        [str(kube.tc.kubectl), "portalis", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or plugin_env(kube),
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def jobs(operator: OperatorProcess, namespace: str, redis_server: RedisServer, s3_server: S3Server) -> Iterator[JobEnv]:
    env = job_env(operator.kube, namespace, redis_server, s3_server, ARTIFACTS)
    env.create_cluster()
    yield env
    env.stop_workers()


def test_the_plugin_resolves_through_kubectl_and_has_help_everywhere(kube: DevCluster) -> None:
    top = kubectl_portalis(kube, "--help")
    assert top.returncode == 0, top.stderr
    assert "usage: kubectl portalis" in top.stdout
    for command in ("status", "submit", "logs", "cost", "release-node"):
        assert command in top.stdout
        sub = kubectl_portalis(kube, command, "--help")
        assert sub.returncode == 0, sub.stderr
        assert f"kubectl portalis {command}" in sub.stdout
        assert "--namespace" in sub.stdout


def test_submit_uploads_the_sample_codebase_follows_the_job_and_prints_its_output(jobs: JobEnv) -> None:
    kube, ns = jobs.cluster.kube, jobs.namespace
    jobs.start_workers(count=2, concurrency=2)
    sources = sorted(p.relative_to(SAMPLE).as_posix() for p in SAMPLE.rglob("*.py"))
    proc = kubectl_portalis(
        kube,
        "submit",
        str(SAMPLE),
        "--cluster",
        jobs.name,
        "-n",
        ns,
        "--name",
        "sample",
        "--max-failed-items",
        "10%",
        "--timeout",
        "240",
        timeout=300,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    out = proc.stdout
    assert f"uploading {len(sources)} files from {SAMPLE} to s3://{ARTIFACTS}/sources/sample/" in out
    assert "credentials from Secret" in out  # read from the cluster's credentials Secret with the user's kubeconfig
    assert f"translationjob.portalis.dev/sample created in namespace {ns}" in out

    uploaded = sorted(o.key.removeprefix("sources/sample/") for o in jobs.store.list(ARTIFACTS, "sources/sample/"))
    assert uploaded == sources  # only the files matching **/*.py
    job = jobs.job("sample")
    source = job["spec"]["source"]
    assert (source["bucket"], source["prefix"], source["include"]) == (ARTIFACTS, "sources/sample/", ["**/*.py"])
    assert job["spec"]["maxFailedItems"] == "10%" and job["spec"]["targetLanguage"] == "rust"

    progress = [m for m in (PROGRESS.match(line) for line in out.splitlines()) if m]
    assert len(progress) >= 2, out  # the job is followed from creation to its end
    assert progress[0].group(6) not in ("Succeeded", "Failed")
    last = progress[-1]
    assert (last.group(1), last.group(3), last.group(6)) == ("100", str(len(sources)), "Succeeded")

    status = job["status"]
    assert status["phase"] == "Succeeded"
    items = status["items"]
    # every written file was checked by cargo: 40 of the 55 compile (see examples/sample-codebase/README.md)
    assert (items["done"], items["compiles"], items["translated"]) == (51, 40, 11)
    assert f"job {ns}/sample Succeeded: 40 of {len(sources)} files compile ({status['verifiedPercent']}%)" in out
    assert last.group(4) == "40"
    assert status["outputLocation"] and f"output: {status['outputLocation']}" in out
    bucket, _, prefix = status["outputLocation"].removeprefix("s3://").partition("/")
    outputs = jobs.outputs(bucket, prefix)
    assert len(outputs) == status["items"]["done"] and all(k.endswith(".rs") for k in outputs)
    for item in status.get("failedItems") or []:
        assert f"  {item}" in out
    if status["items"]["failed"]:
        assert f"failed files ({status['items']['failed']}" in out

    # the same job through the other read-only commands
    st = kubectl_portalis(kube, "status", "-n", ns)
    assert st.returncode == 0, st.stderr
    cluster_line = next(line for line in st.stdout.splitlines() if line.startswith(f"{jobs.name} "))
    assert "Ray" in cluster_line
    job_line = next(line for line in st.stdout.splitlines() if line.startswith("sample "))
    assert f"{status['items']['done']}/{len(sources)}" in job_line and "Succeeded" in job_line and "100%" in job_line

    everywhere = kubectl_portalis(kube, "status", "-A")
    assert everywhere.returncode == 0, everywhere.stderr
    assert everywhere.stdout.startswith("NAMESPACE") and ns in everywhere.stdout

    logs = kubectl_portalis(kube, "logs", "sample", "-n", ns)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.startswith(f"TranslationJob {ns}/sample:")
    assert "Conditions:" in logs.stdout and "Events:" in logs.stdout
    reasons = [r for r in ("Planned", "Completed") if f"Normal   {r}:" in logs.stdout]
    assert reasons == ["Planned", "Completed"], logs.stdout
    order = [logs.stdout.index(f"Normal   {r}:") for r in reasons]
    assert order == sorted(order)  # oldest first

    cluster_logs = kubectl_portalis(kube, "logs", f"tc/{jobs.name}", "-n", ns)
    assert cluster_logs.returncode == 0, cluster_logs.stderr
    assert cluster_logs.stdout.startswith(f"TranslationCluster {ns}/{jobs.name}:")

    cost = kubectl_portalis(kube, "cost", "-n", ns, "-o", "json")
    assert cost.returncode == 0, cost.stderr
    report = json.loads(cost.stdout)
    assert {"window", "since", "total", "clusters", "tenants", "jobs"} <= set(report)
    assert report["window"] == "day" and report["namespace"] == ns
    assert [c["cluster"] for c in report["clusters"]] == [jobs.name]
    assert set(report["clusters"][0]) >= {"namespace", "cluster", "spent", "limit", "percent", "windowStart"}
    row = next(j for j in report["jobs"] if j["job"] == "sample")
    assert row["cluster"] == jobs.name and row["tenant"] == ns and row["phase"] == "Succeeded"
    assert re.fullmatch(r"\d+\.\d\d", row["spent"]) and isinstance(row["gpuSeconds"], int)
    for window in ("week", "month"):
        table = kubectl_portalis(kube, "cost", "-n", ns, "--window", window)
        assert table.returncode == 0, table.stderr
        assert table.stdout.startswith(f"Spend this {window} (since ")


def test_logs_follow_streams_events_until_the_job_ends(jobs: JobEnv, tmp_path: Path) -> None:
    kube, ns = jobs.cluster.kube, jobs.namespace
    src = tmp_path / "tiny"
    (src / "pkg").mkdir(parents=True)
    for i in range(6):
        (src / "pkg" / f"m{i}.py").write_bytes(simple_module(i, salt=ns))
    (src / "notes.txt").write_text("not uploaded\n")
    sub = kubectl_portalis(kube, "submit", str(src), "--cluster", jobs.name, "-n", ns, "--name", "tiny", "--no-follow")
    assert sub.returncode == 0, sub.stderr
    assert "uploading 6 files" in sub.stdout and "kubectl portalis logs tj/tiny" in sub.stdout
    follower = subprocess.Popen(
        [str(kube.tc.kubectl), "portalis", "logs", "tj/tiny", "-n", ns, "--follow", "--timeout", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=plugin_env(kube),
    )
    try:
        time.sleep(2)  # the follower has printed what happened so far; new Events come after this
        jobs.start_workers(count=1)
        out, err = follower.communicate(timeout=150)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    assert "following (Ctrl-C to stop)" in out
    after = out.split("following (Ctrl-C to stop)", 1)[1]
    assert "Completed:" in after  # streamed while it happened
    assert "job Succeeded:" in after


def test_clear_errors_for_a_missing_cluster_a_missing_kubeconfig_and_forbidden(jobs: JobEnv, tmp_path: Path) -> None:
    kube, ns = jobs.cluster.kube, jobs.namespace
    missing = kubectl_portalis(kube, "submit", str(SAMPLE), "--cluster", "nope", "-n", ns)
    assert missing.returncode == 1
    assert f"error: no TranslationCluster named 'nope' in namespace {ns}" in missing.stderr

    no_config = kubectl_portalis(kube, "status", env=plugin_env(kube, KUBECONFIG=str(tmp_path / "none")))
    assert no_config.returncode == 1
    assert "error: no kubeconfig found" in no_config.stderr

    jobs.cluster.kubectl("create", "serviceaccount", "nobody")
    token = jobs.cluster.kubectl("create", "token", "nobody", "--duration", "10m").stdout.strip()
    config = tmp_path / "nobody.kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": kube.server, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "nobody", "user": {"token": token}}],
                "contexts": [{"name": "nobody", "context": {"cluster": "c", "user": "nobody", "namespace": ns}}],
                "current-context": "nobody",
            }
        )
    )
    forbidden = kubectl_portalis(kube, "--kubeconfig", str(config), "status")
    assert forbidden.returncode == 1
    assert "error: forbidden: cannot list translationclusters.portalis.dev in namespace " + ns in forbidden.stderr
    release = kubectl_portalis(kube, "release-node", "cpu-0", "--yes", "--kubeconfig", str(config))
    assert release.returncode == 1 and "error: forbidden: cannot get node cpu-0" in release.stderr


def quarantine_patch(node: dict[str, Any]) -> dict[str, Any]:
    """Quarantine a node as the operator does, in one patch: cordon, taint and label it.

    One patch, because the operator counts a node with only some of these marks as released by hand.
    """
    taints = [t for t in node["spec"].get("taints") or [] if t["key"] != UNHEALTHY_TAINT]
    taints.append({"key": UNHEALTHY_TAINT, "value": "true", "effect": "NoSchedule"})
    return {"metadata": {"labels": {QUARANTINED_LABEL: "true"}}, "spec": {"unschedulable": True, "taints": taints}}


def test_release_node_annotates_a_quarantined_node_and_refuses_others(kube: DevCluster) -> None:
    node = "gpu-a100-3"
    healthy = kubectl_portalis(kube, "release-node", "cpu-1", "--yes")
    assert healthy.returncode == 1
    assert f"has no {UNHEALTHY_TAINT} taint" in healthy.stderr
    absent = kubectl_portalis(kube, "release-node", "no-such-node", "--yes")
    assert absent.returncode == 1 and "no node named 'no-such-node'" in absent.stderr

    def get() -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(kube.kubectl("get", "node", node, "-o", "json").stdout)
        return obj

    original = get()
    assert not original["spec"].get("unschedulable")
    kube.kubectl("patch", "node", node, "--type=merge", "-p", json.dumps(quarantine_patch(original)))
    try:
        unconfirmed = kubectl_portalis(kube, "release-node", node)
        assert unconfirmed.returncode == 1 and "pass --yes" in unconfirmed.stderr, unconfirmed.stderr
        proc = kubectl_portalis(kube, "release-node", node, "--yes")
        assert proc.returncode == 0, proc.stderr
        assert f"taint {UNHEALTHY_TAINT}=true:NoSchedule" in proc.stdout
        assert "cordoned (unschedulable)" in proc.stdout and f"label {QUARANTINED_LABEL}=true" in proc.stdout
        assert f"node/{node} annotated {RELEASE_ANNOTATION}=true" in proc.stdout
        assert f"kubectl get node {node} -w" in proc.stdout

        def annotated_or_released() -> bool:
            obj = get()
            annotated = (obj["metadata"].get("annotations") or {}).get(RELEASE_ANNOTATION) == "true"
            tainted = any(t["key"] == UNHEALTHY_TAINT for t in obj["spec"].get("taints") or [])
            return annotated or not tainted  # an operator that acts on it may already have cleaned up

        assert wait_for(annotated_or_released, timeout=5)
    finally:
        current = get()
        restore = {
            "metadata": {"labels": {QUARANTINED_LABEL: None}, "annotations": {RELEASE_ANNOTATION: None}},
            "spec": {
                "unschedulable": None,
                "taints": [t for t in current["spec"].get("taints") or [] if t["key"] != UNHEALTHY_TAINT] or None,
            },
        }
        kube.kubectl("patch", "node", node, "--type=merge", "-p", json.dumps(restore))
    after = get()
    assert not any(t["key"] == UNHEALTHY_TAINT for t in after["spec"].get("taints") or [])
    assert after["spec"].get("taints") == original["spec"].get("taints")
    assert RELEASE_ANNOTATION not in (after["metadata"].get("annotations") or {})
    assert not after["spec"].get("unschedulable")
