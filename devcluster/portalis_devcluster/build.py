"""Build the local control plane from Go modules once and cache it by version.

Part of the local GPU cluster (``portalis devcluster``): nothing here runs in production. Each component
is built into ``~/.cache/portalis/bin/<component>-<version>/`` and a ``.complete`` marker is written last, so
an interrupted build is redone and a finished one is never rebuilt. Progress is printed as each step starts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
KUBERAY_VERSION = "v1.6.1"
HELM_VERSION = "v3.21.4"
# the real node: containerd 2.x (its CRI speaks the RuntimeConfig call kubelet v1.34 asks for), CoreDNS, and the
# kubelet, kube-proxy and pause binaries of the same Kubernetes release as the control plane
CONTAINERD_VERSION = "v2.2.9"
COREDNS_VERSION = "v1.15.0"
PAUSE_VERSION = "3.10.1"
VERSITYGW_VERSION = "v1.8.0"

K8S_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
NODE_BINARIES = ("kubelet", "kube-proxy")
CONTAINERD_BINARIES = ("containerd", "containerd-shim-runc-v2", "ctr")


class BuildError(RuntimeError):
    """A component could not be built; the message says what to install or fix."""


def cache_root() -> Path:
    override = os.environ.get("PORTALIS_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "portalis"


@dataclass(frozen=True)
class Toolchain:
    """Where every built binary lives; paths only, nothing is checked here."""

    root: Path

    @property
    def k8s_dir(self) -> Path:
        return self.root / "bin" / f"kubernetes-{KUBERNETES_VERSION}"

    @property
    def etcd(self) -> Path:
        return self.root / "bin" / f"etcd-{ETCD_VERSION}" / "etcd"

    @property
    def kwok(self) -> Path:
        return self.root / "bin" / f"kwok-{KWOK_VERSION}" / "kwok"

    @property
    def kwok_stages(self) -> Path:
        return self.root / "bin" / f"kwok-{KWOK_VERSION}" / "stages"

    @property
    def ray_operator(self) -> Path:
        return self.root / "bin" / f"kuberay-{KUBERAY_VERSION}" / "ray-operator"

    @property
    def ray_crds(self) -> Path:
        return self.root / "bin" / f"kuberay-{KUBERAY_VERSION}" / "crds"

    @property
    def helm(self) -> Path:
        return self.root / "bin" / f"helm-{HELM_VERSION}" / "helm"

    @property
    def versitygw(self) -> Path:
        return self.root / "bin" / f"versitygw-{VERSITYGW_VERSION}" / "versitygw"

    def k8s(self, name: str) -> Path:
        return self.k8s_dir / name

    @property
    def kubectl(self) -> Path:
        return self.k8s("kubectl")

    @property
    def node_dir(self) -> Path:
        """kubelet, kube-proxy and the static pause binary of the real node."""
        return self.root / "bin" / f"node-{KUBERNETES_VERSION}"

    @property
    def containerd_dir(self) -> Path:
        return self.root / "bin" / f"containerd-{CONTAINERD_VERSION}"

    @property
    def coredns(self) -> Path:
        return self.root / "bin" / f"coredns-{COREDNS_VERSION}" / "coredns"


def toolchain() -> Toolchain:
    return Toolchain(cache_root())


def _log(msg: str) -> None:
    print(f"[devcluster build] {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def _go_env(gopath_bin: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["GOTOOLCHAIN"] = "local"
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOFLAGS", "-buildvcs=false")
    if gopath_bin is not None:
        env["GOBIN"] = str(gopath_bin)
    return env


def _run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    _log("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=cwd, env=env or _go_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        if "checksum" in tail and "sum.golang.org" in tail:
            tail += "\n(the Go checksum database could not be reached; checks were not disabled)"
        raise BuildError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


def require_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "Go is not installed: the local control plane is built from Go modules. Install Go >= 1.25 "
            "(Debian: apt-get install golang, or the official tarball) and make sure `go` is on PATH."
        )
    out = subprocess.run([go, "version"], capture_output=True, text=True, env=_go_env()).stdout
    m = re.search(r"go(\d+)\.(\d+)", out)
    if not m or (int(m.group(1)), int(m.group(2))) < (1, 25):
        raise BuildError(f"Go >= 1.25 is needed to build the control plane, found: {out.strip()}")
    return go


def _done(marker_dir: Path) -> bool:
    return (marker_dir / ".complete").exists()


def _mark(marker_dir: Path) -> None:
    (marker_dir / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def _module_dir(module: str, version: str) -> Path:
    out = _run(["go", "mod", "download", "-json", f"{module}@{version}"])
    return Path(json.loads(out)["Dir"])


def _wrapper(name: str, requires: dict[str, str], imports: list[str], replaces: dict[str, str]) -> Path:
    """A throwaway Go module that requires the upstream module, so its own replace lines are ignored."""
    src = cache_root() / "src" / name
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    _run(["go", "mod", "init", f"portalis.dev/build/{name}"], cwd=src)
    for mod, ver in requires.items():
        _run(["go", "mod", "edit", f"-require={mod}@{ver}"], cwd=src)
    if replaces:
        args = [f"-replace={mod}={mod}@{ver}" for mod, ver in replaces.items()]
        _run(["go", "mod", "edit", *args], cwd=src)
    body = "\n".join(f'\t_ "{imp}"' for imp in imports)
    (src / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{body}\n)\n")
    _run(["go", "mod", "tidy", "-e"], cwd=src)
    return src


def _k8s_staging_replaces() -> dict[str, str]:
    """``k8s.io/<staging module>`` -> its published version, read from the release's own go.mod."""
    gomod = Path(
        json.loads(_run(["go", "mod", "download", "-json", f"k8s.io/kubernetes@{KUBERNETES_VERSION}"]))["GoMod"]
    )
    staging = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", gomod.read_text(), flags=re.M)
    if not staging:
        raise BuildError(f"no staging replace lines found in {gomod}")
    minor = KUBERNETES_VERSION.lstrip("v").split(".")
    return dict.fromkeys(staging, f"v0.{minor[1]}.{minor[2]}")


