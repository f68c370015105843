"""``make demo``: a real translation job through Portalis on the local GPU cluster, from a fresh clone.

Brings up the local GPU cluster (built once from Go modules) with its real node, builds the images, and runs
Portalis as a user would: Redis and an S3 server in the cluster, the operator from its Helm chart in a pod, and the
example TranslationCluster from ``manifests/examples/``, whose Ray head and GPU workers run the worker image on the
real node and reach Redis and S3 by their Service names. It uploads the sample Python codebase in
``examples/sample-codebase/``, applies the example TranslationJob, follows its progress while Ray actors in the
worker pods translate it (each output checked with cargo), and prints ``kubectl get tc,tj``, how many files compile
and where the Rust output is. Exits 0 only if the job Succeeded. Everything keeps running afterwards
(``portalis devcluster down`` stops it).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import yaml

from portalis.clients.store import Store
from portalis_devcluster import stack
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.operator import ROOT, install_crds

NAMESPACE = "portalis-demo"
OPERATOR_NAMESPACE = "portalis-system"
SOURCE_BUCKET = "portalis-demo-src"
ARTIFACT_BUCKET = "portalis-artifacts"
SAMPLE = ROOT / "examples" / "sample-codebase"
WORKERS = 2
TIMEOUT_SECONDS = 900


def _say(msg: str) -> None:
    print(f"\n==> {msg}", flush=True)


def _example(name: str) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((ROOT / "manifests" / "examples" / name).read_text())
    return manifest


def upload_sample(store: Store, bucket: str, prefix: str) -> int:
    store.ensure_bucket(bucket)
    count = 0
    for path in sorted(SAMPLE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            store.put_bytes(bucket, prefix + path.relative_to(SAMPLE).as_posix(), path.read_bytes())
            count += 1
    return count


def main() -> int:
    started = time.monotonic()
    _say("starting the local GPU cluster (the first run builds it from Go modules; later runs take seconds)")
    cluster = DevCluster().up()
    install_crds(cluster)
    _say("building the images (cached by content) and running Redis, S3 and the operator's chart on the real node")
    try:
        running = stack.up(cluster, NAMESPACE, OPERATOR_NAMESPACE)
    except stack.StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kubectl = cluster.kubectl
    print(
        f"  operator: helm release {running.release.name} in {OPERATOR_NAMESPACE}, image {running.images['operator']}"
    )
    print(f"  Redis:    {running.redis.in_cluster}")
    print(f"  S3:       {running.s3.in_cluster}")
    store = running.store()
    store.ensure_bucket(ARTIFACT_BUCKET)
    files = upload_sample(store, SOURCE_BUCKET, "stockroom/")
    _say(f"uploaded the sample codebase: {files} files to s3://{SOURCE_BUCKET}/stockroom/")

    _say("applying manifests/examples/translationcluster-h100.yaml, its head and GPU workers on the real node")
    tc = running.cluster_on_real_node(_example("translationcluster-h100.yaml"), workers=WORKERS)
    kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(tc))
    _say("applying manifests/examples/translationjob-batch.yaml (source: the uploaded codebase)")
    job_manifest = _example("translationjob-batch.yaml")
    job_manifest["spec"]["source"].update({"bucket": SOURCE_BUCKET, "prefix": "stockroom/"})
    job_manifest["spec"]["output"]["bucket"] = SOURCE_BUCKET
    job = job_manifest["metadata"]["name"]
    # a job runs once; a second demo run starts a fresh one
    kubectl("delete", "tj", job, "-n", NAMESPACE, "--ignore-not-found", "--timeout=60s")
    kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(job_manifest))
    _say(f"translating with {WORKERS} GPU workers: Ray actors in the worker pods take the items from Redis")
    status = follow(cluster, job)
    print()
    print(kubectl("get", "tc,tj", "-n", NAMESPACE).stdout)
    print(kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide").stdout)
    summary(job, status)
    print(f"S3 endpoint:  {running.s3.from_host} from this machine, {running.s3.in_cluster} in the cluster")
    print(f"              (credentials in Secret {NAMESPACE}/portalis-s3)")
    print(f"KUBECONFIG={cluster.kubeconfig}  (everything keeps running; `portalis devcluster down` stops it)")
    print(f"demo took {time.monotonic() - started:.0f}s")
    return 0 if status.get("phase") == "Succeeded" else 1


def summary(job: str, status: dict[str, Any]) -> None:
    items = status.get("items") or {}
    done, compiles, total = int(items.get("done", 0)), int(items.get("compiles", 0)), items.get("total", 0)
    print(
        f"job {job}: {status.get('phase')}; {done} of {total} files written, "
        f"{items.get('cached', 0)} from the cache, {items.get('failed', 0)} failed"
    )
    for line in status.get("failedItems") or []:
        print(f"  not translated: {line}")
    print(
        f"{compiles} of {total} files compile with cargo ({status.get('verifiedPercent', 0)}%); "
        f"{done - compiles} written do not (the report has each one's compiler errors)"
    )
    print(f"Rust output:  {status.get('outputLocation')}")
    print(f"report:       {status.get('reportLocation')}")


def follow(cluster: DevCluster, job: str) -> dict[str, Any]:
    """Print the job's progress as a bar until it succeeds or fails."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        out = cluster.kubectl("get", "tj", job, "-n", NAMESPACE, "-o", "json").stdout
        status = json.loads(out).get("status") or {}
        pct = int(status.get("progressPercent") or 0)
        items = status.get("items") or {}
        bar = "#" * (pct // 4) + "." * (25 - pct // 4)
        eta = status.get("etaSeconds")
        eta_text = "-" if eta is None else f"{eta}s"
        line = f"[{bar}] {pct:3d}%  {items.get('done', 0)}/{items.get('total', '?')} files"
        line += f", {items.get('compiles', 0)} compile  "
        print(f"\r  {line}{status.get('phase', 'Pending'):<10} ETA {eta_text}   ", end="", flush=True)
        if status.get("phase") in {"Succeeded", "Failed"}:
            break
        time.sleep(0.5)
    return status


if __name__ == "__main__":
    sys.exit(main())
