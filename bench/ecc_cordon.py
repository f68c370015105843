"""ecc-cordon: from an ECC alert posted to the operator's webhook to the node cordoned, as a watching client sees it.

Each trial posts one Alertmanager notification (``PortalisGpuEccDoubleBitErrors`` for one bench node, with the
bearer token) to ``POST /alerts`` and times until a node watch shows the node unschedulable; then releases the
node with the ``portalis.dev/release=true`` annotation and waits for the operator to clean it up. The baseline,
on the same node in the same trial and timed the same way, is a person running ``kubectl cordon`` (process start
included), then ``kubectl uncordon``. Goal: p95 <= 1 s from alert to cordon.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from functools import partial

from bench.common import Result, local_cluster, percentile, report, summary
from bench.ecc_common import create_nodes, delete_nodes, health_operator, post_alert, watching

TRIALS = int(os.environ.get("PORTALIS_BENCH_ECC_TRIALS", "30"))
GOAL_P95 = 1.0


def main() -> int:
    fleet = "cordon-" + uuid.uuid4().hex[:6]
    names = [f"bench-{fleet}-{i}" for i in range(min(TRIALS, 10))]
    ours: list[float] = []
    kubectl: list[float] = []
    with local_cluster("bench-ecc-cordon") as kube:
        kubectl_bin = str(kube.tc.kubectl)
        create_nodes(kube, fleet, names)
        try:
            with health_operator(kube, fleet) as op, watching(kube, fleet) as seen:
                seen.wait(lambda: all(n in seen.nodes for n in names), timeout=30)
                time.sleep(2)  # the operator's caches have the nodes
                for i in range(TRIALS):
                    node = names[i % len(names)]
                    started = time.monotonic()
                    post_alert(op.webhook_url, node)
                    cordoned = seen.when(partial(seen.cordoned_at.get, node))
                    ours.append(cordoned - started)
                    kube.kubectl("annotate", "node", node, "portalis.dev/release=true", "--overwrite")
                    seen.wait(partial(seen.released, node))

                    started = time.monotonic()
                    subprocess.run(
                        [kubectl_bin, "--kubeconfig", str(kube.kubeconfig), "cordon", node],
                        check=True,
                        capture_output=True,
                        env=kube.env(),
                    )
                    cordoned = seen.when(partial(seen.cordoned_at.get, node))
                    kubectl.append(cordoned - started)
                    kube.kubectl("uncordon", node)
                    seen.wait(partial(seen.uncordoned, node))
                    time.sleep(0.2)
        finally:
            delete_nodes(kube, names)

    print(summary("Portalis: alert posted -> node cordoned and tainted", ours))
    print(summary("kubectl cordon (process start included) -> node cordoned", kubectl))
    report(
        Result(
            bench="ecc-cordon",
            metric="ECC alert posted to /alerts -> node cordoned (watch)",
            unit="s",
            values=ours,
            baseline_name="kubectl cordon of the same node",
            baseline_values=kubectl,
            goal=f"p95 <= {GOAL_P95:.0f} s",
            met=percentile(ours, 95) <= GOAL_P95,
            extra={"trials": TRIALS, "nodes": len(names)},
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
