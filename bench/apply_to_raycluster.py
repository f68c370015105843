"""apply-to-raycluster: from creating a TranslationCluster to its RayCluster existing, and to Ready.

Creates N TranslationClusters (default 50, one every 100 ms) on the local GPU cluster with the operator
running, and times, as a watching client sees it: TranslationCluster created -> RayCluster created (Portalis),
and -> TranslationCluster Ready. The baseline, measured in the same run on the same objects, is the real
KubeRay operator's own RayCluster created -> all its pods created. Goal: apply-to-RayCluster p95 <= 1 s.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import kubernetes

from bench.common import Result, local_cluster, operator_running, percentile, report, summary
from bench.watch import Watcher, api_client
from portalis_devcluster.nodes import FleetSpec

N = int(os.environ.get("PORTALIS_BENCH_CLUSTERS", "50"))
GOAL_P95 = 1.0


def manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "portalis.dev/v1alpha1",
        "kind": "TranslationCluster",
        "metadata": {"name": name},
        "spec": {
            "workers": {
                "gpuType": "Any",
                "gpusPerWorker": 1,
                "minWorkers": 1,
                "maxWorkers": 2,
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
            },
            "head": {"resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}},
            "queue": {"url": "redis://redis.portalis:6379/0"},
            "storage": {"bucket": "portalis-bench"},
        },
    }


def main() -> int:
    fleet = FleetSpec(h100_nodes=4, a100_nodes=4, cpu_nodes=2, gpus_per_node=8, spot_every=0)
    with local_cluster("bench-apply", fleet) as kube, operator_running(kube):
        ns = f"bench-apply-{os.getpid()}"
        kube.kubectl("create", "namespace", ns)
        client = api_client(kube)
        custom = kubernetes.client.CustomObjectsApi(client)
        core = kubernetes.client.CoreV1Api(client)
        lock = threading.Lock()
        applied: dict[str, float] = {}
        rc_created: dict[str, float] = {}
        ready: dict[str, float] = {}
        pods_seen: dict[str, set[str]] = {}
        pods_complete: dict[str, float] = {}

        def on_rc(kind: str, obj: dict[str, Any], t: float) -> None:
            if kind == "ADDED":
                with lock:
                    rc_created.setdefault(obj["metadata"]["name"], t)

        def on_tc(_kind: str, obj: dict[str, Any], t: float) -> None:
            conds = (obj.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                with lock:
                    ready.setdefault(obj["metadata"]["name"], t)

        def on_pod(kind: str, obj: dict[str, Any], t: float) -> None:
            cluster = (obj["metadata"].get("labels") or {}).get("ray.io/cluster")
            if kind != "ADDED" or not cluster:
                return
            with lock:
                seen = pods_seen.setdefault(cluster, set())
                seen.add(obj["metadata"]["name"])
                if len(seen) == 2:  # head + minWorkers (1)
                    pods_complete.setdefault(cluster, t)

        watchers = [
            Watcher(
                custom.list_namespaced_custom_object,
                on_rc,
                group="ray.io",
                version="v1",
                namespace=ns,
                plural="rayclusters",
            ),
            Watcher(
                custom.list_namespaced_custom_object,
                on_tc,
                group="portalis.dev",
                version="v1alpha1",
                namespace=ns,
                plural="translationclusters",
            ),
            Watcher(core.list_namespaced_pod, on_pod, namespace=ns),
        ]
        for w in watchers:
            w.start()
            w.ready.wait(10)
        for i in range(N):
            name = f"b{i:03d}"
            t0 = time.monotonic()
            custom.create_namespaced_custom_object(
                "portalis.dev", "v1alpha1", ns, "translationclusters", manifest(name)
            )
            with lock:
                applied[name] = t0
            time.sleep(0.1)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with lock:
                if len(ready) >= N and len(pods_complete) >= N:
                    break
            time.sleep(0.2)
        for w in watchers:
            w.stop()
        kube.kubectl("delete", "namespace", ns, "--wait=false")

    names = sorted(applied)
    missing = [n for n in names if n not in rc_created or n not in ready or n not in pods_complete]
    if missing:
        print(f"{len(missing)} of {N} clusters did not finish: {missing[:10]}", file=sys.stderr)
    done = [n for n in names if n not in missing]
    if not done:
        return 1
    to_rc = [rc_created[n] - applied[n] for n in done]
    to_ready = [ready[n] - applied[n] for n in done]
    kuberay = [pods_complete[n] - rc_created[n] for n in done]
    print(summary("Portalis: TranslationCluster created -> RayCluster created", to_rc))
    print(summary("Portalis: TranslationCluster created -> Ready", to_ready))
    print(summary("KubeRay: RayCluster created -> head and worker pods created", kuberay))
    report(
        Result(
            bench="apply-to-raycluster",
            metric="TranslationCluster created -> RayCluster created",
            unit="s",
            values=to_rc,
            baseline_name="KubeRay RayCluster created -> pods created",
            baseline_values=kuberay,
            goal=f"p95 <= {GOAL_P95:.1f} s",
            met=percentile(to_rc, 95) <= GOAL_P95 and not missing,
            extra={
                "to_ready_p50": round(percentile(to_ready, 50), 4),
                "to_ready_p95": round(percentile(to_ready, 95), 4),
                "clusters": N,
                "unfinished": len(missing),
            },
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