def _k8s_ldflags() -> str:
    """Version stamps, so `/version` reports the release (Helm checks it against charts' kubeVersion)."""
    major, minor, _patch = KUBERNETES_VERSION.lstrip("v").split(".")
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={KUBERNETES_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=2026-01-01T00:00:00Z",
        ]
    return " ".join(flags)


def _build_k8s_binaries(name: str, binaries: tuple[str, ...], imports: list[str], out_dir: Path) -> None:
    src = _wrapper(name, {"k8s.io/kubernetes": KUBERNETES_VERSION}, imports, _k8s_staging_replaces())
    out_dir.mkdir(parents=True, exist_ok=True)
    for binary in binaries:
        _log(f"compiling {binary} (a cold build takes several minutes on 2 cores)")
        _run(
            [
                "go",
                "build",
                "-mod=mod",
                "-trimpath",
                "-tags",
                "selinux,notest",
                "-ldflags",
                _k8s_ldflags(),
                "-o",
                str(out_dir / binary),
                f"k8s.io/kubernetes/cmd/{binary}",
            ],
            cwd=src,
        )


def build_kubernetes(tc: Toolchain) -> None:
    out_dir = tc.k8s_dir
    if _done(out_dir):
        return
    _log(f"building Kubernetes {KUBERNETES_VERSION} (kube-apiserver, controller-manager, scheduler, kubectl)")
    # main packages cannot be imported; their app packages pull in the same dependency graph
    imports = [f"k8s.io/kubernetes/cmd/{b}/app" for b in K8S_BINARIES if b != "kubectl"] + ["k8s.io/kubectl/pkg/cmd"]
    _build_k8s_binaries(f"kubernetes-{KUBERNETES_VERSION}", K8S_BINARIES, imports, out_dir)
    _mark(out_dir)


