"""The py2many engine: rule-based Python to Rust (or Go, C++) translation on CPU, offline and deterministic.

Where it sits: the default engine of the worker and the engine of the tests. It calls py2many's transpiler in
this process, which costs tens of milliseconds a file, instead of starting an interpreter per file.

py2many keeps state on its transpiler classes and instances, so every in-process call runs on one dedicated
thread shared by all engines of the process; the worker's threads queue their files onto it. A call that runs
past ``timeout_seconds`` is answered as a transient failure. Should that call never return, later files go
through ``python -m py2many`` in a child process (killed at its timeout) until the thread is free again, so a
pathological input cannot stall the worker. ``options["isolation"] = "subprocess"`` uses child processes always.

Sources are parsed on that thread too (or under a lock, with child processes): CPython 3.11 keeps the depth of
its AST conversion in state shared by all threads, and two ``ast.parse`` calls at once can fail with
"SystemError: AST constructor recursion depth mismatch".

Outputs are formatted with the target's formatter (rustfmt, gofmt, clang-format) when it is installed, as the
py2many command line does; ``options["format"] = "false"`` turns that off.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from importlib import metadata
from pathlib import Path, PurePosixPath

from portalis.worker.engines.base import (
    DEFAULT_TIMEOUT_SECONDS,
    EngineError,
    Source,
    Translation,
    one_line,
    option_bool,
)

log = logging.getLogger(__name__)

ADAPTER_VERSION = "p1"
SOURCE_LANGUAGES = ("python",)
TARGETS: dict[str, str] = {"rust": "rust", "go": "go", "cpp": "cpp"}  # target language -> py2many's language
FORMATTERS: dict[str, list[str]] = {
    "rust": ["rustfmt", "--edition", "2021", "--emit", "stdout"],
    "go": ["gofmt"],
    "cpp": ["clang-format"],
}
FORMAT_TIMEOUT_SECONDS = 30.0
ISOLATIONS = ("thread", "subprocess")

# "pkg/mod.py:12:4: py2many.exceptions.AstNotImplementedError: try_dummy not implemented" or
# "pkg/mod.py: AttributeError: ..." as py2many's command line prints failures.
_CLI_ERROR = re.compile(r"^(?P<file>[^\n:]+\.py)(?::(?P<line>\d+):\d+)?: (?P<error>.+)$", re.MULTILINE)


def py2many_version() -> str:
    try:
        return metadata.version("py2many")
    except metadata.PackageNotFoundError:
        return "unknown"


class Py2ManyEngine:
    """Translates with py2many. Thread-safe; ``translate`` never raises for a problem with one file."""

    name = "py2many"

    def __init__(
        self, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS, options: Mapping[str, str] | None = None
    ) -> None:
        options = dict(options or {})
        self.version = f"{py2many_version()}+{ADAPTER_VERSION}"
        self.timeout_seconds = timeout_seconds
        self.isolation = options.get("isolation", "thread").strip() or "thread"
        if self.isolation not in ISOLATIONS:
            raise EngineError(f"option 'isolation' must be one of {', '.join(ISOLATIONS)}, got {self.isolation!r}")
        self.format = option_bool(options, "format", True)
        self._formatters = {lang: cmd for lang, cmd in FORMATTERS.items() if shutil.which(cmd[0]) is not None}
        if self.isolation == "thread":
            _import_py2many()  # fail at start-up, not on the first item, when py2many is missing

    def __repr__(self) -> str:
        return f"Py2ManyEngine(version={self.version!r}, isolation={self.isolation!r}, format={self.format!r})"

    def translate(self, sources: list[Source]) -> list[Translation]:
        # Submit the whole batch first: the py2many thread works through it while this thread formats outputs.
        pending: list[Translation | Future[str] | None] = [self._start(source) for source in sources]
        results: list[Translation] = []
        for source, started in zip(sources, pending, strict=True):
            if isinstance(started, Translation):
                results.append(started)
                continue
            deadline = time.monotonic() + self.timeout_seconds
            try:
                if started is None:
                    text = _run_subprocess(source, TARGETS[source.target_language], self.timeout_seconds)
                else:
                    text = self._wait(started, source)
            except _Failed as failed:
                results.append(failed.translation)
            else:
                results.append(Translation.success(self._formatted(text, source.target_language, deadline)))
        return results

    def _start(self, source: Source) -> Translation | Future[str] | None:
        """A finished answer (unsupported or malformed input), a running in-process call, or None (subprocess)."""
        rejected = _check(source)
        if rejected is not None:
            return rejected
        if not source.text.strip():
            return Translation.success("")  # an empty module, such as a bare __init__.py (py2many skips those)
        if self.isolation == "subprocess":
            with _PARSE_LOCK:
                try:
                    _parse(source)
                except _Unparseable as err:
                    return err.translation
            return None
        language = TARGETS[source.target_language]
        return _RUNNER.submit(lambda: _parse_and_transpile(source, language))

    def _wait(self, started: Future[str], source: Source) -> str:
        try:
            return started.result(timeout=self.timeout_seconds)
        except FutureTimeout:
            if _RUNNER.timed_out(started):
                log.warning(
                    "py2many ran past %gs on %s; using child processes until it returns",
                    self.timeout_seconds,
                    source.path,
                )
            raise _Failed(
                Translation.failure(f"py2many timed out after {self.timeout_seconds:g}s", permanent=False)
            ) from None
        except CancelledError:
            # A call ahead of this one on the py2many thread timed out and the queue behind it was cancelled.
            with _PARSE_LOCK:
                try:
                    _parse(source)
                except _Unparseable as err:
                    raise _Failed(err.translation) from None
            return _run_subprocess(source, TARGETS[source.target_language], self.timeout_seconds)
        except _Unparseable as err:
            raise _Failed(err.translation) from None
        except Exception as err:  # py2many's own failures: deterministic, so permanent
            raise _Failed(Translation.failure(describe_failure(err), permanent=True)) from None

    def _formatted(self, text: str, target_language: str, deadline: float) -> str:
        command = self._formatters.get(target_language) if self.format else None
        if command is None:
            return text
        timeout = min(FORMAT_TIMEOUT_SECONDS, max(1.0, deadline - time.monotonic()))
        try:
            proc = subprocess.run(command, input=text, capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return text
        # A formatter that rejects the output (py2many emitted something it cannot parse) leaves it as it is,
        # as py2many's command line does.
        return proc.stdout if proc.returncode == 0 and proc.stdout.strip() else text


class _Failed(Exception):
    def __init__(self, translation: Translation) -> None:
        super().__init__(translation.error)
        self.translation = translation


def _check(source: Source) -> Translation | None:
    """A permanent failure for a language pair py2many does not translate, before any work is queued."""
    if source.source_language not in SOURCE_LANGUAGES:
        return Translation.failure(f"source language {source.source_language} not supported by py2many", permanent=True)
    if source.target_language not in TARGETS:
        supported = ", ".join(sorted(TARGETS))
        return Translation.failure(
            f"target {source.target_language} not supported by py2many (supported: {supported})", permanent=True
        )
    return None


_PARSE_LOCK = threading.Lock()  # ast.parse outside the py2many thread (child-process isolation)


class _Unparseable(Exception):
    """The source is not Python that parses: a permanent failure."""

    def __init__(self, translation: Translation) -> None:
        super().__init__(translation.error)
        self.translation = translation


def _parse(source: Source) -> None:
    """Raise _Unparseable when the source does not parse (on the py2many thread, or under _PARSE_LOCK)."""
    try:
        ast.parse(source.text, filename=source.path)
    except SyntaxError as err:
        raise _Unparseable(Translation.failure(describe_failure(err), permanent=True)) from None
    except (ValueError, RecursionError, MemoryError) as err:  # null bytes, absurdly deep nesting
        raise _Unparseable(Translation.failure(f"cannot parse: {type(err).__name__}: {err}", permanent=True)) from None


def _parse_and_transpile(source: Source, language: str) -> str:
    """Parse, then translate, on the py2many thread."""
    _parse(source)
    return _transpile_in_process(source.path, source.text, language)


def describe_failure(err: BaseException) -> str:
    """One line naming what py2many could not handle and where, such as
    "line 12: AstNotImplementedError: try_dummy not implemented"."""
    if isinstance(err, SyntaxError):
        where = f"line {err.lineno}: " if err.lineno else ""
        return one_line(f"{where}SyntaxError: {err.msg}")
    lineno = getattr(err, "lineno", None)
    where = f"line {lineno}: " if isinstance(lineno, int) else ""
    message = str(err) or "(no message)"
    return one_line(f"{where}{type(err).__name__}: {message}")


# --- in process ----------------------------------------------------------------------------------------------


class _Py2ManyThread:
    """The one thread that runs py2many in this process, and what happens when a call on it never returns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._stuck: Future[str] | None = None

    def submit(self, call: Callable[[], str]) -> Future[str] | None:
        """Queue ``call``; None while a timed-out call still holds the thread (use a child process instead)."""
        with self._lock:
            if self._stuck is not None:
                if not self._stuck.done():
                    return None
                self._stuck = None
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="py2many")
            return self._executor.submit(call)

    def timed_out(self, future: Future[str]) -> bool:
        """Give up on ``future``. True when it holds the thread: its queue is cancelled, and until it returns
        ``submit`` answers None."""
        with self._lock:
            if future.cancel():
                return False  # it was still queued behind slower calls
            if future.done():
                return False
            self._stuck = future
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
            return True


