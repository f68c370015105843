"""The real node's namespaces: a network namespace and a mount namespace of its own, joined to the host by a veth.

The node's processes (containerd, its shims, the kubelet, kube-proxy) run in both. The pod bridge, the routes, the
iptables rules that kube-proxy and the kubelet write and the per-namespace sysctls they set live in the network
namespace and go with it; the overlay, tmpfs and bind mounts of containers and volumes live in the mount
namespace and go with it. The host keeps only the veth's host end and a route to the pods through it, and the one
private bind mount that holds the namespace files (``<node dir>/ns``). Nothing routes off the machine: the node's
namespace has no default route, the pods' only way out is the veth to the host, and the host neither forwards nor
masquerades their packets.

Addresses of slot ``s`` (one slot per local cluster with a real node, so two clusters on one machine do not meet)::

    host end of the veth   ptl<s>h    10.243.<s>.1/30   the API server binds here
    node end of the veth   eth0       10.243.<s>.2/30   the node's InternalIP
    pod bridge             cni0       10.244.<100+s>.1/24, pods .2 and up
    Services               10.96.0.0/16 (kube-proxy in the node's namespace), cluster DNS 10.96.0.10
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MAX_SLOTS = 64
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"


class NetworkError(RuntimeError):
    """A step of setting up the node's namespaces failed; the message names the command."""


@dataclass(frozen=True)
class NodeNetwork:
    """The addresses and names of one slot, and where its namespace files are kept."""

    slot: int
    ns_dir: Path

    node_if = "eth0"
    bridge = "cni0"

    @property
    def host_if(self) -> str:
        return f"ptl{self.slot}h"

    @property
    def net_ns(self) -> Path:
        return self.ns_dir / "net"

    @property
    def mount_ns(self) -> Path:
        return self.ns_dir / "mnt"

    @property
    def transit(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"10.243.{self.slot}.0/30")

    @property
    def host_ip(self) -> str:
        return str(self.transit.network_address + 1)

    @property
    def node_ip(self) -> str:
        return str(self.transit.network_address + 2)

    @property
    def pod_cidr(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"10.244.{100 + self.slot}.0/24")

    @property
    def pod_gateway(self) -> str:
        return str(self.pod_cidr.network_address + 1)

    def enter(self) -> list[str]:
        """The command prefix that runs a program in the node's network and mount namespaces."""
        nsenter = shutil.which("nsenter") or "nsenter"
        return [nsenter, f"--net={self.net_ns}", f"--mount={self.mount_ns}", "--"]

    def enter_net(self) -> list[str]:
        """The prefix for a program that needs only the node's network namespace (ip, sysctls)."""
        nsenter = shutil.which("nsenter") or "nsenter"
        return [nsenter, f"--net={self.net_ns}", "--"]


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NetworkError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()}")
    return proc


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def is_mountpoint(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


def free_slot(taken: set[int]) -> int:
    """The lowest slot whose host interface is not there and that no other local cluster holds."""
    for slot in range(MAX_SLOTS):
        if slot not in taken and not link_exists(f"ptl{slot}h"):
            return slot
    raise NetworkError(f"all {MAX_SLOTS} real-node network slots are in use on this machine")


def _netns_sysctl(net: NodeNetwork, key: str, value: str) -> None:
    """Set a per-namespace sysctl in the node's network namespace (the host's stays as it is)."""
    path = "/proc/sys/" + key.replace(".", "/")
    _run([*net.enter_net(), "sh", "-c", f"echo {value} > {path}"])


def up(net: NodeNetwork) -> None:
    """Create the namespaces, the veth pair and the routes; idempotent, and all or nothing."""
    if is_mountpoint(net.net_ns) and is_mountpoint(net.mount_ns) and link_exists(net.host_if):
        return
    down(net)
    try:
        net.ns_dir.mkdir(parents=True, exist_ok=True)
        # namespace files can be bind-mounted only on a private mount
        _run(["mount", "--bind", str(net.ns_dir), str(net.ns_dir)])
        _run(["mount", "--make-private", str(net.ns_dir)])
        net.net_ns.touch()
        net.mount_ns.touch()
        _run(["unshare", f"--net={net.net_ns}", "true"])
        # slave: the host's mounts show in the node, the node's never on the host
        _run(["unshare", f"--mount={net.mount_ns}", "--propagation", "slave", "true"])
        ip = [*net.enter_net(), "ip"]
        # made inside the node; its peer goes to the host's namespace (that of pid 1)
        _run([*ip, "link", "add", net.node_if, "type", "veth", "peer", "name", net.host_if, "netns", "1"])
        _run([*ip, "addr", "add", f"{net.node_ip}/{net.transit.prefixlen}", "dev", net.node_if])
        _run([*ip, "link", "set", net.node_if, "up"])
        _run([*ip, "link", "set", "lo", "up"])
        _run(["ip", "addr", "add", f"{net.host_ip}/{net.transit.prefixlen}", "dev", net.host_if])
        _run(["ip", "link", "set", net.host_if, "up"])
        # the host reaches the pods through the node; nothing else goes there
        _run(["ip", "route", "add", str(net.pod_cidr), "via", net.node_ip, "dev", net.host_if])
        # the node forwards between the veth and the pod bridge; bridged pod traffic passes kube-proxy's rules
        _netns_sysctl(net, "net.ipv4.ip_forward", "1")
        _netns_sysctl(net, "net.bridge.bridge-nf-call-iptables", "1")
    except (NetworkError, OSError):
        down(net)
        raise


def down(net: NodeNetwork) -> None:
    """Remove the host end of the veth (its peer and route go with it) and release the namespace files: once no
    process is left in them, the namespaces and everything in them are gone. Safe on a machine that has none of it.
    """
    if link_exists(net.host_if):
        _run(["ip", "link", "del", net.host_if], check=False)
    for path in (net.mount_ns, net.net_ns):
        if is_mountpoint(path):
            _run(["umount", str(path)], check=False)
    if is_mountpoint(net.ns_dir):
        _run(["umount", str(net.ns_dir)], check=False)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(net.ns_dir)


def processes_in_mount_ns(net: NodeNetwork) -> list[int]:
    """Pids of the processes in the node's mount namespace (containerd, its shims, the kubelet, kube-proxy)."""
    try:
        target = os.stat(net.mount_ns)
    except OSError:
        return []
    if not is_mountpoint(net.mount_ns):
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/mnt")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            found.append(int(entry))
    return found
