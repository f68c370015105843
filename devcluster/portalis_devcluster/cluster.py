"""The local GPU cluster: a real control plane with KWOK GPU nodes and the KubeRay operator, on loopback.

Used by the tests, the benchmarks and ``make demo``; never in production. ``up`` is idempotent: it starts
what is not running and leaves what is. Every process is started detached with its log under
``<state>/logs/``, its pid in ``<state>/state.json``, so the CLI can exit and ``down`` can find them later.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from portalis_devcluster import build
from portalis_devcluster.nodes import FleetSpec, build_nodes

ADMIN_TOKEN = "portalis-devcluster-admin"  # loopback-only, throwaway cluster


class DevClusterError(RuntimeError):
    """The local cluster could not be brought up; the message says why and what to look at."""


def _log(msg: str) -> None:
    print(f"[devcluster] {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); treat it as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@dataclass
class Ports:
    etcd_client: int = 0
    etcd_peer: int = 0
    apiserver: int = 0
    controller_manager: int = 0
    scheduler: int = 0
    kwok: int = 0
    kuberay_metrics: int = 0
    kuberay_probe: int = 0
    dask_operator: int = 0

    def fill_missing(self) -> None:
        """Give a port to components added since the state was written; running ones keep theirs."""
        for name in self.__dataclass_fields__:
            if not getattr(self, name):
                setattr(self, name, free_port())

    def allocate(self) -> None:
        for name in self.__dataclass_fields__:
            current = getattr(self, name)
            if not current or not _port_free(current):
                setattr(self, name, free_port())


@dataclass
class State:
    ports: Ports = field(default_factory=Ports)
    pids: dict[str, int] = field(default_factory=dict)
    fleet: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> State:
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text())
        return cls(ports=Ports(**raw.get("ports", {})), pids=raw.get("pids", {}), fleet=raw.get("fleet", {}))

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ports": asdict(self.ports), "pids": self.pids, "fleet": self.fleet}, indent=2))
        tmp.replace(path)


def dask_crd_dir() -> Path:
    """dask-kubernetes ships ready-to-apply CRDs inside its wheel (its Helm chart's crds/)."""
    import dask_kubernetes

    base = Path(dask_kubernetes.__file__).parent
    return base / "operator" / "deployment" / "helm" / "dask-kubernetes-operator" / "crds"


def default_state_dir(name: str = "default") -> Path:
    override = os.environ.get("PORTALIS_DEVCLUSTER_DIR")
    return Path(override) if override else build.cache_root() / "clusters" / name


# The order components start in; `down` stops them in reverse.
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kuberay-operator",
    "dask-operator",
)


