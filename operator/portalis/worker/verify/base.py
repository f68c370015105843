"""What a compile check answers, and the pieces the toolchain checks share.

Where it sits: the worker writes an engine's output, then hands it to the ``Checker`` of the item's target
language (``portalis.worker.verify``). The answer is a ``Verdict``: whether the target's own compiler accepts
the file and, when it does not, its first diagnostics on one line each, with the file named as the output is.
A check that could not run (no toolchain on this worker, a timeout, the crate set missing from cargo's cache)
raises instead: that says nothing about the file, so the worker leaves the item for another attempt.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from portalis.api.v1alpha1.job import Outcome

DEFAULT_TIMEOUT_SECONDS = 120.0
DIAGNOSTICS_KEPT = 5  # the first errors of a file that does not compile
DIAGNOSTIC_CHARS = 300
MAX_SLOTS = 64


@dataclass(frozen=True)
class Verdict:
    """What the target's compiler said about one translated file."""

    compiles: bool
    diagnostics: tuple[str, ...] = ()  # the first errors, one line each, when it does not compile
    toolchain: str = ""  # such as "rustc 1.85.0"

    @property
    def outcome(self) -> Outcome:
        return Outcome.COMPILES if self.compiles else Outcome.TRANSLATED


class CheckUnavailable(Exception):
    """The check could not run here (no toolchain, a timeout, a broken setup); the file itself may be fine."""


class Checker(Protocol):
    """Checks translated files of one target language with that language's toolchain. Thread-safe."""

    target: str
    toolchain: str

    def check(self, path: str, text: str) -> Verdict: ...


@dataclass(frozen=True)
class VerifySettings:
    """Where checks keep their scratch crates and build caches, and how long one may take."""

    work_dir: Path
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> VerifySettings:
        """PORTALIS_VERIFY_DIR (default: $XDG_CACHE_HOME/portalis/verify, else ~/.cache/portalis/verify) and
        PORTALIS_VERIFY_TIMEOUT_SECONDS."""
        env = os.environ if env is None else env
        work_dir = env.get("PORTALIS_VERIFY_DIR", "").strip()
        if not work_dir:
            cache = env.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
            work_dir = str(Path(cache) / "portalis" / "verify")
        timeout = float(env.get("PORTALIS_VERIFY_TIMEOUT_SECONDS", "").strip() or DEFAULT_TIMEOUT_SECONDS)
        if timeout <= 0:
            raise ValueError(f"PORTALIS_VERIFY_TIMEOUT_SECONDS must be positive, got {timeout}")
        return cls(work_dir=Path(work_dir), timeout_seconds=timeout)


def first_errors(output: str, pattern: re.Pattern[str], file_name: str, name_as: str) -> tuple[str, ...]:
    """The first DIAGNOSTICS_KEPT lines of ``output`` that ``pattern`` matches, on one line each and cut to
    DIAGNOSTIC_CHARS, with the scratch file's name ``file_name`` replaced by ``name_as``."""
    found: list[str] = []
    for line in output.splitlines():
        if pattern.search(line) is None:
            continue
        text = " ".join(line.removeprefix("./").replace(file_name, name_as).split())
        found.append(text if len(text) <= DIAGNOSTIC_CHARS else text[: DIAGNOSTIC_CHARS - 3] + "...")
        if len(found) == DIAGNOSTICS_KEPT:
            break
    return tuple(found)


def verdict_of(
    proc: subprocess.CompletedProcess[str], pattern: re.Pattern[str], scratch: str, path: str, toolchain: str
) -> Verdict:
    """The verdict a toolchain's exit status and error output give on the file ``scratch``, shown as ``path``.
    A failure that names no error in the file says nothing about it: CheckUnavailable."""
    if proc.returncode == 0:
        return Verdict(compiles=True, toolchain=toolchain)
    errors = first_errors(proc.stderr, pattern, scratch, path)
    if not errors:
        detail = " ".join(proc.stderr.strip().split())[-400:]
        raise CheckUnavailable(f"{proc.args[0]} failed without a diagnostic on the file: {detail}")
    return Verdict(compiles=False, diagnostics=errors, toolchain=toolchain)


def run_tool(
    command: Sequence[str], cwd: Path, env: Mapping[str, str], timeout_seconds: float
) -> subprocess.CompletedProcess[str]:
    """Run a toolchain command; on timeout its whole process group (cargo's rustc children too) is killed and
    CheckUnavailable raised."""
    try:
        proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as err:
        raise CheckUnavailable(f"cannot run {command[0]}: {err}") from None
    try:
        stdout, stderr = proc.communicate(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise CheckUnavailable(f"{command[0]} {command[1]} ran past {timeout_seconds:g}s") from None
    return subprocess.CompletedProcess(list(command), proc.returncode, stdout, stderr)


def tool_version(command: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """The first line a ``--version`` style command prints, such as "rustc 1.85.0 (...)"."""
    try:
        proc = subprocess.run(list(command), capture_output=True, text=True, timeout=30, check=False, env=env)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CheckUnavailable(f"cannot run {' '.join(command)}: {err}") from None
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise CheckUnavailable(f"{' '.join(command)} failed: {(proc.stderr or proc.stdout).strip()[-200:]}")
    return lines[0].strip()


class Slots:
    """Scratch directories under ``root`` that one check at a time uses, across threads and processes (each is
    held with a file lock), so a warm build cache in each is reused by the next check."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._hint = threading.local()

    @contextmanager
    def hold(self) -> Iterator[Path]:
        self.root.mkdir(parents=True, exist_ok=True)
        start = getattr(self._hint, "slot", 0)
        for n in [start, *(i for i in range(MAX_SLOTS) if i != start)]:
            lock = _try_lock(self.root / f"slot-{n}.lock")
            if lock is not None:
                break
        else:  # every slot is busy: wait for this thread's usual one
            n = start
            lock = open(self.root / f"slot-{n}.lock", "a")  # noqa: SIM115 (closed below)
            fcntl.flock(lock, fcntl.LOCK_EX)
        self._hint.slot = n
        try:
            slot = self.root / f"slot-{n}"
            slot.mkdir(exist_ok=True)
            yield slot
        finally:
            lock.close()


def _try_lock(path: Path) -> IO[str] | None:
    handle = open(path, "a")  # noqa: SIM115 (returned open, closed by the caller)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def write_if_changed(path: Path, text: str) -> None:
    """Leave a file alone when it already says ``text``: cargo and go decide what to rebuild from mtimes."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except FileNotFoundError:
        pass
    path.write_text(text, encoding="utf-8")
