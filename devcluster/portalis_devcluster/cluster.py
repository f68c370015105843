"""The local GPU cluster: a real control plane with KWOK GPU nodes, the KubeRay operator and one real node.

Used by the tests, the benchmarks and ``make demo``; never in production. ``up`` is idempotent: it starts
what is not running and leaves what is. Every process is started detached with its log under
``<state>/logs/``, its pid in ``<state>/state.json``, so the CLI can exit and ``down`` can find them later.

The real node (``node.py``) is on by default; ``PORTALIS_DEVCLUSTER_REAL_NODE=0`` turns it off, and a machine that
cannot run one (not root, no overlayfs, no namespaces, no runc or CNI plugins) gets the KWOK fleet alone, with the
reason logged and kept in ``status``. ``down`` stops every process, removes the node's namespaces, veth and cgroups
and writes back the host sysctls the kubelet changed, so the machine is as it was before ``up``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
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

from portalis_devcluster import build, controlplane, host, images, network
from portalis_devcluster.dns import build_coredns
from portalis_devcluster.node import (
    COREDNS_IMAGE,
    ENV_SWITCH,
    NODE_COMPONENTS,
    NODE_NAME,
    NODE_SELECTOR,
    TOLERATIONS,
    RealNode,
    RealNodeSpec,
)
from portalis_devcluster.nodes import FleetSpec, build_nodes
from portalis_devcluster.pki import APISERVER_KUBELET_CLIENT, KWOK_SERVING, Pki, apiserver_cert
from portalis_devcluster.ports import Ports, free_port

__all__ = ["ADMIN_TOKEN", "DevCluster", "DevClusterError", "free_port", "pid_alive"]

ADMIN_TOKEN = "portalis-devcluster-admin"  # throwaway cluster, API server on loopback or the node's veth only
COMPONENTS = controlplane.COMPONENTS
MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the closing NUL


class DevClusterError(RuntimeError):
    """The local cluster could not be brought up; the message says why and what to look at."""


def _log(msg: str) -> None:
    print(f"[devcluster] {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


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
class NodeState:
    """The real node as ``up`` left it: whether it runs, why not, its network slot and the host's sysctls."""

    enabled: bool = False
    reason: str = ""
    slot: int | None = None
    api_host: str = "127.0.0.1"
    sysctls_before: dict[str, str] = field(default_factory=dict)


@dataclass
class State:
    ports: Ports = field(default_factory=Ports)
    pids: dict[str, int] = field(default_factory=dict)
    fleet: dict[str, Any] = field(default_factory=dict)
    node: NodeState = field(default_factory=NodeState)

    @classmethod
    def load(cls, path: Path) -> State:
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text())
        return cls(
            ports=Ports(**raw.get("ports", {})),
            pids=raw.get("pids", {}),
            fleet=raw.get("fleet", {}),
            node=NodeState(**raw.get("node", {})),
        )

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        body = {"ports": asdict(self.ports), "pids": self.pids, "fleet": self.fleet, "node": asdict(self.node)}
        tmp.write_text(json.dumps(body, indent=2))
        tmp.replace(path)


def dask_crd_dir() -> Path:
    """dask-kubernetes ships ready-to-apply CRDs inside its wheel (its Helm chart's crds/)."""
    import dask_kubernetes

    base = Path(dask_kubernetes.__file__).parent
    return base / "operator" / "deployment" / "helm" / "dask-kubernetes-operator" / "crds"


def default_state_dir(name: str = "default") -> Path:
    override = os.environ.get("PORTALIS_DEVCLUSTER_DIR")
    return Path(override) if override else build.cache_root() / "clusters" / name


