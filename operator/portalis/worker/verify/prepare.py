"""``portalis worker toolchains``: make the compile checks ready to run offline, and say what they run with.

Run once where workers run: the worker image runs it at build time, ``make toolchains`` for the local worker.
With ``--fetch`` it downloads the Rust crate set (``crates/Cargo.lock``) into cargo's registry cache
(``$CARGO_HOME``); then it builds the crate set into the checks' shared target directory, so that no check
compiles a dependency, and checks a small file per target language, which also fills Go's build cache with the
standard library. It prints each toolchain and exits 1 when one that was asked for cannot check.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence

from portalis.worker.verify import TARGETS, Checkers, CheckUnavailable, VerifySettings
from portalis.worker.verify.base import run_tool
from portalis.worker.verify.rust import CRATES_DIR

SAMPLES = {
    "rust": (
        "sample.rs",
        '//! ```cargo\n//! [package]\n//! edition = "2021"\n//! [dependencies]\n//! anyhow = "*"\n//! ```\n\n'
        "extern crate anyhow;\nuse anyhow::Result;\n\npub fn add(a: i64, b: i64) -> Result<i64> {\n    Ok(a + b)\n}\n",
    ),
    "go": ("sample.go", 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("ok")\n}\n'),
    "cpp": ("sample.cpp", "#include <iostream>\n#include <vector>\n\nint main() { std::cout << 1; }\n"),
}
WARM_TIMEOUT_SECONDS = 1800.0


def host_triple() -> str:
    """The platform rustc builds for, such as x86_64-unknown-linux-gnu."""
    try:
        out = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise CheckUnavailable(f"cannot ask rustc for its host: {err}") from None
    for line in out.splitlines():
        if line.startswith("host:"):
            return line.split(":", 1)[1].strip()
    raise CheckUnavailable("rustc -vV names no host")


def prepare_rust(settings: VerifySettings, fetch: bool) -> None:
    """Fetch (with ``fetch``) and build the crate set into the target directory the checks share."""
    cargo = shutil.which("cargo")
    if cargo is None:
        raise CheckUnavailable("cargo is not on PATH")
    env = {**os.environ, "CARGO_TARGET_DIR": str(settings.work_dir / "rust" / "target"), "CARGO_TERM_COLOR": "never"}
    manifest = str(CRATES_DIR / "Cargo.toml")
    steps = [[cargo, "check", "--offline", "--locked", "--manifest-path", manifest]]
    if fetch:
        # only this platform's crates: the Windows ones alone would add 120 MB of sources to the cache
        host = host_triple()
        steps.insert(0, [cargo, "fetch", "--locked", "--target", host, "--manifest-path", manifest])
    for command in steps:
        proc = run_tool(command, settings.work_dir, env, WARM_TIMEOUT_SECONDS)
        if proc.returncode != 0:
            detail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise CheckUnavailable(f"{' '.join(command[:2])} of the crate set failed:\n{detail}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="portalis worker toolchains", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fetch", action="store_true", help="download the Rust crate set into cargo's registry cache first"
    )
    parser.add_argument(
        "--target",
        action="append",
        choices=TARGETS,
        help="a target language to make ready (repeatable; default: all of them)",
    )
    args = parser.parse_args(argv)
    settings = VerifySettings.from_env()
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    checkers = Checkers(settings)
    failed = []
    for target in args.target or TARGETS:
        started = time.monotonic()
        try:
            if target == "rust":
                prepare_rust(settings, args.fetch)
            name, text = SAMPLES[target]
            verdict = checkers.check(target, name, text)
            if not verdict.compiles:
                raise CheckUnavailable(f"the sample file does not compile: {'; '.join(verdict.diagnostics)}")
        except CheckUnavailable as err:
            print(f"{target}: cannot check: {err}", file=sys.stderr)
            failed.append(target)
            continue
        seconds = time.monotonic() - started
        print(f"{target}: ready, {checkers.get(target).toolchain} ({seconds:.1f}s)")
    print(f"compile checks work in {settings.work_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
