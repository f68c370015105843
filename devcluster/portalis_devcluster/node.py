"""The real node of the local cluster: containerd, runc, CNI, a kubelet and kube-proxy running real containers.

It sits beside the KWOK fleet as one more Node, ``gpu-real-0``, with fake GPUs (``nvidia.com/gpu`` as an extended
resource, as the NVIDIA device plugin would advertise them) and the labels GPU Feature Discovery puts on a GPU
node. It is tainted ``devcluster.portalis.dev/node=real:NoSchedule`` so that only pods meant to run for real (they
tolerate the taint and select the label) land there; everything else keeps going to KWOK nodes.

The node's processes run in namespaces of their own (``network.py``): containerd with its CRI plugin and runc,
the CNI bridge and host-local plugins, a kubelet with x509 client and serving certificates signed by the cluster's CA,
webhook authentication and authorization (no anonymous access), kube-proxy in iptables mode, and CoreDNS as a
Deployment from an image of the CoreDNS binary built here. The kubelet's pods live in cgroups under
``/portalis-node-<slot>`` in every hierarchy, so stopping the node can find and remove all of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from portalis_devcluster import build, host, oci
from portalis_devcluster.network import CLUSTER_DOMAIN, DNS_SERVICE_IP, NodeNetwork, processes_in_mount_ns
from portalis_devcluster.nodes import FLEET_LABEL, GPU_PRODUCTS
from portalis_devcluster.pki import KUBE_PROXY_CLIENT, Pki, kubelet_client_cert, kubelet_serving_cert

NODE_NAME = "gpu-real-0"
NODE_LABEL = "devcluster.portalis.dev/node"  # value "real"; also the taint's key
PAUSE_IMAGE = f"localhost/portalis/pause:{build.PAUSE_VERSION}"
COREDNS_IMAGE = f"localhost/portalis/coredns:{build.COREDNS_VERSION.lstrip('v')}"
NODE_COMPONENTS = ("containerd", "kubelet", "kube-proxy")
RUN_ROOT = Path("/run/portalis")
ENV_SWITCH = "PORTALIS_DEVCLUSTER_REAL_NODE"
ENV_GPUS = "PORTALIS_DEVCLUSTER_REAL_NODE_GPUS"


@dataclass(frozen=True)
class RealNodeSpec:
    """Whether the cluster gets a real node, and the fake GPUs it advertises."""

    enabled: bool = True
    gpus: int = 4
    gpu_type: str = "H100"

    @classmethod
    def from_env(cls) -> RealNodeSpec:
        enabled = os.environ.get(ENV_SWITCH, "1").lower() not in ("0", "false", "no", "off")
        return cls(enabled=enabled, gpus=int(os.environ.get(ENV_GPUS, "4")))


def node_labels(spec: RealNodeSpec) -> dict[str, str]:
    """What GPU Feature Discovery and the cloud would label a GPU node with, plus the devcluster's own labels."""
    product, memory, instance = GPU_PRODUCTS[spec.gpu_type]
    return {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": str(spec.gpus),
        "nvidia.com/gpu.memory": memory,
        "nvidia.com/gpu.family": "hopper" if spec.gpu_type == "H100" else "ampere",
        "node.kubernetes.io/instance-type": instance,
        "karpenter.sh/capacity-type": "on-demand",
        "topology.kubernetes.io/zone": "local-real",
        FLEET_LABEL: "true",
        NODE_LABEL: "real",
    }


TAINT = {"key": NODE_LABEL, "value": "real", "effect": "NoSchedule"}
# what a pod needs to land on the real node
TOLERATIONS = [{"key": NODE_LABEL, "operator": "Equal", "value": "real", "effect": "NoSchedule"}]
NODE_SELECTOR = {NODE_LABEL: "real"}


