"""Real Redis and S3 servers on loopback for tests, benchmarks and ``make demo``.

Redis is Debian's ``redis-server``; S3 is moto's standalone server speaking the S3 REST API over HTTP.
Each starts on a free port in its own directory and is stopped (and its files removed) by ``stop``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from portalis_devcluster.cluster import free_port


class ServerError(RuntimeError):
    """A test server could not start; the message says what to install."""


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"{what} exited with {proc.returncode}; see {log}:\n{log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServerError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s; see {log}")


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

    def _spawn(self, argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
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
        _wait_port(self.port, self.proc, what, log)

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
        """SIGKILL, as a crash would; the directory (and Redis' AOF) stays for a restart."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


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

    def restart(self) -> None:
        self.stop(remove=False)
        self.start()


@dataclass
class S3Server(_Server):
    """An S3-compatible server over HTTP (moto's standalone server)."""

    access_key: str = "portalis-test"
    secret_key: str = "portalis-test-secret"  # loopback-only test credentials
    region: str = "us-east-1"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        self._prepare("portalis-s3-")
        binary = Path(sys.executable).with_name("moto_server")
        if not binary.exists():
            found = shutil.which("moto_server")
            if found is None:
                raise ServerError("moto_server is not installed: pip install 'moto[server]' (or run `make deps`)")
            binary = Path(found)
        env = dict(os.environ)
        env.update({"MOTO_ALLOW_NONEXISTENT_REGION": "true", "AWS_DEFAULT_REGION": self.region})
        self._spawn([str(binary), "-H", "127.0.0.1", "-p", str(self.port)], "s3", env=env)
        return self

    def client_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "PORTALIS_S3_ENDPOINT": self.endpoint,
        }