class DevCluster:
    """One local cluster rooted at a state directory."""

    def __init__(self, state_dir: Path | None = None, fleet: FleetSpec | None = None) -> None:
        self.dir = (state_dir or default_state_dir()).resolve()
        self.tc = build.toolchain()
        self.fleet = fleet or FleetSpec()

    # ---- paths ----------------------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    def state(self) -> State:
        return State.load(self.state_file)

    def env(self) -> dict[str, str]:
        """Environment for tools that talk to this cluster (kubectl, helm, the operator)."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = os.pathsep.join([str(self.tc.k8s_dir), str(self.tc.helm.parent), env.get("PATH", "")])
        return env

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.tc.kubectl), "--kubeconfig", str(self.kubeconfig), *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=self.env())
        if check and proc.returncode != 0:
            raise DevClusterError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.state().ports.apiserver}"

    # ---- lifecycle ------------------------------------------------------------------------------------
    def running(self) -> dict[str, bool]:
        st = self.state()
        return {name: pid_alive(st.pids.get(name)) for name in COMPONENTS}

    def healthy(self) -> bool:
        return all(self.running().values()) and self._apiserver_ready(self.state().ports.apiserver)

    def up(self, build_if_missing: bool = True) -> DevCluster:
        started = time.monotonic()
        if build_if_missing:
            build.ensure_built()
        elif not build.is_built(self.tc):
            raise DevClusterError("the control plane is not built; run `portalis devcluster up` once to build it")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        st = self.state()
        alive = {name: pid_alive(st.pids.get(name)) for name in COMPONENTS}
        if all(alive.values()) and self._apiserver_ready(st.ports.apiserver) and self._nodes_ready():
            _log(f"already running (kubeconfig {self.kubeconfig})")
            return self
        if not alive["etcd"] or not alive["kube-apiserver"]:
            # the ports of the data layer must be stable for the rest; a partial stack is restarted whole
            self._stop_all(st)
            st = State(ports=st.ports, fleet=st.fleet)
            st.ports.allocate()
        st.ports.fill_missing()
        self._write_pki()
        self._write_kubeconfig(st.ports.apiserver)
        st.fleet = asdict(self.fleet)
        for name in COMPONENTS:
            if pid_alive(st.pids.get(name)):
                continue
            self._start(name, st)
            st.save(self.state_file)
            if name == "kube-apiserver":
                self._wait(lambda: self._apiserver_ready(st.ports.apiserver), 90, "kube-apiserver /readyz")
                self._bootstrap()
        if alive["kube-apiserver"]:
            self._bootstrap()  # a repaired cluster may have lost its nodes or CRDs; applying is idempotent
        self._wait(self._nodes_ready, 60, "KWOK GPU nodes Ready")
        self._wait(self._kuberay_ready, 60, "KubeRay operator healthy")
        self._wait(self._dask_operator_ready, 60, "dask-kubernetes operator healthy")
        _log(f"up in {time.monotonic() - started:.1f}s; export KUBECONFIG={self.kubeconfig}")
        return self

    def restart(self, name: str) -> None:
        """Stop and start one component (chaos tests restart the kube-apiserver this way)."""
        st = self.state()
        self._stop_pid(name, st.pids.get(name))
        self._start(name, st)
        st.save(self.state_file)
        if name == "kube-apiserver":
            self._wait(lambda: self._apiserver_ready(st.ports.apiserver), 90, "kube-apiserver /readyz")

    def down(self, purge: bool = True) -> None:
        st = self.state()
        self._stop_all(st)
        if purge:
            for sub in ("etcd-data",):
                path = self.dir / sub
                if path.exists():
                    subprocess.run(["rm", "-rf", str(path)], check=False)
        st.pids = {}
        if self.dir.exists():
            st.save(self.state_file)
        _log("down")

    # ---- internals ------------------------------------------------------------------------------------
    def _stop_all(self, st: State) -> None:
        for name in reversed(COMPONENTS):
            self._stop_pid(name, st.pids.pop(name, None))

    @staticmethod
    def _stop_pid(name: str, pid: int | None, timeout: float = 15) -> None:
        if not pid_alive(pid):
            return
        assert pid is not None
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.1)
        if pid_alive(pid):
            _log(f"{name} did not stop in {timeout:.0f}s; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    def _argv(self, name: str, p: Ports) -> list[str]:
        tc, d, kc = self.tc, self.dir, str(self.kubeconfig)
        pki = d / "pki"
        if name == "etcd":
            return [
                str(tc.etcd),
                "--data-dir",
                str(d / "etcd-data"),
                "--name",
                "portalis-dev",
                "--listen-client-urls",
                f"http://127.0.0.1:{p.etcd_client}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{p.etcd_client}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{p.etcd_peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{p.etcd_peer}",
                "--initial-cluster",
                f"portalis-dev=http://127.0.0.1:{p.etcd_peer}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes",
                str(4 * 1024**3),
                "--log-level",
                "warn",
            ]
        if name == "kube-apiserver":
            return [
                str(tc.k8s("kube-apiserver")),
                "--etcd-servers",
                f"http://127.0.0.1:{p.etcd_client}",
                "--bind-address",
                "127.0.0.1",
                "--advertise-address",
                "127.0.0.1",
                "--secure-port",
                str(p.apiserver),
                "--cert-dir",
                str(pki / "serving"),
                "--token-auth-file",
                str(pki / "tokens.csv"),
                "--authorization-mode",
                "Node,RBAC",
                "--service-account-issuer",
                "https://kubernetes.default.svc.cluster.local",
                "--service-account-key-file",
                str(pki / "sa.pub"),
                "--service-account-signing-key-file",
                str(pki / "sa.key"),
                "--api-audiences",
                "https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range",
                "10.96.0.0/16",
                "--enable-admission-plugins",
                "ExtendedResourceToleration",
                "--allow-privileged=true",
                "--profiling=false",
                "--v",
                "1",
                "--max-requests-inflight",
                "800",
                "--max-mutating-requests-inflight",
                "400",
            ]
        if name == "kube-controller-manager":
            return [
                str(tc.k8s("kube-controller-manager")),
                "--kubeconfig",
                kc,
                "--authentication-kubeconfig",
                kc,
                "--authorization-kubeconfig",
                kc,
                "--leader-elect=false",
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                str(p.controller_manager),
                "--service-account-private-key-file",
                str(pki / "sa.key"),
                "--root-ca-file",
                str(pki / "serving" / "apiserver.crt"),
                "--use-service-account-credentials=false",
                "--cluster-cidr",
                "10.244.0.0/16",
                "--controllers",
                "*,-nodeipam,-ttl,-bootstrapsigner,-tokencleaner",
                "--kube-api-qps",
                "200",
                "--kube-api-burst",
                "400",
                "--concurrent-gc-syncs",
                "20",
                "--v",
                "1",
            ]
        if name == "kube-scheduler":
            return [
                str(tc.k8s("kube-scheduler")),
                "--kubeconfig",
                kc,
                "--authentication-kubeconfig",
                kc,
                "--authorization-kubeconfig",
                kc,
                "--leader-elect=false",
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                str(p.scheduler),
                "--kube-api-qps",
                "200",
                "--kube-api-burst",
                "400",
                "--v",
                "1",
            ]
        if name == "kwok":
            stages = sorted(str(f) for f in tc.kwok_stages.glob("*.yaml"))
            return [
                str(tc.kwok),
                "--kubeconfig",
                kc,
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-ip",
                "10.0.0.1",
                "--cidr",
                "10.0.0.1/16",
                "--node-lease-duration-seconds",
                "40",
                "--server-address",
                f"127.0.0.1:{p.kwok}",
                *[f"--config={s}" for s in stages],
            ]
        if name == "kuberay-operator":
            return [
                str(tc.ray_operator),
                f"--kubeconfig={kc}",
                "--enable-leader-election=false",
                f"--metrics-addr=127.0.0.1:{p.kuberay_metrics}",
                f"--health-probe-bind-address=127.0.0.1:{p.kuberay_probe}",
                "--log-stdout-encoder=console",
                "--reconcile-concurrency=8",
            ]
        if name == "dask-operator":
            # dask-kubernetes' own operator (kopf), from the installed wheel
            return [
                sys.executable,
                "-m",
                "kopf",
                "run",
                "-m",
                "dask_kubernetes.operator.controller",
                "--all-namespaces",
                "--standalone",
                f"--liveness=http://127.0.0.1:{p.dask_operator}/healthz",
            ]
        raise KeyError(name)

    def _start(self, name: str, st: State) -> None:
        argv = self._argv(name, st.ports)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child process
        env = self.env()
        env.pop("KWOK_KUBE_CONFIG", None)
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            cwd=self.dir,
        )
        log.close()
        st.pids[name] = proc.pid
        _log(f"started {name} (pid {proc.pid}, log {self.log_dir / (name + '.log')})")
        time.sleep(0.2)
        if proc.poll() is not None:
            raise DevClusterError(f"{name} exited at once; see {self.log_dir / (name + '.log')}")

    def _write_pki(self) -> None:
        pki = self.dir / "pki"
        (pki / "serving").mkdir(parents=True, exist_ok=True)
        if not (pki / "sa.key").exists():
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            (pki / "sa.key").write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption(),
                )
            )
            (pki / "sa.pub").write_bytes(
                key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        (pki / "tokens.csv").write_text(f'{ADMIN_TOKEN},admin,admin,"system:masters"\n')

    def _write_kubeconfig(self, port: int) -> None:
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "portalis-dev",
                    "cluster": {"server": f"https://127.0.0.1:{port}", "insecure-skip-tls-verify": True},
                }
            ],
            "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}}],
            "contexts": [{"name": "portalis-dev", "context": {"cluster": "portalis-dev", "user": "admin"}}],
            "current-context": "portalis-dev",
        }
        self.kubeconfig.write_text(json.dumps(cfg, indent=2))
        self.kubeconfig.chmod(0o600)

    @staticmethod
    def _get(url: str, token: str | None = ADMIN_TOKEN, timeout: float = 2) -> tuple[int, str]:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")
        except (OSError, ValueError):
            return 0, ""

    def _apiserver_ready(self, port: int) -> bool:
        return bool(port) and self._get(f"https://127.0.0.1:{port}/readyz")[0] == 200

    def _wait(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            for name, ok in self.running().items():
                if not ok and name in self.state().pids:
                    raise DevClusterError(f"{name} died while waiting for {what}; see {self.log_dir / (name + '.log')}")
            time.sleep(0.2)
        raise DevClusterError(f"timed out after {timeout:.0f}s waiting for {what}; logs are in {self.log_dir}")

    def _bootstrap(self) -> None:
        """Objects every run needs: the fake GPU fleet and KubeRay's CRDs (idempotent server-side apply)."""
        nodes = build_nodes(self.fleet)
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=portalis-devcluster",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes}),
        )
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=portalis-devcluster",
            "-f",
            str(self.tc.ray_crds),
        )
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=portalis-devcluster",
            "-f",
            str(dask_crd_dir()),
        )
        self.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/rayclusters.ray.io",
            "crd/rayjobs.ray.io",
            "crd/daskclusters.kubernetes.dask.org",
        )

    def _nodes_ready(self) -> bool:
        proc = self.kubectl("get", "nodes", "-o", "json", check=False)
        if proc.returncode != 0:
            return False
        items = json.loads(proc.stdout)["items"]
        want = {n["metadata"]["name"] for n in build_nodes(self.fleet)}
        ready = {
            i["metadata"]["name"]
            for i in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in i.get("status", {}).get("conditions", []))
        }
        return want <= ready

    def _kuberay_ready(self) -> bool:
        port = self.state().ports.kuberay_probe
        return self._get(f"http://127.0.0.1:{port}/readyz", token=None)[0] == 200

    def _dask_operator_ready(self) -> bool:
        port = self.state().ports.dask_operator
        return self._get(f"http://127.0.0.1:{port}/healthz", token=None)[0] == 200

    def describe(self) -> Iterable[str]:
        st = self.state()
        for name in COMPONENTS:
            pid = st.pids.get(name)
            yield f"{name:<26} {'running' if pid_alive(pid) else 'stopped':<8} pid={pid or '-'}"
        yield f"{'kube-apiserver /readyz':<26} {'ok' if self._apiserver_ready(st.ports.apiserver) else 'down'}"
        yield f"kubeconfig                 {self.kubeconfig}"
