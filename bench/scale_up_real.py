"""scale-up-real: a backlog appears -> a new worker pod is Ready on the real node -> its translator actor takes its
first item.

Portalis: a TranslationCluster on the real node with autoscaling on (min 1, max 2 workers, targetItemsPerWorker 2,
no scale-up stabilization) and a slow engine (the project's OpenAI-compatible test server in a pod, 1.5 s an item),
so one worker cannot drain the backlog. Each trial submits a job of 60 files (90 s of work for one worker, so the
backlog outlasts a new pod's start) and times, from the first moment Redis holds its items, until a worker on a pod
that did not exist before reports (in its heartbeat) an item in hand. The job then finishes and the cluster
settles back to one worker.

Baseline, in the same run: the same cluster shape with autoscaling off, scaled by hand at the instant the backlog
appears (its minWorkers raised to 2, as a person or a pipeline would), timed the same way. The difference is what
the autoscaler's noticing costs; the rest is KubeRay, the kubelet, Ray joining and the driver placing an actor.
Goal: p95 <= 30 s.
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

TRIALS = int(os.environ.get("PORTALIS_BENCH_SCALEUP_TRIALS", "5"))
FILES = 60  # 90 s of work for one worker: the backlog outlasts a new pod's start on a busy machine
GOAL_P95 = 30.0


def _worker_pods(data: RealData, cluster: str) -> set[str]:
    return {p["metadata"]["name"] for p in data.ray_pods(cluster, "worker")}


def _settle(data: RealData, cluster: str) -> set[str]:
    """Wait for one Ready worker and an empty queue; the pods before the next trial."""
    wait_for(lambda: data.queue(cluster).backlog() == 0, timeout=300, interval=0.5)
    wait_for(lambda: len(_worker_pods(data, cluster)) == 1, timeout=300, interval=0.5)
    data.wait_ready(cluster)
    return _worker_pods(data, cluster)


def trial(data: RealData, cluster: str, job: str, by_hand: bool) -> tuple[float, float]:
    """Seconds from the backlog to the first item taken on a new pod, and to that pod Ready."""
    before = _settle(data, cluster)
    queue = data.queue(cluster)
    data.submit(cluster, job, FILES)
    while queue.backlog() == 0:
        time.sleep(0.01)
    t0 = time.monotonic()
    if by_hand:
        data.c.kubectl("patch", "tc", cluster, "--type=merge", "-p", '{"spec":{"workers":{"minWorkers":2}}}')
    ready_at: float | None = None
    seen: list[str] = []
    while True:
        now = time.monotonic()
        assert now - t0 < 300, f"no new worker took an item within 300 s (pods before: {before}); seen:\n" + "\n".join(
            seen[-20:]
        )
        pods = data.ray_pods(cluster, "worker")
        busy = {name.split("/")[0] for name in data.busy_workers(cluster)}
        phases = sorted(f"{p['metadata']['name']} {(p.get('status') or {}).get('phase')}" for p in pods)
        line = f"{now - t0:.1f}s backlog {queue.backlog()} pods {phases} busy {busy}"
        if not seen or seen[-1].split("s ", 1)[1] != line.split("s ", 1)[1]:
            seen.append(line)
        if ready_at is None:
            for p in pods:
                name = p["metadata"]["name"]
                conditions = (p.get("status") or {}).get("conditions", [])
                if name not in before and any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                    ready_at = now
        if busy - before:
            first_item = now
            break
        time.sleep(0.1)
    data.wait_phase(job, {"Succeeded", "Failed"}, timeout=300)
    if by_hand:
        data.c.kubectl("patch", "tc", cluster, "--type=merge", "-p", '{"spec":{"workers":{"minWorkers":1}}}')
    return first_item - t0, (ready_at or first_item) - t0


def main() -> int:
    try:
        with real_data("scaleup") as data:
            engine = data.slow_engine(1.5)
            autoscaled = {
                "enabled": True,
                "targetItemsPerWorker": 2,
                "scaleUpStabilizationSeconds": 0,
                "scaleDownStabilizationSeconds": 5,
            }
            data.create_cluster("auto", workers=1, max_workers=2, engine=engine, autoscaling=autoscaled)
            data.create_cluster("hand", workers=1, max_workers=2, engine=engine)
            for cluster in ("auto", "hand"):
                data.wait_ready(cluster)
            ours: list[tuple[float, float]] = []
            base: list[tuple[float, float]] = []
            for i in range(TRIALS):
                ours.append(trial(data, "auto", f"auto-{i}", by_hand=False))
                print(f"trial {i}: autoscaler {ours[-1][0]:.1f}s (pod Ready at {ours[-1][1]:.1f}s)", flush=True)
                base.append(trial(data, "hand", f"hand-{i}", by_hand=True))
                print(f"trial {i}: by hand    {base[-1][0]:.1f}s (pod Ready at {base[-1][1]:.1f}s)", flush=True)
    except NoRealNode as exc:
        print(f"scale-up-real cannot run here: {exc}", file=sys.stderr)
        return 1
    values, baseline = [t for t, _ in ours], [t for t, _ in base]
    print(summary("autoscaler: backlog -> first item on a new pod", values))
    print(summary("by hand:    backlog -> first item on a new pod", baseline))
    extra: dict[str, Any] = {
        "pod_ready_p50_s": round(percentile([r for _, r in ours], 50), 3),
        "pod_ready_p95_s": round(percentile([r for _, r in ours], 95), 3),
        "baseline_pod_ready_p50_s": round(percentile([r for _, r in base], 50), 3),
        "files_per_job": FILES,
        "engine_seconds_per_item": 1.5,
    }
    report(
        Result(
            bench="scale-up-real",
            metric="backlog appears -> new worker pod Ready -> its first item taken",
            unit="s",
            values=values,
            baseline_name="the same cluster scaled by hand the instant the backlog appears",
            baseline_values=baseline,
            goal=f"p95 <= {GOAL_P95:.0f} s",
            met=percentile(values, 95) <= GOAL_P95,
            extra=extra,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