def build_node(tc: Toolchain) -> None:
    """kubelet and kube-proxy (the same wrapper-module build as the control plane), and the pause binary that
    holds each pod's namespaces, compiled statically from the release's own ``build/pause/linux/pause.c``."""
    out_dir = tc.node_dir
    if _done(out_dir):
        return
    _log(f"building the real node's kubelet and kube-proxy {KUBERNETES_VERSION} and pause {PAUSE_VERSION}")
    imports = [f"k8s.io/kubernetes/cmd/{b}/app" for b in NODE_BINARIES]
    _build_k8s_binaries(f"node-{KUBERNETES_VERSION}", NODE_BINARIES, imports, out_dir)
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise BuildError("a C compiler is needed to build the pause binary: apt-get install gcc libc6-dev")
    pause_c = _module_dir("k8s.io/kubernetes", KUBERNETES_VERSION) / "build" / "pause" / "linux" / "pause.c"
    _run(
        [
            cc,
            "-Os",
            "-Wall",
            "-static",
            f"-DVERSION=v{PAUSE_VERSION}-portalis",
            "-o",
            str(out_dir / "pause"),
            str(pause_c),
        ]
    )
    if shutil.which("strip"):
        _run(["strip", str(out_dir / "pause")])
    _mark(out_dir)


def build_containerd(tc: Toolchain) -> None:
    out_dir = tc.containerd_dir
    if _done(out_dir):
        return
    _log(f"building containerd {CONTAINERD_VERSION}")
    out_dir.mkdir(parents=True, exist_ok=True)
    module = "github.com/containerd/containerd/v2"
    pkgs = [f"{module}/cmd/{b}@{CONTAINERD_VERSION}" for b in CONTAINERD_BINARIES]
    # no_btrfs: the btrfs snapshotter needs C headers; the node uses overlayfs
    _run(["go", "install", "-trimpath", "-tags", "no_btrfs", "-ldflags", "-s -w", *pkgs], env=_go_env(out_dir))
    _mark(out_dir)


def build_coredns(tc: Toolchain) -> None:
    out_dir = tc.coredns.parent
    if _done(out_dir):
        return
    _log(f"building CoreDNS {COREDNS_VERSION}")
    out_dir.mkdir(parents=True, exist_ok=True)
    module = "github.com/coredns/coredns"
    src = _wrapper(f"coredns-{COREDNS_VERSION}", {module: COREDNS_VERSION}, [f"{module}/coremain"], {})
    _run(["go", "build", "-mod=mod", "-trimpath", "-ldflags", "-s -w", "-o", str(tc.coredns), module], cwd=src)
    _mark(out_dir)


