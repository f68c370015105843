"""The pure parts of the compile checks: what a translated Rust file declares, the scratch crate made for it,
how diagnostics are kept, and where checks work."""

from __future__ import annotations

import re
from pathlib import Path

from portalis.worker.verify import VerifySettings
from portalis.worker.verify.base import DIAGNOSTIC_CHARS, DIAGNOSTICS_KEPT, first_errors
from portalis.worker.verify.go import needs_harness
from portalis.worker.verify.rust import check_manifest, crate_set, declared, scratch_name

PY2MANY_HEADER = """//! ```cargo
//! [package]
//! edition = "2018"
//! [dependencies]
//! anyhow = "*"
//! email._policybase = "*"
//! float-ord = "*"
//! ```

#![allow(clippy::needless_return)]
extern crate anyhow;
"""


def test_a_header_declares_its_edition_and_crates() -> None:
    assert declared(PY2MANY_HEADER) == ("2018", ["anyhow", "email._policybase", "float-ord"])
    assert declared("pub fn f() {}\n") == ("2021", [])


def test_an_unformatted_header_counts_too() -> None:
    # without rustfmt, py2many leaves its header indented, sometimes after a #![feature] line
    unformatted = "#![feature(try_blocks)]\n" + "".join(
        "        " + line + "\n" if line.startswith("//!") else line + "\n" for line in PY2MANY_HEADER.splitlines()
    )
    assert declared(unformatted) == ("2018", ["anyhow", "email._policybase", "float-ord"])


def test_the_scratch_crate_takes_the_declared_crates_the_crate_set_pins() -> None:
    manifest = check_manifest(PY2MANY_HEADER)
    pinned = crate_set()
    assert f'anyhow = "={pinned["anyhow"]}"' in manifest
    assert f'float-ord = "={pinned["float-ord"]}"' in manifest
    assert "email" not in manifest  # not a crate: left out, so rustc reports it
    assert 'edition = "2018"' in manifest
    assert f'path = "{scratch_name(PY2MANY_HEADER)}"' in manifest


def test_the_crate_set_pins_one_version_of_each_crate_py2many_declares() -> None:
    assert set(crate_set()) >= {"anyhow", "lazy_static", "strum", "strum_macros", "flagset", "float-ord", "pylib"}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in crate_set().values())


def test_scratch_names_follow_the_content() -> None:
    assert scratch_name("a") == scratch_name("a") != scratch_name("b")
    assert re.fullmatch(r"src/[0-9a-f]{16}\.rs", scratch_name("a"))


def test_first_errors_keep_a_few_lines_named_as_the_output() -> None:
    output = "\n".join(
        [" Compiling x", "warning: unused"]
        + [f"src/abc.rs:{i}:1: error[E0425]: cannot find value `v{i}`" for i in range(1, 9)]
        + ["src/abc.rs:99:1: error: " + "x" * 500]
    )
    errors = first_errors(output, re.compile(r"^src/abc\.rs:\d+:\d+: error"), "src/abc.rs", "pkg/mod.rs")
    assert len(errors) == DIAGNOSTICS_KEPT
    assert errors[0] == "pkg/mod.rs:1:1: error[E0425]: cannot find value `v1`"
    long = first_errors(output.splitlines()[-1], re.compile("error"), "src/abc.rs", "m.rs")
    assert len(long[0]) == DIAGNOSTIC_CHARS and long[0].endswith("...")


def test_go_files_of_functions_get_a_main() -> None:
    assert needs_harness("package main\n\nfunc Add() int { return 1 }\n")
    assert not needs_harness('package main\n\nfunc main() {\n\tprintln("x")\n}\n')
    assert not needs_harness("package util\n\nfunc Add() int { return 1 }\n")


def test_settings_come_from_the_environment() -> None:
    assert VerifySettings.from_env({"PORTALIS_VERIFY_DIR": "/var/lib/v"}).work_dir == Path("/var/lib/v")
    settings = VerifySettings.from_env({"XDG_CACHE_HOME": "/c", "PORTALIS_VERIFY_TIMEOUT_SECONDS": "30"})
    assert (settings.work_dir, settings.timeout_seconds) == (Path("/c/portalis/verify"), 30.0)
