"""``make demo``: the local GPU cluster with Portalis running on it, from a fresh clone.

Brings up the local cluster (building it once), real Redis and S3 servers, installs the CRDs, starts the
operator, applies the example TranslationCluster and shows what Portalis made of it. The local cluster is
left running for exploration (`portalis devcluster down` stops it); the operator and servers stop on exit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from portalis.devcluster.cluster import DevCluster, free_port
from portalis.devcluster.servers import RedisServer, S3Server

ROOT = Path(__file__).resolve().parents[3]


def _say(msg: str) -> None:
    print(f"\n==> {msg}", flush=True)


def main() -> int:
    _say("starting the local GPU cluster (the first run builds it from Go modules)")
    cluster = DevCluster().up()
    _say("starting Redis and S3 on loopback")
    redis = RedisServer().start()
    s3 = S3Server().start()
    operator: subprocess.Popen[bytes] | None = None
    try:
        _say("installing the Portalis CRDs")
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/translationclusters.portalis.dev")
        _say("starting the operator")
        port = free_port()
        log = cluster.log_dir / "portalis-operator.log"
        env = cluster.env()
        with open(log, "ab") as fh:
            operator = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "portalis",
                    "operator",
                    "run",
                    "--health-host",
                    "127.0.0.1",
                    "--health-port",
                    str(port),
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
            )
        _wait_http(f"http://127.0.0.1:{port}/healthz", 30)
        ns = "portalis-demo"
        cluster.kubectl("create", "namespace", ns, check=False)
        _say("applying manifests/examples/translationcluster-h100.yaml")
        cluster.kubectl("apply", "-n", ns, "-f", str(ROOT / "manifests/examples/translationcluster-h100.yaml"))
        deadline = time.monotonic() + 30
        status: dict[str, object] = {}
        while time.monotonic() < deadline:
            out = cluster.kubectl("get", "tc", "h100", "-n", ns, "-o", "json").stdout
            status = json.loads(out).get("status") or {}
            if status.get("observedGeneration"):
                break
            time.sleep(0.3)
        print(cluster.kubectl("get", "tc,tj", "-n", ns).stdout)
        print(cluster.kubectl("get", "nodes", "-L", "nvidia.com/gpu.product,karpenter.sh/capacity-type").stdout)
        print(f"KUBECONFIG={cluster.kubeconfig}  (operator log: {log}; Redis {redis.url}; S3 {s3.endpoint})")
        if not status.get("observedGeneration"):
            print("error: the operator did not observe the TranslationCluster within 30s", file=sys.stderr)
            return 1
        return 0
    finally:
        if operator is not None:
            operator.terminate()
            operator.wait(20)
        redis.stop()
        s3.stop()


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
