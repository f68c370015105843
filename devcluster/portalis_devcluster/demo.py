"""``make demo``: a real translation job through Portalis on the local GPU cluster, from a fresh clone.

Brings up the local GPU cluster (built once from Go modules), Redis and an S3 server on loopback, installs
the CRDs, starts the operator, uploads the sample Python codebase in ``examples/sample-codebase/``, applies
the example TranslationCluster and TranslationJob from ``manifests/examples/`` (pointed at the local Redis and
S3), runs the data plane as local worker processes (KWOK pods run no containers, so these stand in for the
Ray workers), follows the job's progress, and prints ``kubectl get tc,tj`` and where the Rust output is.
Exits 0 only if the job Succeeded. The local cluster is left running (`portalis devcluster down` stops it).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from portalis.clients.store import Store
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.operator import ROOT, OperatorProcess, install_crds
from portalis_devcluster.servers import RedisServer, S3Server

NAMESPACE = "portalis-demo"
SOURCE_BUCKET = "portalis-demo-src"
ARTIFACT_BUCKET = "portalis-artifacts"
SAMPLE = ROOT / "examples" / "sample-codebase"
WORKERS = 2
TIMEOUT_SECONDS = 600


def _say(msg: str) -> None:
    print(f"\n==> {msg}", flush=True)


def _secret(name: str, data: dict[str, str]) -> str:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded})


def _example(name: str, patch: dict[str, Any]) -> str:
    manifest: dict[str, Any] = yaml.safe_load((ROOT / "manifests" / "examples" / name).read_text())
    for section, values in patch.items():
        manifest["spec"].setdefault(section, {}).update(values)
    return json.dumps(manifest)


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
    _say("starting Redis and an S3 server on loopback")
    workdir = Path(tempfile.mkdtemp(prefix="portalis-demo-"))
    redis = RedisServer(workdir=workdir / "redis").start()
    s3 = S3Server(workdir=workdir / "s3").start()
    operator = OperatorProcess(cluster, cluster.log_dir / "portalis-operator.log")
    workers: list[subprocess.Popen[bytes]] = []
    try:
        install_crds(cluster)
        _say("starting the Portalis operator")
        operator.start()
        store = Store(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key)
        store.ensure_bucket(ARTIFACT_BUCKET)
        files = upload_sample(store, SOURCE_BUCKET, "stockroom/")
        _say(f"uploaded the sample codebase: {files} files to s3://{SOURCE_BUCKET}/stockroom/")

        cluster.kubectl("create", "namespace", NAMESPACE, check=False)
        kubectl = cluster.kubectl
        kubectl("apply", "-n", NAMESPACE, "-f", "-", input=_secret("portalis-redis", {"url": redis.url}))
        creds = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
        kubectl("apply", "-n", NAMESPACE, "-f", "-", input=_secret("portalis-s3", creds))
        _say("applying manifests/examples/translationcluster-h100.yaml (storage pointed at the local S3)")
        kubectl(
            "apply",
            "-n",
            NAMESPACE,
            "-f",
            "-",
            input=_example(
                "translationcluster-h100.yaml", {"storage": {"endpoint": s3.endpoint, "forcePathStyle": True}}
            ),
        )
        _say("applying manifests/examples/translationjob-batch.yaml (source: the uploaded codebase)")
        job_manifest = json.loads(
            _example(
                "translationjob-batch.yaml",
                {"source": {"bucket": SOURCE_BUCKET, "prefix": "stockroom/"}, "output": {"bucket": SOURCE_BUCKET}},
            )
        )
        job = job_manifest["metadata"]["name"]
        # a job runs once; a second demo run starts a fresh one
        kubectl("delete", "tj", job, "-n", NAMESPACE, "--ignore-not-found", "--timeout=60s")
        kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(job_manifest))

        _say(f"starting {WORKERS} local worker processes (standing in for the RayCluster's GPU workers)")
        env = dict(os.environ)
        env.update(s3.client_env())
        env["PORTALIS_S3_FORCE_PATH_STYLE"] = "true"
        for i in range(WORKERS):
            log = open(cluster.log_dir / f"portalis-worker-{i}.log", "ab")  # noqa: SIM115 - owned by the child
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "portalis",
                        "worker",
                        "run",
                        "--namespace",
                        NAMESPACE,
                        "--cluster",
                        "h100",
                        "--redis-url",
                        redis.url,
                        "--name",
                        f"demo-worker-{i}",
                        "--concurrency",
                        "2",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            )
            log.close()

        status = follow(cluster, job)
        print()
        print(kubectl("get", "tc,tj", "-n", NAMESPACE).stdout)
        phase = status.get("phase")
        items = status.get("items") or {}
        print(
            f"job {job}: {phase}; {items.get('done', 0)} of {items.get('total', 0)} files translated, "
            f"{items.get('cached', 0)} from the cache, {items.get('failed', 0)} failed"
        )
        for line in status.get("failedItems") or []:
            print(f"  not translated: {line}")
        print(f"Rust output:  {status.get('outputLocation')}")
        print(f"report:       {status.get('reportLocation')}")
        print(f"S3 endpoint:  {s3.endpoint} (stops with this demo)")
        print(f"KUBECONFIG={cluster.kubeconfig}  (the local cluster keeps running; `portalis devcluster down`)")
        print(f"demo took {time.monotonic() - started:.0f}s")
        return 0 if phase == "Succeeded" else 1
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(20)
            except subprocess.TimeoutExpired:
                w.kill()
        operator.stop()
        redis.stop()
        s3.stop()


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
        line = f"[{bar}] {pct:3d}%  {items.get('done', 0)}/{items.get('total', '?')} files  "
        print(f"\r  {line}{status.get('phase', 'Pending'):<10} ETA {eta_text}   ", end="", flush=True)
        if status.get("phase") in {"Succeeded", "Failed"}:
            break
        time.sleep(0.5)
    return status


if __name__ == "__main__":
    sys.exit(main())
