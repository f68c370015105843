"""The Rust check: ``cargo check --offline`` of each translated file as a crate of its own.

Each file becomes the library of a scratch crate whose dependencies are the crates its ``//! ```cargo``
header declares (as py2many writes it), at the versions the worker's crate set pins (``crates/Cargo.lock``
beside this module). Cargo runs offline: the crates come from the registry cache the worker image carries
(``CARGO_HOME``), which ``make toolchains`` fills for a local worker. A declared crate outside the set is left
out, so rustc reports it as missing; a file that uses another file of its job (``mod sibling;``) does not compile
on its own, and is reported so.

Scratch crates live in slots under ``<work dir>/rust`` and share one target directory, where the crate set's
dependencies are built once (``make toolchains`` and the image build them ahead). The file's name in a slot is
its content's digest: cargo decides what is fresh from modification times, which the filesystem keeps more
coarsely than cargo's clock, so a file rewritten in place just after a check could pass for the one checked.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tomllib
from functools import cache
from pathlib import Path

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

CRATES_DIR = Path(__file__).resolve().parent / "crates"
DEFAULT_EDITION = "2021"
EDITIONS = ("2015", "2018", "2021", "2024")

# py2many's header; indented when no rustfmt formatted the file
_HEADER = re.compile(r"^[ \t]*//! ```cargo\n(?P<body>(?:[ \t]*//!.*\n)*?)[ \t]*//! ```", re.MULTILINE)
_ERROR = re.compile(r"^src/[0-9a-f]{16}\.rs:\d+:\d+: error")

CHECK_TOML = """\
[package]
name = "portalis-check"
version = "0.0.0"
edition = "{edition}"
publish = false

[lib]
path = "{lib}"

[dependencies]
{dependencies}
[profile.dev]
debug = false
incremental = false
"""


@cache
def crate_set() -> dict[str, str]:
    """The crates a translated file may use, by name as a header declares it, with their pinned versions."""
    manifest = tomllib.loads((CRATES_DIR / "Cargo.toml").read_text(encoding="utf-8"))
    lock = tomllib.loads((CRATES_DIR / "Cargo.lock").read_text(encoding="utf-8"))
    versions: dict[str, list[str]] = {}
    for package in lock.get("package", []):
        versions.setdefault(package["name"], []).append(package["version"])
    out: dict[str, str] = {}
    for name in manifest.get("dependencies", {}):
        found = versions.get(name, [])
        if len(found) != 1:
            raise CheckUnavailable(f"the crate set's Cargo.lock has {len(found)} versions of {name}")
        out[name] = found[0]
    return out


def declared(text: str) -> tuple[str, list[str]]:
    """The edition and the dependency names a file's ``//! ```cargo`` header declares (none without one)."""
    match = _HEADER.search(text)
    if match is None:
        return DEFAULT_EDITION, []
    edition, names, section = DEFAULT_EDITION, [], ""
    for raw in match.group("body").splitlines():
        line = raw.strip().removeprefix("//!").strip()
        if line.startswith("["):
            section = line.strip("[]").strip()
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip().strip('"'), value.strip().strip('"')
        if section == "package" and key == "edition" and value in EDITIONS:
            edition = value
        elif section == "dependencies" and key:
            names.append(key)
    return edition, names


def scratch_name(text: str) -> str:
    """Where a file goes in its scratch crate: ``src/<digest of its text>.rs``."""
    return f"src/{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}.rs"


def check_manifest(text: str) -> str:
    """The scratch crate's Cargo.toml for a file: its edition and the declared crates the crate set has."""
    edition, names = declared(text)
    crates = crate_set()
    lines = [f'{name} = "={crates[name]}"' for name in sorted(set(names)) if name in crates]
    dependencies = "".join(line + "\n" for line in lines)
    return CHECK_TOML.format(edition=edition, lib=scratch_name(text), dependencies=dependencies)


class RustChecker:
    """``cargo check --offline`` per file; thread- and process-safe through its slots."""

    target = "rust"

    def __init__(self, settings: VerifySettings) -> None:
        cargo = shutil.which("cargo")
        if cargo is None or shutil.which("rustc") is None:
            raise CheckUnavailable("no Rust toolchain: cargo and rustc are not on PATH")
        self.cargo = cargo
        self.timeout_seconds = settings.timeout_seconds
        self.root = settings.work_dir / "rust"
        self.target_dir = self.root / "target"
        self._slots = Slots(self.root / "slots")
        self._lock_text = (CRATES_DIR / "Cargo.lock").read_text(encoding="utf-8")
        self.toolchain = tool_version(["rustc", "--version"])
        crate_set()  # a broken crate set fails at start-up, not on the first file

    def __repr__(self) -> str:
        return f"RustChecker(toolchain={self.toolchain!r}, root={str(self.root)!r})"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CARGO_TARGET_DIR": str(self.target_dir),
            "CARGO_TERM_COLOR": "never",
            "CARGO_NET_OFFLINE": "true",
        }

    def check(self, path: str, text: str) -> Verdict:
        scratch = scratch_name(text)
        with self._slots.hold() as slot:
            (slot / "src").mkdir(exist_ok=True)
            for old in (slot / "src").glob("*.rs"):
                if old.name != scratch.removeprefix("src/"):
                    old.unlink()
            write_if_changed(slot / scratch, text)
            manifest = check_manifest(text)
            if not (slot / "Cargo.toml").exists() or (slot / "Cargo.toml").read_text(encoding="utf-8") != manifest:
                (slot / "Cargo.toml").write_text(manifest, encoding="utf-8")
                (slot / "Cargo.lock").write_text(self._lock_text, encoding="utf-8")  # cargo trims it to the crate
            proc = run_tool(
                [self.cargo, "check", "--offline", "--quiet", "--message-format=short"],
                slot,
                self.env(),
                self.timeout_seconds,
            )
        # no diagnostic on the file: cargo failed before rustc looked at it (the crate set is not in its cache)
        return verdict_of(proc, _ERROR, scratch, path, self.toolchain)