_RUNNER = _Py2ManyThread()


def _import_py2many() -> tuple[Callable[..., tuple[list[str], list[object]]], Mapping[str, Callable[..., object]]]:
    try:
        from py2many.cli import _transpile  # type: ignore[import-untyped]
        from py2many.registry import ALL_SETTINGS  # type: ignore[import-untyped]
    except ImportError as err:
        raise EngineError(f"py2many is not installed: {err}") from None
    return _transpile, ALL_SETTINGS


def _py2many_args() -> argparse.Namespace:
    """The arguments py2many's command line passes its transpiler by default."""
    return argparse.Namespace(
        indent=None,
        comment_unsupported=False,
        strict=True,
        ignore_formatter_errors=False,
        extension=False,
        suffix=None,
        no_prologue=False,
        force=False,
        typpete=False,
        llm=False,
        llm_model="",
    )


def _transpile_in_process(path: str, text: str, language: str) -> str:
    """Translate one file with py2many's transpiler (runs on the py2many thread only)."""
    transpile, all_settings = _import_py2many()
    args = _py2many_args()
    # py2many prints failures to stdout before raising them; the exception carries the same facts. The redirect
    # holds for the whole process while the call runs, which is short and only ever on this one thread.
    with contextlib.redirect_stdout(io.StringIO()):
        # Fresh settings every call: building a transpiler resets state that py2many keeps on its classes.
        settings = all_settings[language](args, env=os.environ)
        outputs, _ = transpile([Path(path)], [text], settings, args, _suppress_exceptions=None)
    return str(outputs[0])


