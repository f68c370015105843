"""Container images built on this machine without a Docker daemon, cached by what they are built from.

- **Bases from Debian packages** (``mmdebstrap``, then ``buildah``): a Python base that stands where the public
  ``python:3.11-slim-bookworm`` does (Debian's Python 3.11, pip in ``/usr/local``, no externally-managed marker), and
  a Ray base that stands where ``rayproject/ray:<version>-py311`` does (user ``ray``, uid 1000, gid 100, owning a
  Python environment on ``PATH`` with the Ray version the project pins). Each is tagged with a hash of its recipe
  and built once.
- **The operator and worker images** from ``images/*/Dockerfile``, unchanged, with ``buildah bud`` and the local
  bases as their build arguments. Each is tagged with a hash of its Dockerfile, its build context (what
  ``.dockerignore`` lets through) and its bases' image ids, so a build happens only when one of those changed.
- **Loaded into the real node** (``load_into``): exported as OCI archives and imported into its containerd, where
  pods find them without a registry.

The build machine's own trust store may hold a CA for its egress proxy. Its bundle is bind-mounted read-only over
the image's own bundle for the build steps, and never copied into an image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from portalis_devcluster import build

ROOT = Path(__file__).resolve().parents[2]


def _pinned(package: str) -> str:
    """The version requirements.lock pins for ``package``."""
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and name.strip().lower() == package:
            return version.strip()
    raise RuntimeError(f"requirements.lock pins no {package}")


RAY_VERSION = _pinned("ray")  # the Ray base carries the Ray the project pins
PYTHON_PACKAGES = (
    "python3",
    "python3-venv",
    "python-is-python3",
    "ca-certificates",
    "netbase",
    "tzdata",
    "passwd",
)
RAY_PACKAGES = ("wget", "procps")  # KubeRay's exec probes call wget; `ray stop` and people call ps
DEBIAN_SUITE = "bookworm"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class ImageError(RuntimeError):
    """An image could not be built or loaded; the message has the tail of the tool's output."""


