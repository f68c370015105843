"""dataplane-throughput: items per second of the sample codebase translated by Ray actors in worker pods on the real
node, against local worker processes on the same machine, in the same run.

Portalis: a TranslationCluster on the real node with two GPU workers (one translator actor each) and the default
py2many engine; each trial translates the 55-file sample codebase with a salt line added to every file, so nothing
comes from the result cache, and measures items done per second from the first item finished to the last.

Baseline: two `portalis worker run` processes on this machine (one item at a time each, as an actor works) taking
the same jobs from a second cluster's queue on the same in-cluster Redis and S3 (through their NodePorts); that
cluster has no Ray workers. Goal: ratio >= 0.8.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from e2e.dataplane import SOURCES, RealData

from bench.common import Result, percentile, report, summary
from bench.realnode import NoRealNode, real_data

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample-codebase"
TRIALS = int(os.environ.get("PORTALIS_BENCH_THROUGHPUT_TRIALS", "3"))
GOAL_RATIO = 0.8


def upload(data: RealData, job: str) -> int:
    store = data.buckets()
    salt = uuid.uuid4().hex
    count = 0
    for path in sorted(SAMPLE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        store.put_bytes(
            SOURCES, f"{job}/{path.relative_to(SAMPLE).as_posix()}", f"# {salt}\n".encode() + path.read_bytes()
        )
        count += 1
    return count


def run_job(data: RealData, cluster: str, job: str) -> float:
    """Items per second of one job, first item done to last."""
    files = upload(data, job)
    data.create_job(cluster, job, maxFailedItems="20%")
    queue = data.queue(cluster)
    while not data.c.get("tj", job).get("metadata", {}).get("uid"):
        time.sleep(0.1)
    uid = data.c.get("tj", job)["metadata"]["uid"]
    first: float | None = None
    finished = 0
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        stats = queue.job_stats(uid)
        finished = stats.done + stats.failed
        if finished and first is None:
            first, first_count = time.monotonic(), finished
        if finished >= files:
            break
        time.sleep(0.05)
    assert first is not None and finished >= files, f"job {job} did not finish"
    elapsed = time.monotonic() - first
    return (finished - first_count) / elapsed if elapsed > 0 else float(finished)


def local_workers(data: RealData, cluster: str, count: int) -> list[subprocess.Popen[bytes]]:
    s3 = data.stack.s3
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_DEFAULT_REGION": s3.region,
        "PORTALIS_S3_ENDPOINT": s3.from_host,
        "PORTALIS_S3_FORCE_PATH_STYLE": "true",
    }
    procs = []
    for i in range(count):
        where = ["--namespace", data.namespace, "--cluster", cluster, "--redis-url", data.stack.redis.from_host]
        argv = [sys.executable, "-m", "portalis", "worker", "run", *where, "--name", f"local-{i}", "--concurrency", "1"]
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


def main() -> int:
    try:
        with real_data("throughput") as data:
            data.create_cluster("ray", workers=2, max_workers=2)
            data.create_cluster("local", workers=0, max_workers=1)
            data.wait_ready("ray")
            workers = local_workers(data, "local", 2)
            try:
                ours, base = [], []
                for i in range(TRIALS):
                    ours.append(run_job(data, "ray", f"ray-{i}"))
                    print(f"trial {i}: Ray actors in pods {ours[-1]:.2f} items/s", flush=True)
                    base.append(run_job(data, "local", f"local-{i}"))
                    print(f"trial {i}: local processes   {base[-1]:.2f} items/s", flush=True)
            finally:
                for w in workers:
                    w.terminate()
                for w in workers:
                    w.wait(30)
    except NoRealNode as exc:
        print(f"dataplane-throughput cannot run here: {exc}", file=sys.stderr)
        return 1
    print(summary("Ray actors in worker pods", ours, " items/s"))
    print(summary("local worker processes", base, " items/s"))
    ratio = percentile(ours, 50) / percentile(base, 50)
    report(
        Result(
            bench="dataplane-throughput",
            metric="items/s of the sample codebase, first item done to last",
            unit="items/s",
            values=ours,
            baseline_name="two local `portalis worker run` processes on the same machine",
            baseline_values=base,
            goal=f"ratio >= {GOAL_RATIO}",
            met=ratio >= GOAL_RATIO,
            higher_is_better=True,
            extra={"workers": 2, "engine": "py2many", "files_per_job": 55},
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