# --- in a child process --------------------------------------------------------------------------------------


def _run_subprocess(source: Source, language: str, timeout_seconds: float) -> str:
    """Translate one file with ``python -m py2many`` in a temporary directory."""
    name = PurePosixPath(source.path).name or "source.py"
    if not name.endswith(".py"):
        name += ".py"
    with tempfile.TemporaryDirectory(prefix="portalis-py2many-") as tmp:
        workdir = Path(tmp)
        (workdir / "in").mkdir()
        (workdir / "out").mkdir()
        (workdir / "in" / name).write_text(source.text, encoding="utf-8")
        command = [sys.executable, "-m", "py2many", f"--{language}", "--outdir", "out", f"in/{name}"]
        try:
            proc = subprocess.run(
                command, cwd=workdir, capture_output=True, text=True, timeout=timeout_seconds, check=False
            )
        except subprocess.TimeoutExpired:
            raise _Failed(
                Translation.failure(f"py2many timed out after {timeout_seconds:g}s", permanent=False)
            ) from None
        except OSError as err:
            raise _Failed(Translation.failure(f"cannot run py2many: {err}", permanent=False)) from None
        outputs = [p for p in (workdir / "out").iterdir() if p.is_file()]
        text = outputs[0].read_text(encoding="utf-8") if outputs else ""
        if text and text != "FAILED":
            return text  # a formatter failure makes the exit status 1, but the translation is there
        match = _CLI_ERROR.search(proc.stdout + "\n" + proc.stderr)
        if match is None:
            detail = one_line((proc.stderr or proc.stdout).strip()[-200:]) or f"exit status {proc.returncode}"
            raise _Failed(Translation.failure(f"py2many failed: {detail}", permanent=True))
        error = match.group("error").removeprefix("py2many.exceptions.")
        where = f"line {match.group('line')}: " if match.group("line") else ""
        raise _Failed(Translation.failure(f"{where}{error}", permanent=True))
