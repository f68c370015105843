"""Compile checks of translated files, each with its target language's own toolchain.

Where it sits: after the engine writes a file, the worker asks ``Checkers.check`` whether the file compiles
(Rust: ``cargo check --offline``, Go: ``go build``, C++: ``-fsyntax-only``). The answer makes the item's outcome
``compiles`` or ``translated`` (written, with the compiler's first diagnostics); an engine that cannot translate a
file makes it ``failed`` before any check. A toolchain missing on this worker raises ``CheckUnavailable`` for its
language's items, which the worker leaves for another attempt rather than guess an outcome.
"""

from __future__ import annotations

import logging
import threading

from portalis.worker.verify.base import Checker, CheckUnavailable, Verdict, VerifySettings

log = logging.getLogger("portalis.worker.verify")

TARGETS = ("rust", "go", "cpp")

__all__ = ["TARGETS", "CheckUnavailable", "Checker", "Checkers", "Verdict", "VerifySettings", "load_checker"]


def load_checker(target: str, settings: VerifySettings) -> Checker:
    """The checker of ``target``; CheckUnavailable when its toolchain is not installed here."""
    if target == "rust":
        from portalis.worker.verify.rust import RustChecker

        return RustChecker(settings)
    if target == "go":
        from portalis.worker.verify.go import GoChecker

        return GoChecker(settings)
    if target == "cpp":
        from portalis.worker.verify.cpp import CppChecker

        return CppChecker(settings)
    raise CheckUnavailable(f"no compile check for target {target!r} (known: {', '.join(TARGETS)})")


class Checkers:
    """One checker per target language, each built on first use; shared by the worker threads of a process."""

    def __init__(self, settings: VerifySettings | None = None) -> None:
        self.settings = settings or VerifySettings.from_env()
        self._lock = threading.Lock()
        self._loaded: dict[str, Checker | CheckUnavailable] = {}

    def get(self, target: str) -> Checker:
        with self._lock:
            found = self._loaded.get(target)
            if found is None:
                try:
                    found = load_checker(target, self.settings)
                    log.info("compile check for %s: %s", target, found.toolchain)
                except CheckUnavailable as err:
                    log.warning("no compile check for %s on this worker: %s", target, err)
                    found = err
                self._loaded[target] = found
        if isinstance(found, CheckUnavailable):
            raise CheckUnavailable(str(found))
        return found

    def check(self, target: str, path: str, text: str) -> Verdict:
        """Whether ``text``, the translation of ``path`` into ``target``, compiles; CheckUnavailable when that
        cannot be told here."""
        return self.get(target).check(path, text)
