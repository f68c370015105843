"""worker-recovery: a worker container killed mid-item -> that item finished by another worker.

Portalis: a TranslationCluster on the real node with two GPU workers and a slow engine (the project's
OpenAI-compatible test server in a pod, 5 s an item), so every item spends seconds in a worker's hands. Each trial
submits a job of 4 files, waits until a worker reports an item in hand, SIGKILLs that worker's container through the
node's containerd (as an OOM kill would) and times until Redis counts that very item as done. The worker's heartbeat
expires (10 s) and the next worker that takes an item claims it. Between trials the killed container is restarted by
the kubelet and its pod is Ready again.

Baseline, in the same run: the bound before, the visibility timeout (the engine's 30 s timeout plus 60 s, as the
operator sets it). Consumers that never beat take one item each and vanish without a word; the same workers finish
those items once the visibility timeout lets them reclaim them, timed from the take to done. Goal: p95 <= 20 s.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from e2e.dataplane import RealData
from e2e.helpers import wait_for

from bench.common import Result, percentile, report, summary
from bench.realnode import NoRealNode, real_data

TRIALS = int(os.environ.get("PORTALIS_BENCH_RECOVERY_TRIALS", "5"))
BASELINE_TRIALS = 3
ENGINE_TIMEOUT_SECONDS = 30
GOAL_P95 = 20.0


def _job_uid(data: RealData, job: str) -> str:
    uid: str = data.c.get("tj", job)["metadata"]["uid"]
    return uid


def _done(data: RealData, cluster: str, uid: str, item_id: str) -> bool:
    queue = data.queue(cluster)
    return bool(queue.r.sismember(queue.job_key(uid, "done"), item_id))


def kill_trial(data: RealData, cluster: str, job: str) -> float:
    node = data.stack.kube.node()
    assert node is not None
    wait_for(lambda: all(_ready(p) for p in data.ray_pods(cluster, "worker")), timeout=300, interval=0.5)
    data.submit(cluster, job, 4)
    uid = wait_for(lambda: _job_uid(data, job), timeout=30)
    name, beat = next(iter(wait_for(lambda: data.busy_workers(cluster), timeout=120, interval=0.05).items()))
    item_id = str(beat["item"])
    pod = data.c.get("pod", name.split("/")[0])
    container = pod["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    killed = node.ctr("tasks", "kill", "--signal", "SIGKILL", container)
    assert killed.returncode == 0, killed.stderr
    t0 = time.monotonic()
    while not _done(data, cluster, uid, item_id):
        assert time.monotonic() - t0 < 300, f"item {item_id} was not finished within 300 s"
        time.sleep(0.05)
    recovered = time.monotonic() - t0
    data.wait_phase(job, {"Succeeded", "Failed"}, timeout=300)
    return recovered


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions", []))


def visibility_trials(data: RealData, cluster: str) -> list[float]:
    """Consumers that never beat take one item each and die; the workers reclaim them after the visibility timeout."""
    data.submit(cluster, "vis", BASELINE_TRIALS + 4)
    uid = wait_for(lambda: _job_uid(data, "vis"), timeout=30)
    queue = data.queue(cluster)
    wait_for(lambda: queue.backlog() > 0, timeout=120, interval=0.05)
    taken = []
    for i in range(BASELINE_TRIALS):
        d = queue.take(f"silent-{i}", block_ms=5000)
        assert d is not None
        taken.append((d.item.item_id, time.monotonic()))
    out = []
    for item_id, took in taken:
        while not _done(data, cluster, uid, item_id):
            assert time.monotonic() - took < 600, f"item {item_id} was never reclaimed"
            time.sleep(0.1)
        out.append(time.monotonic() - took)
    data.wait_phase("vis", {"Succeeded", "Failed"}, timeout=600)
    return out


def main() -> int:
    try:
        with real_data("recovery") as data:
            engine = {**data.slow_engine(5.0), "timeoutSeconds": ENGINE_TIMEOUT_SECONDS}
            data.create_cluster("rec", workers=2, max_workers=2, engine=engine)
            data.wait_ready("rec")
            values = []
            for i in range(TRIALS):
                values.append(kill_trial(data, "rec", f"kill-{i}"))
                print(f"trial {i}: item finished {values[-1]:.1f}s after its worker was killed", flush=True)
            baseline = visibility_trials(data, "rec")
            print(f"visibility timeout: items finished {', '.join(f'{v:.1f}s' for v in baseline)} after the take")
    except NoRealNode as exc:
        print(f"worker-recovery cannot run here: {exc}", file=sys.stderr)
        return 1
    print(summary("heartbeat expiry: kill -> item finished", values))
    print(summary("visibility timeout: take -> item finished", baseline))
    report(
        Result(
            bench="worker-recovery",
            metric="worker container killed mid-item -> that item finished by another worker",
            unit="s",
            values=values,
            baseline_name=f"the visibility timeout ({ENGINE_TIMEOUT_SECONDS + 60} s) that bounded it before",
            baseline_values=baseline,
            goal=f"p95 <= {GOAL_P95:.0f} s",
            met=percentile(values, 95) <= GOAL_P95,
            extra={"engine_seconds_per_item": 5.0, "heartbeat_ttl_seconds": 10},
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
