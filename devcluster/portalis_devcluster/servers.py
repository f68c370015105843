"""Real Redis and S3 servers on loopback for tests, benchmarks and ``make demo``.

Redis is Debian's ``redis-server``; S3 is versitygw, an S3 gateway built from Go modules with the control plane
(``make deps``), serving a directory through its POSIX backend over the S3 REST API on HTTP. Each starts on a free
port in its own directory and is stopped (and its files removed) by ``stop``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from portalis_devcluster import build
from portalis_devcluster.cluster import free_port


class ServerError(RuntimeError):
    """A test server could not start; the message says what to install."""


def _wait_port(
    port: int, proc: subprocess.Popen[bytes], what: str, log: Path, host: str = "127.0.0.1", timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"{what} exited with {proc.returncode}; see {log}:\n{log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise ServerError(f"{what} did not listen on {host}:{port} within {timeout:.0f}s; see {log}")


@dataclass
class _Server:
    workdir: Path | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    _own_dir: bool = field(default=False, repr=False)

    def _prepare(self, prefix: str) -> Path:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=prefix))
            self._own_dir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        return self.workdir

    def _spawn(self, argv: list[str], what: str, env: dict[str, str] | None = None, host: str = "127.0.0.1") -> None:
        assert self.workdir is not None
        log = self.workdir / f"{what}.log"
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        _wait_port(self.port, self.proc, what, log, host)

    def stop(self, remove: bool = True) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if remove and self._own_dir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL, as a crash would; the directory (Redis' AOF, the S3 server's objects) stays for a restart."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def start(self) -> _Server:
        raise NotImplementedError

    def restart(self) -> None:
        """Stop and start again on the same port and directory: what was stored is still there."""
        self.stop(remove=False)
        self.start()


@dataclass
class RedisServer(_Server):
    """``redis-server`` with append-only persistence, so a restart keeps what was acknowledged."""

    appendonly: bool = True

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerError("redis-server is not installed: apt-get install redis-server (or run `make deps`)")
        wd = self._prepare("portalis-redis-")
        argv = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(wd),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--protected-mode",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        self._spawn(argv, "redis")
        self._wait_loaded()
        return self

    def _wait_loaded(self, timeout: float = 60) -> None:
        """Until the server has read its append-only file back: it accepts connections (and PING) while it
        loads, but answers other commands with LOADING."""
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    if int(client.info("persistence").get("loading", 0)) == 0:
                        return
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerError(f"redis-server on port {self.port} was still loading after {timeout:.0f}s")
                time.sleep(0.05)
        finally:
            client.close()


@dataclass
class S3Server(_Server):
    """versitygw, an S3 gateway (Apache-2.0) built from Go modules by ``make deps``, over its POSIX backend.

    Each bucket is a directory under ``data_dir`` and each object a file in it, its ETag and user metadata kept
    in extended attributes (in a side-car directory where the file system has none). It checks every request's
    signature against one root account (``access_key``/``secret_key``): wrong credentials are refused as by any S3
    service. ``bind`` is the address it listens on (loopback by default; another address makes it reachable
    from pods).
    """

    access_key: str = "portalis-test"
    secret_key: str = "portalis-test-secret"  # test credentials of a server that listens on loopback by default
    region: str = "us-east-1"
    bind: str = "127.0.0.1"

    @property
    def host(self) -> str:
        """Where clients on this machine connect: the bound address, or loopback for a wildcard bind."""
        return "127.0.0.1" if self.bind in ("", "0.0.0.0") else self.bind

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        assert self.workdir is not None, "the server has no directory before start()"
        return self.workdir / "data"

    @property
    def iam_dir(self) -> Path:
        assert self.workdir is not None, "the server has no directory before start()"
        return self.workdir / "iam"

    @property
    def sidecar_dir(self) -> Path | None:
        """Where object metadata lives when ``data_dir``'s file system has no user extended attributes."""
        assert self.workdir is not None, "the server has no directory before start()"
        return None if _has_user_xattrs(self.data_dir) else self.workdir / "meta"

    def command(self) -> tuple[list[str], dict[str, str]]:
        """The command line and the environment (credentials) the server runs with, as an image would run it."""
        argv = [
            str(_versitygw()),
            "--port",
            f"{self.bind}:{self.port}",
            "--region",
            self.region,
            "--iam-dir",  # accounts besides root live here; a key it does not know is refused as InvalidAccessKeyId
            str(self.iam_dir),
            "--quiet",
            # HTTP keep-alive, as a deployment serving clients that make many small requests runs it (versitygw
            # closes every connection after one answer by default: each request then paid a new TCP connection)
            "--keep-alive",
            "posix",
        ]
        sidecar = self.sidecar_dir
        if sidecar is not None:
            argv += ["--sidecar", str(sidecar)]
        argv.append(str(self.data_dir))
        return argv, {"ROOT_ACCESS_KEY_ID": self.access_key, "ROOT_SECRET_ACCESS_KEY": self.secret_key}

    def start(self) -> S3Server:
        self._prepare("portalis-s3-")
        self.data_dir.mkdir(exist_ok=True)
        self.iam_dir.mkdir(exist_ok=True)
        sidecar = self.sidecar_dir
        if sidecar is not None:
            sidecar.mkdir(exist_ok=True)
        argv, creds = self.command()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VGW_", "ROOT_", "ADMIN_"))}
        env.update(creds)
        self._spawn(argv, "s3", env=env, host=self.host)
        return self

    def client_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "PORTALIS_S3_ENDPOINT": self.endpoint,
        }

    def populate(self, bucket: str, objects: Iterable[tuple[str, bytes]]) -> int:
        """Write objects straight into an existing bucket's directory, as files a person copies onto the file
        system the gateway serves, with the MD5 ETag a PUT would have stored: setup for tests and benchmarks
        that need many objects (100,000 in seconds, not minutes of signed PUTs). Returns how many were written.
        """
        root = self.data_dir / bucket
        if not root.is_dir():
            raise ServerError(f"bucket {bucket} does not exist on the S3 server; create it first")
        sidecar = self.sidecar_dir
        made: set[Path] = set()
        count = 0
        for key, data in objects:
            if not key or key.startswith("/") or key.endswith("/") or ".." in key.split("/"):
                raise ValueError(f"not an object key this helper writes: {key!r}")
            path = root / key
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            path.write_bytes(data)
            etag = hashlib.md5(data, usedforsecurity=False).hexdigest().encode()
            if sidecar is None:
                os.setxattr(path, "user.etag", etag)
            else:
                meta = sidecar / bucket / key / "meta"
                meta.mkdir(parents=True, exist_ok=True)
                (meta / "etag").write_bytes(etag)
            count += 1
        return count


def _versitygw() -> Path:
    binary = build.toolchain().versitygw
    if not binary.exists():
        raise ServerError(f"the S3 server (versitygw) is not built at {binary}: run `make deps`")
    return binary


def _has_user_xattrs(directory: Path) -> bool:
    directory.mkdir(parents=True, exist_ok=True)
    try:
        os.setxattr(directory, "user.portalis-probe", b"1")
        os.removexattr(directory, "user.portalis-probe")
    except OSError:
        return False
    return True