def _log(msg: str) -> None:
    print(f"[images] {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def images_dir() -> Path:
    return build.cache_root() / "images"


def missing_tools() -> list[str]:
    """What this machine lacks to build the images."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (mmdebstrap and buildah build the images as uid 0)")
    for tool, package in (("buildah", "buildah"), ("mmdebstrap", "mmdebstrap")):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (Debian package {package})")
    return missing


def buildah(*args: str, check: bool = True, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """buildah with its storage under the cache directory, so images persist between runs and nothing else is
    touched."""
    d = images_dir()
    storage = ["--root", str(d / "storage"), "--runroot", str(d / "run"), "--storage-driver", "overlay"]
    cmd = ["buildah", *storage, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_clean_env())
    if check and proc.returncode != 0:
        raise ImageError(f"`buildah {' '.join(args[:3])} ...` failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def exists(ref: str) -> bool:
    return buildah("inspect", "--type", "image", ref, check=False).returncode == 0


def image_id(ref: str) -> str:
    return buildah("inspect", "--type", "image", "--format", "{{.FromImageID}}", ref).stdout.strip()


def _clean_env() -> dict[str, str]:
    """What build tools that run commands inside an image may see of this machine's environment: a PATH, a locale
    and proxy settings, and none of its pip, Python or CA settings."""
    keep = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update({"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})
    env["HOME"] = os.environ.get("HOME", "/root")
    return env


def _short(digest: str) -> str:
    return digest[:12]


# ---- bases ---------------------------------------------------------------------------------------------------
def _mirrors() -> list[str]:
    mirror = os.environ.get("PORTALIS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    security = os.environ.get("PORTALIS_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
    return [
        f"deb {mirror} {DEBIAN_SUITE} main",
        f"deb {mirror} {DEBIAN_SUITE}-updates main",
        f"deb {security} {DEBIAN_SUITE}-security main",
    ]


PYTHON_SETUP = """set -eu
# pip in /usr/local from the wheel Debian ships for venv, as the public python images have it
rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
wheel=$(ls /usr/share/python-wheels/pip-*.whl)
python3 "$wheel/pip" install --no-index --no-cache-dir --root-user-action=ignore "$wheel"
python -m pip --version
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /var/log/apt/*
"""


def _recipe_hash(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def python_base_ref() -> str:
    recipe = _recipe_hash(DEBIAN_SUITE, *PYTHON_PACKAGES, *_mirrors(), PYTHON_SETUP)
    return f"localhost/portalis/python-base:3.11-{DEBIAN_SUITE}-{_short(recipe)}"


def build_python_base() -> str:
    ref = python_base_ref()
    if exists(ref):
        return ref
    _log(f"building {ref} from Debian packages (mmdebstrap)")
    with tempfile.TemporaryDirectory(prefix="portalis-base-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        setup = Path(tmp) / "setup.sh"
        setup.write_text(PYTHON_SETUP)
        cmd = [
            "mmdebstrap",
            "--mode=root",
            "--variant=minbase",
            "--format=tar",
            f"--include={','.join(PYTHON_PACKAGES)}",
            '--aptopt=Acquire::Retries "3"',
            f"--customize-hook=upload {setup} /tmp/portalis-setup.sh",
            '--customize-hook=chroot "$1" sh /tmp/portalis-setup.sh',
            '--customize-hook=rm "$1/tmp/portalis-setup.sh"',
            DEBIAN_SUITE,
            str(rootfs),
            *_mirrors(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env())
        if proc.returncode != 0:
            raise ImageError(f"mmdebstrap failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        ctr = buildah("from", "scratch").stdout.strip()
        try:
            buildah("add", ctr, str(rootfs), "/")
            description = f"org.opencontainers.image.description=Debian {DEBIAN_SUITE} with Python 3.11"
            buildah("config", "--env", "LANG=C.UTF-8", "--cmd", "python3", "--label", description, ctr)
            buildah("commit", "--rm", ctr, ref)
        except ImageError:
            buildah("rm", ctr, check=False)
            raise
    return ref


RAY_SETUP = """set -eu
useradd --create-home --uid 1000 --gid 100 --shell /bin/bash ray
python -m venv /home/ray/venv
chown -R ray:users /home/ray
# login shells (KubeRay starts Ray with `bash -lc`) reset PATH in /etc/profile: put the environment back first
echo 'export PATH=/home/ray/venv/bin:$PATH' > /etc/profile.d/ray-env.sh
"""


def ray_base_ref(python_ref: str) -> str:
    recipe = _recipe_hash(python_ref, RAY_VERSION, *RAY_PACKAGES, RAY_SETUP)
    return f"localhost/portalis/ray-base:{RAY_VERSION}-py311-{_short(recipe)}"


def build_ray_base(python_ref: str) -> str:
    ref = ray_base_ref(python_ref)
    if exists(ref):
        return ref
    _log(f"building {ref} (ray[default]=={RAY_VERSION} on the Python base)")
    ctr = buildah("from", "--pull=never", python_ref).stdout.strip()
    try:
        with _build_mounts() as mounts:
            run = ["run", "--isolation", "chroot", *mounts, ctr, "--"]
            apt = (
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
                f"{' '.join(RAY_PACKAGES)} && rm -rf /var/lib/apt/lists/*"
            )
            buildah(*run, "sh", "-c", apt)
            buildah(*run, "sh", "-c", RAY_SETUP)
            buildah("config", "--user", "ray", ctr)
            pip = ["/home/ray/venv/bin/python", "-m", "pip", "install", "--no-cache-dir", "--quiet"]
            buildah(*run, *pip, f"ray[default]=={RAY_VERSION}")
        path = "PATH=/home/ray/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        description = f"org.opencontainers.image.description=Ray {RAY_VERSION} (Python 3.11) for Portalis"
        env = ["--env", path, "--env", "HOME=/home/ray"]
        buildah("config", *env, "--workingdir", "/home/ray", "--cmd", "bash", "--label", description, ctr)
        buildah("commit", "--rm", ctr, ref)
    except ImageError:
        buildah("rm", ctr, check=False)
        raise
    return ref


REDIS_SETUP = """set -eu
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
rm -rf /var/lib/apt/lists/*
mkdir -p /data && chown redis:redis /data
"""


def redis_ref(python_ref: str) -> str:
    return f"localhost/portalis/redis:{DEBIAN_SUITE}-{_short(_recipe_hash(python_ref, REDIS_SETUP))}"


def build_redis(python_ref: str) -> str:
    """Debian's redis-server on the Python base: the Redis the local cluster runs in a pod, as users run theirs."""
    ref = redis_ref(python_ref)
    if exists(ref):
        return ref
    _log(f"building {ref} (Debian's redis-server)")
    ctr = buildah("from", "--pull=never", python_ref).stdout.strip()
    try:
        buildah("run", "--isolation", "chroot", ctr, "--", "sh", "-c", REDIS_SETUP)
        uid = buildah("run", "--isolation", "chroot", ctr, "--", "id", "-u", "redis").stdout.strip()
        gid = buildah("run", "--isolation", "chroot", ctr, "--", "id", "-g", "redis").stdout.strip()
        buildah(
            "config",
            "--user",
            f"{uid}:{gid}",
            "--workingdir",
            "/data",
            "--entrypoint",
            '["redis-server"]',
            "--cmd",
            "",
            "--port",
            "6379",
            ctr,
        )
        buildah("commit", "--rm", ctr, ref)
    except ImageError:
        buildah("rm", ctr, check=False)
        raise
    return ref


class _build_mounts:
    """Build-time mounts that let pip reach the package index through this machine's egress CA, if it has one.

    The machine's CA bundle is mounted read-only over the bundle the base already has (Debian's pip and the
    certifi it vendors read ``/etc/ssl/certs/ca-certificates.crt``), so no mount point is created in a layer and
    the image keeps its own bundle.
    """

    def __enter__(self) -> list[str]:
        if not HOST_CA_BUNDLE.exists():
            return []
        return ["--volume", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]

    def __exit__(self, *exc: object) -> None:
        return None


# ---- the project's images ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProjectImage:
    name: str  # operator | worker
    dockerfile: Path

    @property
    def repository(self) -> str:
        return f"localhost/portalis/{self.name}"


PROJECT_IMAGES = (
    ProjectImage("operator", ROOT / "images" / "operator" / "Dockerfile"),
    ProjectImage("worker", ROOT / "images" / "worker" / "Dockerfile"),
)


def _context_files() -> list[Path]:
    """The build context as ``.dockerignore`` lets it through: pyproject.toml, README.md and operator/ (without
    caches and build leftovers)."""
    files = [ROOT / "pyproject.toml", ROOT / "README.md"]
    skip_dirs = {"__pycache__", ".mypy_cache"}
    for dirpath, dirnames, filenames in os.walk(ROOT / "operator"):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs and not d.endswith(".egg-info"))
        files += [Path(dirpath) / f for f in sorted(filenames) if not f.endswith(".pyc")]
    return files


BUILD_RECIPE = "bud --isolation chroot, no layer cache"  # part of every project image's hash


def project_ref(image: ProjectImage, bases: dict[str, str]) -> str:
    h = hashlib.sha256(BUILD_RECIPE.encode())
    h.update(image.dockerfile.read_bytes())
    for name in sorted(bases):
        h.update(f"{name}={bases[name]}@{image_id(bases[name])}\n".encode())
    for path in _context_files():
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{image.repository}:{_short(h.hexdigest())}"


def _build_args(bases: dict[str, str]) -> list[str]:
    from portalis import __version__

    args = ["--build-arg", f"PYTHON_IMAGE={bases['python']}", "--build-arg", f"VERSION={__version__}"]
    if "ray" in bases:
        args += ["--build-arg", f"RAY_IMAGE={bases['ray']}"]
    return args


def build_project_image(image: ProjectImage, bases: dict[str, str]) -> str:
    ref = project_ref(image, bases)
    if exists(ref):
        return ref
    _log(f"building {ref} from {image.dockerfile.relative_to(ROOT)}")
    started = time.monotonic()
    with _build_mounts() as mounts:
        # no --layers: buildah 1.28 reuses a cached COPY layer although the copied files changed; the image as a
        # whole is cached by the hash of everything it is built from instead
        flags = ["--isolation", "chroot", "--pull=never", "--format", "oci"]
        buildah("bud", *flags, "-f", str(image.dockerfile), "-t", ref, *_build_args(bases), *mounts, str(ROOT))
    _log(f"built {ref} in {time.monotonic() - started:.0f}s")
    return ref


def built_refs() -> dict[str, str]:
    """Refs of the images of this tree that are built (``{}`` for one that is not)."""
    if missing_tools() or not (images_dir() / "storage").exists():
        return {}
    python = python_base_ref()
    if not exists(python):
        return {}
    bases = {"python": python, "ray": ray_base_ref(python)}
    out = {"redis": redis_ref(python)} if exists(redis_ref(python)) else {}
    for image in PROJECT_IMAGES:
        needs = {"python": python} if image.name == "operator" else bases
        if all(exists(b) for b in needs.values()):
            ref = project_ref(image, needs)
            if exists(ref):
                out[image.name] = ref
    return out


def build_all() -> dict[str, str]:
    """Build whatever of the bases and the project's images is missing; returns ``{name: ref}``."""
    missing = missing_tools()
    if missing:
        raise ImageError("cannot build images on this machine; missing: " + "; ".join(missing))
    started = time.monotonic()
    images_dir().mkdir(parents=True, exist_ok=True)
    python = build_python_base()
    bases = {"python": python, "ray": build_ray_base(python)}
    refs = {"redis": build_redis(python)}
    for image in PROJECT_IMAGES:
        needs = {"python": python} if image.name == "operator" else bases
        refs[image.name] = build_project_image(image, needs)
    _log(f"images ready in {time.monotonic() - started:.0f}s: " + ", ".join(refs.values()))
    prune(refs)
    return refs


def prune(keep: dict[str, str]) -> None:
    """Remove the older builds of the project's images from buildah's storage (a changed tree builds new ones)."""
    repositories = {ref.rsplit(":", 1)[0] for ref in keep.values()}
    listed = buildah("images", "--format", "{{.Name}}:{{.Tag}}", check=False).stdout.split()
    stale = [ref for ref in listed if ref.rsplit(":", 1)[0] in repositories and ref not in keep.values()]
    if stale:
        buildah("rmi", *stale, check=False)
        buildah("rmi", "--prune", check=False)


IMAGE_ID_LABEL = "portalis.dev/image-id"


def load_into(node: object, refs: dict[str, str] | None = None) -> None:
    """Import the built images into the real node's containerd, those it does not have as built (each imported image
    carries the id of the image it came from in a label)."""
    from portalis_devcluster.node import RealNode

    assert isinstance(node, RealNode)
    refs = built_refs() if refs is None else refs
    node.remove_images_except(refs.values())
    for ref in refs.values():
        built_id = image_id(ref)
        if node.image_label(ref, IMAGE_ID_LABEL) == built_id:
            continue
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="portalis-export-", dir=images_dir()) as tmp:
            archive = Path(tmp) / "image.oci.tar"
            # uncompressed: gzip of a gigabyte of layers costs more than the disk it saves on this hop
            buildah("push", "--quiet", "--disable-compression", ref, f"oci-archive:{archive}:{ref}")
            node.import_image(archive, ref, {IMAGE_ID_LABEL: built_id})
        _log(f"loaded {ref} into the real node in {time.monotonic() - started:.0f}s")


def main(argv: list[str] | None = None) -> int:
    """``python -m portalis_devcluster.images [--if-real-node]``: build the images, and load them into the local
    cluster's real node when it runs. With ``--if-real-node`` (what ``make test`` runs) nothing is built where the
    local cluster would run no real node, since no test could use the images there."""
    from portalis_devcluster import host
    from portalis_devcluster.cluster import DevCluster
    from portalis_devcluster.node import ENV_SWITCH, RealNodeSpec

    args = sys.argv[1:] if argv is None else argv
    if "--if-real-node" in args:
        if not RealNodeSpec.from_env().enabled:
            _log(f"not building images: the real node is turned off ({ENV_SWITCH}=0)")
            return 0
        lacking = host.missing_for_real_node() + missing_tools()
        if lacking:
            _log("not building images: this machine cannot run a real node or build images: " + "; ".join(lacking))
            return 0
    try:
        refs = build_all()
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(refs, indent=2))
    cluster = DevCluster()
    node = cluster.node() if cluster.state_file.exists() else None
    if node is not None and cluster.healthy():
        load_into(node, refs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