class DevCluster:
    """One local cluster rooted at a state directory."""

    def __init__(
        self, state_dir: Path | None = None, fleet: FleetSpec | None = None, real_node: RealNodeSpec | None = None
    ) -> None:
        self.dir = (state_dir or default_state_dir()).resolve()
        self.tc = build.toolchain()
        self.fleet = fleet or FleetSpec()
        self.real_node = real_node or RealNodeSpec.from_env()

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

    @property
    def pki(self) -> Pki:
        return Pki(self.dir / "pki")

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
        st = self.state()
        return f"https://{st.node.api_host}:{st.ports.apiserver}"

    # ---- the real node ---------------------------------------------------------------------------------
    def node(self, st: State | None = None) -> RealNode | None:
        """The real node, when this cluster runs one."""
        st = st or self.state()
        if not st.node.enabled or st.node.slot is None:
            return None
        return RealNode(self.dir, self.tc, network.NodeNetwork(st.node.slot, self.dir / "node" / "ns"), self.real_node)

    def has_real_node(self) -> bool:
        return self.node() is not None

    def _components(self, st: State) -> tuple[str, ...]:
        return COMPONENTS + (NODE_COMPONENTS if st.node.enabled else ())

    def _plan_node(self, st: State) -> None:
        """Decide whether this ``up`` runs a real node, and on which network slot."""
        if not self.real_node.enabled:
            st.node = NodeState(reason=f"turned off ({ENV_SWITCH}=0)")
            return
        missing = host.missing_for_real_node()
        longest = self.dir / "node" / "kubelet" / "device-plugins" / "kubelet.sock"
        if len(str(longest).encode()) > MAX_SOCKET_PATH:
            missing.append(
                f"a shorter cluster directory: the kubelet's sockets under {self.dir} would pass the "
                f"{MAX_SOCKET_PATH}-byte limit of a unix socket path"
            )
        if missing:
            st.node = NodeState(reason="this machine cannot run a real node: " + "; ".join(missing))
            _log(f"no real node, the KWOK fleet runs alone; {st.node.reason}")
            return
        slot = st.node.slot
        if slot is None or not st.node.enabled:
            slot = network.free_slot(set())
        st.node = NodeState(
            enabled=True,
            slot=slot,
            api_host=network.NodeNetwork(slot, self.dir / "node" / "ns").host_ip,
            sysctls_before=st.node.sysctls_before,
        )

    # ---- lifecycle ------------------------------------------------------------------------------------
    def running(self) -> dict[str, bool]:
        st = self.state()
        return {name: pid_alive(st.pids.get(name)) for name in self._components(st)}

    def healthy(self) -> bool:
        return all(self.running().values()) and self._apiserver_ready()

    def up(self, build_if_missing: bool = True, load_images: bool = True) -> DevCluster:
        """Start what is not running. ``load_images`` puts the project's images built by ``make images`` into the
        real node's containerd."""
        started = time.monotonic()
        if build_if_missing:
            build.ensure_built(node=self.real_node.enabled)
        elif not build.is_built(self.tc, node=self.real_node.enabled):
            raise DevClusterError("the control plane is not built; run `portalis devcluster up` once to build it")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        st = self.state()
        wanted_node = self.real_node.enabled and not host.missing_for_real_node()
        alive = {name: pid_alive(st.pids.get(name)) for name in self._components(st)}
        if (
            all(alive.values())
            and st.node.enabled == wanted_node
            and self._apiserver_ready()
            and self._nodes_ready()
            and (not st.node.enabled or self._real_node_ready())
        ):
            _log(f"already running (kubeconfig {self.kubeconfig})")
            return self
        data_layer_down = not alive["etcd"] or not alive["kube-apiserver"]
        if data_layer_down or st.node.enabled != wanted_node:
            # the ports and address of the data layer must be stable for the rest: a partial stack starts again
            self._stop_all(st)
            st = State(ports=st.ports, fleet=st.fleet, node=st.node)
            st.ports.allocate()
        st.ports.fill_missing()
        self._plan_node(st)
        node = self.node(st)
        if node is not None:
            network.up(node.net)
        st.save(self.state_file)
        self._write_pki(st)
        self._write_kubeconfig(st)
        st.fleet = asdict(self.fleet)
        for name in COMPONENTS:
            if pid_alive(st.pids.get(name)):
                continue
            self._start(name, st, controlplane.argv(name, self._layout(st)))
            st.save(self.state_file)
            if name == "kube-apiserver":
                self._wait(self._apiserver_ready, 90, "kube-apiserver /readyz")
                self._bootstrap()
        if alive["kube-apiserver"]:
            self._bootstrap()  # a repaired cluster may have lost its nodes or CRDs; applying is idempotent
        self._wait(self._nodes_ready, 60, "KWOK GPU nodes Ready")
        self._wait(self._kuberay_ready, 60, "KubeRay operator healthy")
        self._wait(self._dask_operator_ready, 60, "dask-kubernetes operator healthy")
        if node is not None:
            self._node_up(node, st, load_images)
        _log(f"up in {time.monotonic() - started:.1f}s; export KUBECONFIG={self.kubeconfig}")
        return self

    def _node_up(self, node: RealNode, st: State, load_images: bool) -> None:
        """containerd, the system images, the kubelet, fake GPUs on the Node, kube-proxy and CoreDNS."""
        if not st.node.sysctls_before:
            st.node.sysctls_before = host.read_sysctls(host.KERNEL_TUNABLES)
            st.save(self.state_file)
        node.write_config(self.server)
        node.make_cgroups()
        if not pid_alive(st.pids.get("containerd")):
            self._start("containerd", st, node.argv("containerd"), env=node.env())
            st.save(self.state_file)
        self._wait(lambda: node.ctr("version").returncode == 0, 60, "containerd serving its socket")
        node.load_system_images()
        if load_images:
            images.load_into(node)
        for name in ("kubelet", "kube-proxy"):
            if not pid_alive(st.pids.get(name)):
                self._start(name, st, node.argv(name), env=node.env())
                st.save(self.state_file)
        self._wait(self._real_node_registered, 90, f"the kubelet to register {NODE_NAME}")
        gpus = [{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": str(self.real_node.gpus)}]
        self.kubectl("patch", "node", NODE_NAME, "--subresource=status", "--type=json", "-p", json.dumps(gpus))
        self._wait(self._real_node_ready, 90, f"{NODE_NAME} Ready with nvidia.com/gpu allocatable")
        objects = build_coredns(COREDNS_IMAGE, NODE_SELECTOR, TOLERATIONS)
        self._apply("-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
        self.kubectl("rollout", "status", "-n", "kube-system", "deployment/coredns", "--timeout=120s", timeout=150)
        _log(f"real node {NODE_NAME} Ready (containerd, {self.real_node.gpus} nvidia.com/gpu, kube-proxy, CoreDNS)")

    def restart(self, name: str) -> None:
        """Stop and start one component (chaos tests restart the kube-apiserver this way)."""
        st = self.state()
        self._stop_pid(name, st.pids.get(name))
        node = self.node(st)
        if name in NODE_COMPONENTS and node is not None:
            self._start(name, st, node.argv(name), env=node.env())
        else:
            self._start(name, st, controlplane.argv(name, self._layout(st)))
        st.save(self.state_file)
        if name == "kube-apiserver":
            self._wait(self._apiserver_ready, 90, "kube-apiserver /readyz")

    def down(self, purge: bool = True) -> None:
        st = self.state()
        node = self.node(st)
        if node is not None:
            node.stop(st.pids, self._stop_pid)
        self._stop_all(st)
        if node is not None:
            network.down(node.net)
            host.write_sysctls(st.node.sysctls_before)
            st.node.sysctls_before = {}
        if purge:
            for sub in ("etcd-data", "node/kubelet", "node/state", "node/pod-logs", "node/cni/ipam"):
                path = self.dir / sub
                if path.exists():
                    shutil.rmtree(path, ignore_errors=True)
        st.pids = {}
        if self.dir.exists():
            st.save(self.state_file)
        _log("down")

    # ---- internals ------------------------------------------------------------------------------------
    def _layout(self, st: State) -> controlplane.Layout:
        return controlplane.Layout(self.tc, self.dir, self.kubeconfig, st.ports, st.node.api_host)

    def _stop_all(self, st: State) -> None:
        for name in reversed(self._components(st)):
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

    def _start(self, name: str, st: State, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child process
        if env is None:
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

    def _write_pki(self, st: State) -> None:
        pki = self.pki
        pki.ensure_service_account_key()
        pki.ensure(apiserver_cert(st.node.api_host, network.KUBERNETES_SERVICE_IP))
        pki.ensure(APISERVER_KUBELET_CLIENT)
        pki.ensure(KWOK_SERVING)
        (pki.dir / "tokens.csv").write_text(f'{ADMIN_TOKEN},admin,admin,"system:masters"\n')

    def _write_kubeconfig(self, st: State) -> None:
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "portalis-dev",
                    "cluster": {
                        "server": f"https://{st.node.api_host}:{st.ports.apiserver}",
                        "certificate-authority": str(self.pki.ca_cert),
                    },
                }
            ],
            "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}}],
            "contexts": [{"name": "portalis-dev", "context": {"cluster": "portalis-dev", "user": "admin"}}],
            "current-context": "portalis-dev",
        }
        self.kubeconfig.write_text(json.dumps(cfg, indent=2))
        self.kubeconfig.chmod(0o600)

    def _get(self, url: str, token: str | None = ADMIN_TOKEN, timeout: float = 2) -> tuple[int, str]:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert)) if url.startswith("https") else None
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")
        except (OSError, ValueError):
            return 0, ""

    def _apiserver_ready(self) -> bool:
        st = self.state()
        return bool(st.ports.apiserver) and self._get(f"{self.server}/readyz")[0] == 200

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

    def _apply(self, *paths_or_stdin: str, input: str | None = None) -> None:
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=portalis-devcluster",
            *paths_or_stdin,
            input=input,
        )

    def _bootstrap(self) -> None:
        """Objects every run needs: the fake GPU fleet and KubeRay's CRDs (idempotent server-side apply)."""
        nodes = build_nodes(self.fleet)
        self._apply("-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes}))
        self._apply("-f", str(self.tc.ray_crds))
        self._apply("-f", str(dask_crd_dir()))
        self.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/rayclusters.ray.io",
            "crd/rayjobs.ray.io",
            "crd/daskclusters.kubernetes.dask.org",
        )

    def _nodes(self) -> dict[str, dict[str, Any]]:
        proc = self.kubectl("get", "nodes", "-o", "json", check=False)
        if proc.returncode != 0:
            return {}
        return {i["metadata"]["name"]: i for i in json.loads(proc.stdout)["items"]}

    @staticmethod
    def _ready(node: dict[str, Any]) -> bool:
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _nodes_ready(self) -> bool:
        nodes = self._nodes()
        want = {n["metadata"]["name"] for n in build_nodes(self.fleet)}
        return all(name in nodes and self._ready(nodes[name]) for name in want)

    def _real_node_registered(self) -> bool:
        return NODE_NAME in self._nodes()

    def _real_node_ready(self) -> bool:
        node = self._nodes().get(NODE_NAME)
        if node is None or not self._ready(node):
            return False
        return bool(node["status"].get("allocatable", {}).get("nvidia.com/gpu"))

    def _kuberay_ready(self) -> bool:
        port = self.state().ports.kuberay_probe
        return self._get(f"http://127.0.0.1:{port}/readyz", token=None)[0] == 200

    def _dask_operator_ready(self) -> bool:
        port = self.state().ports.dask_operator
        return self._get(f"http://127.0.0.1:{port}/healthz", token=None)[0] == 200

    def describe(self) -> Iterable[str]:
        st = self.state()
        for name in self._components(st):
            pid = st.pids.get(name)
            yield f"{name:<26} {'running' if pid_alive(pid) else 'stopped':<8} pid={pid or '-'}"
        yield f"{'kube-apiserver /readyz':<26} {'ok' if self._apiserver_ready() else 'down'}"
        if st.node.enabled:
            node = self._nodes().get(NODE_NAME, {})
            status = node.get("status", {})
            runtime = status.get("nodeInfo", {}).get("containerRuntimeVersion", "-")
            gpus = status.get("allocatable", {}).get("nvidia.com/gpu", "0")
            ready = "Ready" if node and self._ready(node) else "NotReady"
            ip = network.NodeNetwork(st.node.slot or 0, self.dir / "node" / "ns").node_ip
            yield f"{'real node ' + NODE_NAME:<26} {ready:<8} {runtime}, nvidia.com/gpu={gpus}, InternalIP {ip}"
        else:
            yield f"{'real node':<26} none     {st.node.reason or 'not started'}"
        yield f"kubeconfig                 {self.kubeconfig}"
