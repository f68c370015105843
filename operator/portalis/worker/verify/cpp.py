"""The C++ check: the compiler's syntax and semantic check (``-fsyntax-only``) of each translated file.

``$CXX`` when set, else ``g++``, else ``clang++``, in C++17. Headers come from the system: an output that
includes a library the worker does not carry (py2many's C++ sometimes includes cppitertools) is reported by the
compiler as not compiling. Nothing is linked, so a file of functions needs no ``main``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from portalis.worker.verify.base import (
    CheckUnavailable,
    Verdict,
    VerifySettings,
    run_tool,
    tool_version,
    verdict_of,
)

SCRATCH_FILE = "translated.cpp"
STANDARD = "c++17"

_ERROR = re.compile(r"^translated\.cpp:\d+(?::\d+)?: (?:fatal )?error")


def find_compiler() -> str | None:
    for candidate in (os.environ.get("CXX", "").strip(), "g++", "clang++"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


class CppChecker:
    """``c++ -fsyntax-only`` per file, in a temporary directory of its own. Thread-safe."""

    target = "cpp"

    def __init__(self, settings: VerifySettings) -> None:
        compiler = find_compiler()
        if compiler is None:
            raise CheckUnavailable("no C++ compiler: neither $CXX, g++ nor clang++ is on PATH")
        self.compiler = compiler
        self.timeout_seconds = settings.timeout_seconds
        self.root = settings.work_dir / "cpp"
        self.toolchain = tool_version([compiler, "--version"])

    def __repr__(self) -> str:
        return f"CppChecker(toolchain={self.toolchain!r})"

    def check(self, path: str, text: str) -> Verdict:
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            (Path(tmp) / SCRATCH_FILE).write_text(text, encoding="utf-8")
            command = [self.compiler, f"-std={STANDARD}", "-fsyntax-only", "-fno-diagnostics-color", SCRATCH_FILE]
            proc = run_tool(command, Path(tmp), os.environ, self.timeout_seconds)
        return verdict_of(proc, _ERROR, SCRATCH_FILE, path, self.toolchain)