def build_etcd(tc: Toolchain) -> None:
    out_dir = tc.etcd.parent
    if _done(out_dir):
        return
    _log(f"building etcd {ETCD_VERSION}")
    src = _wrapper(
        f"etcd-{ETCD_VERSION}", {"go.etcd.io/etcd/server/v3": ETCD_VERSION}, ["go.etcd.io/etcd/server/v3/etcdmain"], {}
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    _run(
        ["go", "build", "-mod=mod", "-trimpath", "-ldflags", "-s -w", "-o", str(tc.etcd), "go.etcd.io/etcd/server/v3"],
        cwd=src,
    )
    _mark(out_dir)


def build_kwok(tc: Toolchain) -> None:
    out_dir = tc.kwok.parent
    if _done(out_dir):
        return
    _log(f"building KWOK {KWOK_VERSION}")
    out_dir.mkdir(parents=True, exist_ok=True)
    _run(
        ["go", "install", "-trimpath", "-ldflags", "-s -w", f"sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}"],
        env=_go_env(out_dir),
    )
    mod = _module_dir("sigs.k8s.io/kwok", KWOK_VERSION)
    stages = tc.kwok_stages
    stages.mkdir(exist_ok=True)
    for rel in ("node/fast", "node/heartbeat-with-lease", "pod/fast"):
        for f in sorted((mod / "kustomize" / "stage" / rel).glob("*.yaml")):
            if f.name == "kustomization.yaml":
                continue
            shutil.copyfile(f, stages / f"{rel.replace('/', '-')}-{f.name}")
    _mark(out_dir)


def build_kuberay(tc: Toolchain) -> None:
    out_dir = tc.ray_operator.parent
    if _done(out_dir):
        return
    _log(f"building the KubeRay operator {KUBERAY_VERSION}")
    out_dir.mkdir(parents=True, exist_ok=True)
    # `go install mod@version` asks the proxy for the module's version list, which is not served for this
    # module; a wrapper module that requires the exact version avoids that lookup.
    module = "github.com/ray-project/kuberay/ray-operator"
    src = _wrapper(f"kuberay-{KUBERAY_VERSION}", {module: KUBERAY_VERSION}, [f"{module}/controllers/ray"], {})
    _run(["go", "build", "-mod=mod", "-trimpath", "-ldflags", "-s -w", "-o", str(tc.ray_operator), module], cwd=src)
    mod = _module_dir("github.com/ray-project/kuberay/ray-operator", KUBERAY_VERSION)
    tc.ray_crds.mkdir(exist_ok=True)
    for f in sorted((mod / "config" / "crd" / "bases").glob("ray.io_*.yaml")):
        shutil.copyfile(f, tc.ray_crds / f.name)
    _mark(out_dir)


def build_helm(tc: Toolchain) -> None:
    out_dir = tc.helm.parent
    if _done(out_dir):
        return
    _log(f"building Helm {HELM_VERSION}")
    out_dir.mkdir(parents=True, exist_ok=True)
    _run(
        ["go", "install", "-trimpath", "-ldflags", "-s -w", f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"],
        env=_go_env(out_dir),
    )
    _mark(out_dir)


def build_versitygw(tc: Toolchain) -> None:
    """The S3 server of tests, benchmarks and the demo: versitygw's gateway over its POSIX backend."""
    out_dir = tc.versitygw.parent
    if _done(out_dir):
        return
    _log(f"building the versitygw S3 server {VERSITYGW_VERSION}")
    out_dir.mkdir(parents=True, exist_ok=True)
    # its go.mod has no replace lines, so `go install mod@version` builds it as released
    ldflags = f"-s -w -X main.Version={VERSITYGW_VERSION} -X main.Build=release -X main.BuildTime=none"
    _run(
        [
            "go",
            "install",
            "-trimpath",
            "-ldflags",
            ldflags,
            f"github.com/versity/versitygw/cmd/versitygw@{VERSITYGW_VERSION}",
        ],
        env=_go_env(out_dir),
    )
    _mark(out_dir)


COMPONENTS = {
    "etcd": build_etcd,
    "kwok": build_kwok,
    "kuberay": build_kuberay,
    "helm": build_helm,
    "kubernetes": build_kubernetes,
    "containerd": build_containerd,
    "node": build_node,
    "coredns": build_coredns,
    "versitygw": build_versitygw,
}


NODE_COMPONENTS = ("containerd", "node", "coredns")


def is_built(tc: Toolchain | None = None, node: bool = True) -> bool:
    """Whether the control plane (and, with ``node``, the real node's binaries) is in the cache."""
    tc = tc or toolchain()
    dirs = [tc.k8s_dir, tc.etcd.parent, tc.kwok.parent, tc.ray_operator.parent, tc.helm.parent]
    dirs.append(tc.versitygw.parent)
    return all(_done(d) for d in dirs) and (not node or is_node_built(tc))


def is_node_built(tc: Toolchain | None = None) -> bool:
    tc = tc or toolchain()
    return all(_done(d) for d in (tc.node_dir, tc.containerd_dir, tc.coredns.parent))


def ensure_built(only: list[str] | None = None, node: bool = True) -> Toolchain:
    """Build whatever is missing from the cache; a no-op when everything is there. ``node=False`` leaves out the
    real node's binaries (containerd, kubelet, kube-proxy, pause, CoreDNS)."""
    tc = toolchain()
    if is_built(tc, node=node) and not only:
        return tc
    require_go()
    started = time.monotonic()
    for name, fn in COMPONENTS.items():
        if only and name not in only:
            continue
        if not only and not node and name in NODE_COMPONENTS:
            continue
        fn(tc)
    _log(f"control plane ready in {tc.root / 'bin'} ({time.monotonic() - started:.0f}s)")
    return tc


if __name__ == "__main__":  # pragma: no cover - `python -m portalis_devcluster.build [component...]`
    try:
        node = os.environ.get("PORTALIS_DEVCLUSTER_REAL_NODE", "1").lower() not in ("0", "false", "no", "off")
        ensure_built(sys.argv[1:] or None, node=node)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