class RealNode:
    """Paths, configuration files and command lines of the real node; ``DevCluster`` starts and stops it."""

    def __init__(
        self, cluster_dir: Path, tc: build.Toolchain, net: NodeNetwork, spec: RealNodeSpec, run_root: Path = RUN_ROOT
    ) -> None:
        self.dir = cluster_dir / "node"
        self.tc = tc
        self.net = net
        self.spec = spec
        self.pki = Pki(cluster_dir / "pki")
        self.run_root = run_root

    # ---- paths -----------------------------------------------------------------------------------------------
    @property
    def containerd_root(self) -> Path:
        """Images and snapshots: kept across ``down`` so a warm ``up`` does not import the images again."""
        return self.dir / "containerd-root"

    @property
    def run_dir(self) -> Path:
        """containerd's sockets: a unix socket path holds 107 bytes, so they live under /run, not the cluster dir."""
        digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:12]
        return self.run_root / digest

    @property
    def socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.dir / "kubelet"

    @property
    def cgroup_name(self) -> str:
        return f"portalis-node-{self.net.slot}"

    def kubeconfig(self, who: str) -> Path:
        return self.dir / f"{who}.kubeconfig"

    # ---- configuration ---------------------------------------------------------------------------------------
    def write_config(self, server: str) -> None:
        """Certificates, kubeconfigs, and the configuration files of containerd, CNI, the kubelet and kube-proxy."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("state", "cni/net.d", "cni/ipam", "pod-logs", "opt", "kubelet"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.containerd_root.mkdir(parents=True, exist_ok=True)
        self.pki.ensure(kubelet_client_cert(NODE_NAME))
        self.pki.ensure(kubelet_serving_cert(NODE_NAME, self.net.node_ip))
        self.pki.ensure(KUBE_PROXY_CLIENT)
        self._write_kubeconfig("kubelet", server, "kubelet-client")
        self._write_kubeconfig("kube-proxy", server, "kube-proxy")
        (self.dir / "containerd.toml").write_text(self._containerd_toml())
        (self.dir / "cni" / "net.d" / "10-portalis.conflist").write_text(json.dumps(self._cni_conflist(), indent=2))
        # pods resolve cluster names only: no upstream resolver, nothing leaves the machine
        (self.dir / "resolv.conf").write_text("# pods of the local cluster have no upstream resolver\n")
        (self.dir / "kubelet.yaml").write_text(yaml.safe_dump(self._kubelet_config(), sort_keys=False))
        (self.dir / "kube-proxy.yaml").write_text(yaml.safe_dump(self._kube_proxy_config(), sort_keys=False))

    def _write_kubeconfig(self, who: str, server: str, cert: str) -> None:
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "local", "cluster": {"server": server, "certificate-authority": str(self.pki.ca_cert)}}
            ],
            "users": [
                {
                    "name": who,
                    "user": {"client-certificate": str(self.pki.cert(cert)), "client-key": str(self.pki.key(cert))},
                }
            ],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": who}}],
            "current-context": "local",
        }
        path = self.kubeconfig(who)
        path.write_text(json.dumps(cfg, indent=2))
        path.chmod(0o600)

    def _containerd_toml(self) -> str:
        d = self.dir
        return f"""version = 3
root = '{self.containerd_root}'
state = '{d / "state"}'
imports = []
# restrict_oom_score_adj: root here may lack CAP_SYS_RESOURCE, so containers may not lower their OOM score
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.internal.v1.tracing',
                    'io.containerd.snapshotter.v1.btrfs', 'io.containerd.snapshotter.v1.zfs',
                    'io.containerd.snapshotter.v1.devmapper', 'io.containerd.snapshotter.v1.erofs']

[grpc]
  address = '{self.socket}'

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{PAUSE_IMAGE}'

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_cdi = false
  enable_criu = false
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['{host.CNI_DIR}']
    conf_dir = '{d / "cni" / "net.d"}'

[plugins.'io.containerd.internal.v1.opt']
  path = '{d / "opt"}'
