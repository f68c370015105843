"""What the machine must have to run a real node, and what of the machine a real node may change.

``missing_for_real_node`` lists, in words a person can act on, everything a real node needs that this machine
lacks (root, overlayfs, namespaces, cgroups, runc, the CNI plugins, iptables); the local cluster then runs the
KWOK fleet alone and says why. ``KERNEL_TUNABLES`` are the host-wide sysctls the kubelet sets on start; they are
read before the node starts and written back when it stops. ``snapshot`` records the parts of the machine a node
could leave changed (links, addresses, routes, the host's iptables rules, mounts, cgroups, sysctls) so a test can
compare the machine before ``up`` and after ``down``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

CNI_DIR = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_CONTROLLERS = ("cpu", "cpuacct", "memory", "pids", "cpuset", "devices", "freezer", "blkio")

# the host-wide sysctls the kubelet's container manager sets (setupKernelTunables); net.* keys are per namespace
KERNEL_TUNABLES = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
# sysctls the snapshot compares: the kubelet's, and the per-namespace ones the node sets in its own namespace
SNAPSHOT_SYSCTLS = (
    *KERNEL_TUNABLES,
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
)
DEBIAN_PACKAGES = "runc containernetworking-plugins iptables"


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read_sysctls(keys: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for key in keys:
        try:
            out[key] = _sysctl_path(key).read_text().strip()
        except OSError:
            continue
    return out


def write_sysctls(values: dict[str, str]) -> None:
    for key, value in values.items():
        path = _sysctl_path(key)
        try:
            if path.read_text().strip() != value:
                path.write_text(value + "\n")
        except OSError:
            continue


def _cgroup_v1_controllers() -> set[str]:
    mounted = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            _pre, _, post = line.partition(" - ")
            fields = post.split()
            if fields and fields[0] == "cgroup":
                mounted.update(fields[2].split(",") if len(fields) > 2 else [])
    return mounted


def missing_for_real_node() -> list[str]:
    """What this machine lacks to run a real node; empty when it can run one."""
    missing: list[str] = []
    if os.geteuid() != 0:
        missing.append("root: containerd, the kubelet and the node's namespaces need uid 0 (run as root)")
    try:
        filesystems = Path("/proc/filesystems").read_text()
    except OSError:
        filesystems = ""
    if "overlay" not in filesystems:
        missing.append("overlayfs: the kernel lists no `overlay` filesystem (modprobe overlay)")
    for ns in ("net", "mnt", "pid", "ipc", "uts"):
        if not Path(f"/proc/self/ns/{ns}").exists():
            missing.append(f"namespaces: the kernel has no {ns} namespaces")
    controllers = _cgroup_v1_controllers()
    unified = (CGROUP_ROOT / "cgroup.controllers").exists()
    if not unified:
        lacking = [c for c in ("cpu", "memory", "pids") if c not in controllers]
        if lacking:
            missing.append(f"cgroups: no cgroup hierarchy for {', '.join(lacking)} under {CGROUP_ROOT}")
    for tool, package in (
        ("runc", "runc"),
        ("iptables", "iptables"),
        ("nsenter", "util-linux"),
        ("unshare", "util-linux"),
        ("ip", "iproute2"),
    ):
        if shutil.which(tool) is None:
            missing.append(f"{tool}: not installed (Debian package {package})")
    lacking_cni = [p for p in CNI_PLUGINS if not (CNI_DIR / p).exists()]
    if lacking_cni:
        missing.append(
            f"CNI plugins: {', '.join(lacking_cni)} not in {CNI_DIR} (Debian package containernetworking-plugins)"
        )
    return missing


def _lines(cmd: list[str]) -> list[str]:
    if shutil.which(cmd[0]) is None:
        return []
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc.stdout.splitlines()


def _iptables_rules() -> list[str]:
    """The host's iptables rules and chains, without packet counters."""
    out = []
    for tool in ("iptables-save", "ip6tables-save"):
        for line in _lines([tool]):
            if line.startswith("#"):
                continue
            if line.startswith(":"):
                line = line.split(" [", 1)[0]  # ":CHAIN POLICY [packets:bytes]"
            out.append(f"{tool}: {line}")
    return out


def _mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return sorted(" ".join(line.split()[3:5]) for line in f)


def _cgroups() -> list[str]:
    """Every cgroup directory up to three levels down: what a kubelet would add under the hierarchies."""
    out = []
    for base in sorted(CGROUP_ROOT.iterdir()) if CGROUP_ROOT.exists() else []:
        for dirpath, dirnames, _files in os.walk(base):
            depth = Path(dirpath).relative_to(base).parts
            if len(depth) >= 3:
                dirnames[:] = []
            out.append(dirpath)
    return sorted(out)


def snapshot() -> dict[str, list[str]]:
    """The parts of the machine a real node could change, each as sorted lines."""
    return {
        "links": sorted(line.split(":", 2)[1].strip().split("@")[0] for line in _lines(["ip", "-o", "link"])),
        "addresses": sorted(" ".join(line.split()[1:4]) for line in _lines(["ip", "-o", "addr"])),
        "routes": sorted(_lines(["ip", "route"])),
        "iptables": _iptables_rules(),
        "mounts": _mounts(),
        "cgroups": _cgroups(),
        "sysctls": [f"{k}={v}" for k, v in sorted(read_sysctls(SNAPSHOT_SYSCTLS).items())],
        "netns": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else [],
    }


def cgroup_mounts() -> list[Path]:
    """Every cgroup hierarchy mounted on this machine (v1 controllers, named hierarchies, the unified one)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = line.partition(" - ")[2].split()[:1]
            if fstype and fstype[0] in ("cgroup", "cgroup2"):
                out.append(Path(fields[4]))
    return sorted(set(out))


def make_cgroup(name: str) -> None:
    """``/<name>`` in every hierarchy: the kubelet's cgroupRoot must exist before it starts."""
    for mount in cgroup_mounts():
        path = mount / name
        path.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):  # a new cpuset has none until given its parent's
            parent, child = mount / knob, path / knob
            if parent.exists() and child.exists() and not child.read_text().strip():
                child.write_text(parent.read_text())


def _cgroup_dirs(name: str) -> list[Path]:
    """The cgroup ``/<name>`` and everything under it in every hierarchy, deepest first."""
    dirs: list[Path] = []
    for mount in cgroup_mounts():
        root = mount / name
        if root.is_dir():
            dirs.extend(Path(p) for p, _d, _f in os.walk(root))
    return sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def kill_cgroup(name: str, timeout: float = 15) -> None:
    """SIGKILL every process in ``/<name>`` and below until none is left (frozen first so none can fork)."""
    deadline = time.monotonic() + timeout
    while True:
        pids: set[int] = set()
        for d in _cgroup_dirs(name):
            try:
                pids.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except OSError:
                continue
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {sorted(pids)} in cgroup /{name} did not die in {timeout:.0f}s")
        time.sleep(0.1)


def remove_cgroup(name: str) -> None:
    """Remove ``/<name>`` and every cgroup under it, in every hierarchy (they must be empty of processes)."""
    for d in _cgroup_dirs(name):
        with contextlib.suppress(FileNotFoundError):
            d.rmdir()
