"""The Go check: ``go build`` of each translated file as a module of its own, offline.

The file goes into a scratch module (``go.mod`` naming no requirements) with ``GOPROXY=off`` and
``GOFLAGS=-mod=mod``, so the standard library is all it can import: a file that imports a module from elsewhere
(py2many's Go output sometimes does) is reported by the compiler as not compiling. A ``package main`` file
without a ``main`` function gets an empty one in a second file of the module, so that a file of functions is
judged on its own code. Scratch modules live in slots under ``<work dir>/go`` and share one build cache.
"""

from __future__ import annotations

import os
import re
import shutil

from portalis.worker.verify.base import (
    CheckUnavailable,
    Slots,
    Verdict,
    VerifySettings,
    run_tool,
    tool_version,
    verdict_of,
    write_if_changed,
)

SCRATCH_FILE = "translated.go"
HARNESS_FILE = "zz_portalis_main.go"
GO_MOD = "module portalis.check/translated\n\ngo 1.19\n"

_ERROR = re.compile(r"^(?:\./)?translated\.go:\d+(?::\d+)?: ")
_PACKAGE_MAIN = re.compile(r"^package\s+main\b", re.MULTILINE)
_FUNC_MAIN = re.compile(r"^func\s+main\s*\(\s*\)", re.MULTILINE)


def needs_harness(text: str) -> bool:
    """Whether a file is ``package main`` without a ``main`` function."""
    return _PACKAGE_MAIN.search(text) is not None and _FUNC_MAIN.search(text) is None


class GoChecker:
    """``go build`` per file; thread- and process-safe through its slots."""

    target = "go"

    def __init__(self, settings: VerifySettings) -> None:
        go = shutil.which("go")
        if go is None:
            raise CheckUnavailable("no Go toolchain: go is not on PATH")
        self.go = go
        self.timeout_seconds = settings.timeout_seconds
        self.root = settings.work_dir / "go"
        self._slots = Slots(self.root / "slots")
        self.toolchain = tool_version([go, "version"], env=self.env())

    def __repr__(self) -> str:
        return f"GoChecker(toolchain={self.toolchain!r}, root={str(self.root)!r})"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "GOCACHE": str(self.root / "cache"),
            "GOPATH": str(self.root / "path"),
            "GOPROXY": "off",
            "GOFLAGS": "-mod=mod",
            "GOTOOLCHAIN": "local",
            "GOWORK": "off",
            "CGO_ENABLED": "0",
        }

    def check(self, path: str, text: str) -> Verdict:
        with self._slots.hold() as slot:
            write_if_changed(slot / "go.mod", GO_MOD)
            (slot / "go.sum").unlink(missing_ok=True)
            write_if_changed(slot / SCRATCH_FILE, text)
            harness = slot / HARNESS_FILE
            if needs_harness(text):
                write_if_changed(harness, "package main\n\nfunc main() {}\n")
            else:
                harness.unlink(missing_ok=True)
            proc = run_tool([self.go, "build", "-o", os.devnull, "."], slot, self.env(), self.timeout_seconds)
        return verdict_of(proc, _ERROR, SCRATCH_FILE, path, self.toolchain)