"""

    def _cni_conflist(self) -> dict[str, Any]:
        net = self.net
        return {
            "cniVersion": "1.0.0",
            "name": "portalis",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": net.bridge,
                    "isGateway": True,
                    "ipMasq": False,  # the pods' packets never leave the machine, so nothing to masquerade
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": str(net.pod_cidr), "gateway": net.pod_gateway}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.dir / "cni" / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }

    def _kubelet_config(self) -> dict[str, Any]:
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": "0.0.0.0",  # the node's own namespace: its veth, its bridge and loopback
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True, "cacheTTL": "2m0s"},
                "x509": {"clientCAFile": str(self.pki.ca_cert)},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(self.pki.cert("kubelet-serving")),
            "tlsPrivateKeyFile": str(self.pki.key("kubelet-serving")),
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{self.cgroup_name}",
            "cgroupsPerQOS": True,
            "failCgroupV1": False,
            "failSwapOn": False,
            "clusterDNS": [DNS_SERVICE_IP],
            "clusterDomain": CLUSTER_DOMAIN,
            "resolvConf": str(self.dir / "resolv.conf"),
            "podLogsDir": str(self.dir / "pod-logs"),
            "registerWithTaints": [TAINT],
            "maxPods": 110,
            "serializeImagePulls": False,
            # images come from `make images`, not a registry: never collect them
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "200Mi",
                "nodefs.available": "1%",
                "nodefs.inodesFree": "1%",
                "imagefs.available": "1%",
            },
            "nodeStatusReportFrequency": "10s",
            "nodeStatusUpdateFrequency": "10s",
            "shutdownGracePeriod": "0s",
            "logging": {"format": "text", "verbosity": 1},
        }

    def _kube_proxy_config(self) -> dict[str, Any]:
        return {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.kubeconfig("kube-proxy"))},
            "mode": "iptables",
            "clusterCIDR": str(self.net.pod_cidr),
            "hostnameOverride": NODE_NAME,
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            # host-wide conntrack settings are left as they are
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            "iptables": {"localhostNodePorts": False},
        }

    # ---- command lines ---------------------------------------------------------------------------------------
    def argv(self, name: str) -> list[str]:
        enter = self.net.enter()
        if name == "containerd":
            return [*enter, str(self.tc.containerd_dir / "containerd"), "--config", str(self.dir / "containerd.toml")]
        if name == "kubelet":
            labels = ",".join(f"{k}={v}" for k, v in sorted(node_labels(self.spec).items()))
            return [
                *enter,
                str(self.tc.node_dir / "kubelet"),
                f"--config={self.dir / 'kubelet.yaml'}",
                f"--kubeconfig={self.kubeconfig('kubelet')}",
                f"--root-dir={self.kubelet_root}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={self.net.node_ip}",
                f"--node-labels={labels}",
                "--v=1",
            ]
        if name == "kube-proxy":
            return [*enter, str(self.tc.node_dir / "kube-proxy"), f"--config={self.dir / 'kube-proxy.yaml'}", "--v=1"]
        raise KeyError(name)

    def env(self) -> dict[str, str]:
        """containerd finds the shim and runc on PATH."""
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([str(self.tc.containerd_dir), "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        return env

    # ---- images ----------------------------------------------------------------------------------------------
    def ctr(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.tc.containerd_dir / "ctr"), "--address", str(self.socket), "--namespace", "k8s.io", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env())

    def image_refs(self) -> set[str]:
        proc = self.ctr("images", "list", "--quiet")
        return set(proc.stdout.split()) if proc.returncode == 0 else set()

    def image_label(self, ref: str, key: str) -> str | None:
        """A label of an image in the node's containerd (``None`` when the image or the label is not there)."""
        proc = self.ctr("images", "list", f"name=={ref}")
        for line in proc.stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == ref:
                labels = dict(kv.split("=", 1) for kv in fields[-1].split(",") if "=" in kv)
                return labels.get(key)
        return None

    def remove_images_except(self, keep: Iterable[str]) -> None:
        """Remove older builds of the images in ``keep`` (same repository, another tag) from the node."""
        wanted = set(keep)
        repositories = {ref.rsplit(":", 1)[0] for ref in wanted}
        stale = [r for r in self.image_refs() if r.rsplit(":", 1)[0] in repositories and r not in wanted]
        if stale:
            self.ctr("images", "remove", *stale)

    def import_image(self, archive: Path, ref: str, labels: dict[str, str] | None = None) -> None:
        """Load an OCI archive into the node's containerd, where the kubelet finds it without a pull."""
        proc = self.ctr("images", "import", str(archive), timeout=600)
        if proc.returncode != 0 or ref not in self.image_refs():
            raise RuntimeError(f"importing {archive} ({ref}) into the node failed: {proc.stderr.strip()[-2000:]}")
        if labels:
            self.ctr("images", "label", ref, *(f"{k}={v}" for k, v in labels.items()))

    def system_images(self) -> list[tuple[Path, str]]:
        """The pause and CoreDNS images, written from the static binaries (cached by their content)."""
        cache = self.tc.root / "images"
        out = []
        pause = oci.ScratchImage(
            PAUSE_IMAGE,
            (oci.ImageFile("pause", (self.tc.node_dir / "pause").read_bytes()),),
            ("/pause",),
            user="65535:65535",
        )
        coredns = oci.ScratchImage(
            COREDNS_IMAGE,
            (oci.ImageFile("coredns", self.tc.coredns.read_bytes()),),
            ("/coredns",),
            user="65532:65532",
        )
        for image in (pause, coredns):
            archive = cache / (image.ref.rsplit("/", 1)[1].replace(":", "-") + ".oci.tar")
            if not archive.exists():
                oci.write_archive(image, archive)
            out.append((archive, image.ref))
        return out

    def load_system_images(self) -> None:
        present = self.image_refs()
        for archive, ref in self.system_images():
            if ref not in present:
                self.import_image(archive, ref)

    # ---- cgroups and shutdown --------------------------------------------------------------------------------
    def make_cgroups(self) -> None:
        host.make_cgroup(self.cgroup_name)

    def stop(self, pids: dict[str, int], stop_pid: Callable[[str, int | None], None]) -> None:
        """Stop the kubelet and kube-proxy, kill every container, then containerd and its shims, and remove the
        pods' cgroups. Nothing the node started is left running."""
        for name in ("kubelet", "kube-proxy"):
            stop_pid(name, pids.pop(name, None))
        host.kill_cgroup(self.cgroup_name)
        stop_pid("containerd", pids.pop("containerd", None))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = processes_in_mount_ns(self.net)
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        host.kill_cgroup(self.cgroup_name)
        host.remove_cgroup(self.cgroup_name)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.run_root.rmdir()  # only when no other cluster's node runs
