"""ecc-drain: from an ECC alert posted to the operator's webhook to its node drained of 30 pods.

Each trial makes two fresh bench GPU nodes with 30 running pods each (bare pods bound to the node, as
``kubectl drain --force`` accepts them). Portalis, with ``CordonAndDrain`` as the operator-wide default: one
Alertmanager notification for node A is posted to ``POST /alerts``, and the time is taken when a pod watch has
seen the last of A's 30 pods deleted. Baseline, in the same trial and timed the same way: ``kubectl drain B
--ignore-daemonsets --delete-emptydir-data --force`` (process start included) until the last of B's pods is gone;
the time the kubectl process took to exit is reported too. Goal: drain no slower than kubectl drain (p95).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from functools import partial
from typing import Any

from bench.common import Result, local_cluster, percentile, report, summary
from bench.ecc_common import BENCH_LABEL, Seen, create_nodes, delete_nodes, health_operator, post_alert, watching

TRIALS = int(os.environ.get("PORTALIS_BENCH_DRAIN_TRIALS", "5"))
PODS = int(os.environ.get("PORTALIS_BENCH_DRAIN_PODS", "30"))


def both_full(seen: Seen, a: str, b: str) -> bool:
    """Both nodes run all their pods, as the watch shows them."""
    return len(seen.pods.get(a, ())) == PODS and len(seen.pods.get(b, ())) == PODS


def pods_on(node: str, fleet: str, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{prefix}-{i:02d}", "labels": {"app": "bench-drain", "node": node}},
            "spec": {
                "nodeName": node,
                "containers": [
                    {
                        "name": "app",
                        "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                    }
                ],
                "tolerations": [{"key": BENCH_LABEL, "operator": "Equal", "value": fleet, "effect": "NoSchedule"}],
            },
        }
        for i in range(PODS)
    ]


def main() -> int:
    fleet = "drain-" + uuid.uuid4().hex[:6]
    ns = f"bench-{fleet}"
    ours: list[float] = []
    kubectl: list[float] = []
    kubectl_exit: list[float] = []
    nodes: list[str] = []
    with local_cluster("bench-ecc-drain") as kube:
        kubectl_bin = str(kube.tc.kubectl)
        kube.kubectl("create", "namespace", ns)
        env = {"PORTALIS_DEFAULT_ECC_ACTION": "CordonAndDrain", "PORTALIS_DEFAULT_DRAIN_TIMEOUT_SECONDS": "120"}
        try:
            with health_operator(kube, fleet, env) as op, watching(kube, fleet, ns) as seen:
                for trial in range(TRIALS):
                    a, b = f"bench-{fleet}-{trial}a", f"bench-{fleet}-{trial}b"
                    nodes += [a, b]
                    create_nodes(kube, fleet, [a, b])
                    items = pods_on(a, fleet, f"t{trial}a") + pods_on(b, fleet, f"t{trial}b")
                    kube.kubectl(
                        "-n",
                        ns,
                        "apply",
                        "-f",
                        "-",
                        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
                    )
                    seen.wait(partial(both_full, seen, a, b))
                    kube.kubectl(
                        "-n", ns, "wait", "--for=condition=Ready", "pod", "-l", "app=bench-drain", "--timeout=60s"
                    )
                    time.sleep(1)  # the operator's caches have the nodes and pods

                    started = time.monotonic()
                    post_alert(op.webhook_url, a)
                    drained = seen.when(partial(seen.emptied_at.get, a), timeout=120)
                    ours.append(drained - started)

                    started = time.monotonic()
                    subprocess.run(
                        [
                            kubectl_bin,
                            "--kubeconfig",
                            str(kube.kubeconfig),
                            "drain",
                            b,
                            "--ignore-daemonsets",
                            "--delete-emptydir-data",
                            "--force",
                        ],
                        check=True,
                        capture_output=True,
                        env=kube.env(),
                    )
                    exited = time.monotonic()
                    drained = seen.when(partial(seen.emptied_at.get, b), timeout=120)
                    kubectl.append(drained - started)
                    kubectl_exit.append(exited - started)
                    print(
                        f"trial {trial}: Portalis {ours[-1]:.3f}s, kubectl drain {kubectl[-1]:.3f}s "
                        f"(exit {kubectl_exit[-1]:.3f}s)",
                        flush=True,
                    )
        finally:
            delete_nodes(kube, nodes)
            kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)

    print(summary(f"Portalis: alert posted -> {PODS} pods evicted and gone", ours))
    print(summary(f"kubectl drain -> {PODS} pods gone", kubectl))
    print(summary("kubectl drain -> process exited", kubectl_exit))
    report(
        Result(
            bench="ecc-drain",
            metric=f"ECC alert posted to /alerts -> node drained of {PODS} pods (watch)",
            unit="s",
            values=ours,
            baseline_name="kubectl drain --ignore-daemonsets --delete-emptydir-data --force",
            baseline_values=kubectl,
            goal="p95 no slower than kubectl drain",
            met=percentile(ours, 95) <= percentile(kubectl, 95),
            extra={
                "pods": PODS,
                "kubectl_exit_p50": round(percentile(kubectl_exit, 50), 4),
                "kubectl_exit_p95": round(percentile(kubectl_exit, 95), 4),
            },
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
