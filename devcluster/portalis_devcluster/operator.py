"""The Portalis operator as a child process against a local cluster, for tests, benchmarks and the demo."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from portalis_devcluster.cluster import DevCluster, free_port

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"


def install_crds(kube: DevCluster) -> DevCluster:
    """Portalis' CRDs, from the generated files in crds/, waited on until Established."""
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    kube.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/translationclusters.portalis.dev",
        "crd/translationjobs.portalis.dev",
    )
    return kube


class OperatorProcess:
    """``portalis operator run`` on free loopback ports, logging to ``log``."""

    def __init__(
        self,
        kube: DevCluster,
        log: Path,
        extra_args: list[str] | None = None,
        webhook_token_file: Path | None = None,
        webhook_port: int | None = None,
    ) -> None:
        """``webhook_token_file`` turns on ``POST /alerts`` (on ``webhook_port``, a free port by default)."""
        self.kube = kube
        self.log = log
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.extra_args = extra_args or []
        self.extra_env: dict[str, str] = {}
        self.webhook_token_file = webhook_token_file
        self.webhook_port = (webhook_port or free_port()) if webhook_token_file is not None else 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.clock_file: Path | None = None  # set when the metering clock can be moved (tests)

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}/alerts"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/healthz"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def metrics_target(self) -> str:
        """host:port of ``/metrics``, as a Prometheus scrape target."""
        return f"127.0.0.1:{self.metrics_port}"

    def start(self, extra_env: dict[str, str] | None = None, timeout: float = 30) -> OperatorProcess:
        """Start the operator; a restart without ``extra_env`` keeps the environment of the previous start."""
        if extra_env is not None:
            self.extra_env = dict(extra_env)
        env = self.kube.env()
        env.setdefault("MALLOC_ARENA_MAX", "2")  # as the operator image sets it
        env.update(self.extra_env)
        argv = [
            sys.executable,
            "-m",
            "portalis",
            "operator",
            "run",
            "--health-host",
            "127.0.0.1",
            "--health-port",
            str(self.health_port),
            "--metrics-port",
            str(self.metrics_port),
            *self.extra_args,
        ]
        if self.webhook_token_file is not None:
            argv += ["--webhook-host", "127.0.0.1", "--webhook-port", str(self.webhook_port)]
            env["PORTALIS_WEBHOOK_TOKEN_FILE"] = str(self.webhook_token_file)
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"operator did not serve {self.health_url} in {timeout:.0f}s:\n{self.log.read_text()[-3000:]}"
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
