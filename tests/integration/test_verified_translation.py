"""Verified translations: every written output checked by the target's own compiler, on a real Redis and S3.

The compile checks run the real toolchains (cargo with the crate set from ``make toolchains``, go, g++); the
openai engine's repair loop runs against the project's OpenAI-compatible test server with scripted answers.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from portalis.worker.cache import CachedAnswer
from portalis.worker.engines import load_engine
from portalis.worker.engines.base import Source, Translation
from portalis.worker.engines.openai_engine import OpenAIEngine
from portalis.worker.verify import Checkers, VerifySettings
from tests.integration.test_openai_engine import OpenAIServer
from tests.integration.worker_kit import Env

RUST_OK = "pub fn add(a: i64, b: i64) -> i64 {\n    a + b\n}\n"
RUST_BROKEN = 'pub fn add(a: i64, b: i64) -> i64 {\n    a + b + "one"\n}\n'
RUST_ANYHOW = (
    '//! ```cargo\n//! [package]\n//! edition = "2021"\n//! [dependencies]\n//! anyhow = "*"\n//! ```\n\n'
    "extern crate anyhow;\nuse anyhow::Result;\n\npub fn half(n: i64) -> Result<i64> {\n    Ok(n / 2)\n}\n"
)
GO_OK = "package main\n\nfunc Add(a int, b int) int {\n\treturn a + b\n}\n"
GO_BROKEN = 'package main\n\nfunc Add(a int, b int) int {\n\treturn a + "b"\n}\n'
CPP_OK = (
    "#include <vector>\n\ninline int total(std::vector<int>& v) {\n  int s = 0;\n  for (int x : v) s += x;\n"
    "  return s;\n}\n"
)
CPP_BROKEN = "inline int total(int v) {\n  return v.size();\n}\n"


@pytest.fixture(scope="module")
def checkers() -> Checkers:
    return Checkers(VerifySettings.from_env())


# --- the checks themselves ---------------------------------------------------------------------------------


def test_rust_that_compiles_is_accepted_with_the_crates_it_declares(checkers: Checkers) -> None:
    assert checkers.check("rust", "pkg/add.rs", RUST_OK).compiles
    verdict = checkers.check("rust", "pkg/half.rs", RUST_ANYHOW)  # anyhow comes from the offline crate set
    assert verdict.compiles, verdict.diagnostics
    assert verdict.toolchain.startswith("rustc ")


def test_rust_that_does_not_compile_keeps_the_first_errors_named_as_the_output(checkers: Checkers) -> None:
    verdict = checkers.check("rust", "pkg/add.rs", RUST_BROKEN)
    assert not verdict.compiles
    assert verdict.diagnostics and verdict.diagnostics[0].startswith("pkg/add.rs:2:")
    assert "error" in verdict.diagnostics[0] and "\n" not in verdict.diagnostics[0]


def test_a_crate_outside_the_crate_set_is_reported_by_rustc(checkers: Checkers) -> None:
    # py2many turns `import email.utils` into a crate of that name; no such crate exists
    text = '//! ```cargo\n//! [dependencies]\n//! email = "*"\n//! ```\nextern crate email;\npub fn f() {}\n'
    verdict = checkers.check("rust", "mail/parse.rs", text)
    assert not verdict.compiles
    assert "email" in verdict.diagnostics[0] and verdict.diagnostics[0].startswith("mail/parse.rs:5:")


def test_go_and_cpp_are_checked_with_their_compilers(checkers: Checkers) -> None:
    assert checkers.check("go", "pkg/add.go", GO_OK).compiles  # package main without main(): judged on its code
    broken = checkers.check("go", "pkg/add.go", GO_BROKEN)
    assert not broken.compiles and broken.diagnostics[0].startswith("pkg/add.go:4:")
    assert checkers.check("cpp", "pkg/total.cpp", CPP_OK).compiles
    rejected = checkers.check("cpp", "pkg/total.cpp", CPP_BROKEN)
    assert not rejected.compiles and rejected.diagnostics[0].startswith("pkg/total.cpp:2:")


# --- outcomes through the worker ---------------------------------------------------------------------------


@dataclass
class ScriptedEngine:
    """Answers each file with the text named after it in ``answers``; a missing one is a permanent failure."""

    answers: dict[str, str]
    name: str = "scripted"
    version: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    calls: list[str] = field(default_factory=list)

    def translate(self, sources: list[Source]) -> list[Translation]:
        out = []
        for s in sources:
            self.calls.append(s.path)
            text = self.answers.get(s.path)
            if text is None:
                out.append(Translation.failure("unsupported construct: metaclass", permanent=True))
            else:
                out.append(Translation.success(text))
        return out


def run(env: Env, engine: object, checkers: Checkers) -> None:
    worker = env.worker(engine, "pod-v", checkers=checkers)
    while (d := env.queue.take(worker.name, block_ms=200)) is not None:
        worker.process(d)


def test_each_file_ends_as_compiles_translated_or_failed(env: Env, checkers: Checkers) -> None:
    files = {"good.py": b"def good(a, b): ...\n", "bad.py": b"def bad(a, b): ...\n", "meta.py": b"class M(type): ...\n"}
    job, items = env.submit(files, verify=True)
    engine = ScriptedEngine({"good.py": RUST_OK, "bad.py": RUST_BROKEN})
    run(env, engine, checkers)

    stats = env.queue.job_stats(job)
    assert (stats.done, stats.compiles, stats.failed) == (2, 1, 1)
    by_path = {i.relative_path: i for i in items}
    [diagnostics] = stats.diagnostics.values()
    assert list(stats.diagnostics) == [by_path["bad.py"].item_id]
    assert diagnostics[0].startswith("bad.rs:2:")  # named as the output, not as a scratch file
    assert "metaclass" in stats.failed_items[by_path["meta.py"].item_id]
    heads = {p: env.store.head(env.bucket, i.output_key) for p, i in by_path.items() if p != "meta.py"}
    assert {p: h["outcome"] for p, h in heads.items() if h} == {"good.py": "compiles", "bad.py": "translated"}

    # the cache keeps each answer under its outcome: the broken one is never found as a compiling one
    source = files["bad.py"].decode()
    assert env.cache.get(engine.name, engine.version, "rust", source, ["compiles"]) is None
    cached = env.cache.get(engine.name, engine.version, "rust", source, ["compiles", "translated"])
    assert cached is not None and cached.outcome == "translated" and cached.diagnostics == tuple(diagnostics)


def test_a_cached_answer_keeps_its_outcome(env: Env, checkers: Checkers) -> None:
    files = {"good.py": f"# {uuid.uuid4().hex}\n".encode(), "bad.py": f"# {uuid.uuid4().hex}\n".encode()}
    env.submit(files, verify=True)
    engine = ScriptedEngine({"good.py": RUST_OK, "bad.py": RUST_BROKEN})
    run(env, engine, checkers)
    rerun, _ = env.submit(files, verify=True)
    cold = ScriptedEngine({}, version=engine.version)
    run(env, cold, checkers)
    assert cold.calls == []
    stats = env.queue.job_stats(rerun)
    assert (stats.done, stats.cached, stats.compiles, len(stats.diagnostics)) == (2, 2, 1, 1)


def test_an_unchecked_cached_answer_is_not_served_to_a_job_that_checks(env: Env, checkers: Checkers) -> None:
    source = f"# {uuid.uuid4().hex}\ndef add(a, b): ...\n"
    engine = ScriptedEngine({"good.py": RUST_OK})
    env.cache.put(
        engine.name, engine.version, "rust", source, CachedAnswer("garbage that was never checked", "unverified")
    )
    job, _ = env.submit({"good.py": source.encode()}, verify=True)
    run(env, engine, checkers)
    assert engine.calls == ["good.py"]
    assert env.queue.job_stats(job).compiles == 1


def test_a_job_without_verification_writes_without_checking(env: Env, checkers: Checkers) -> None:
    job, items = env.submit({"bad.py": b"def add(a, b): ...\n"}, verify=False)
    run(env, ScriptedEngine({"bad.py": RUST_BROKEN}), checkers)
    stats = env.queue.job_stats(job)
    assert (stats.done, stats.compiles, stats.diagnostics) == (1, 0, {})
    assert (env.store.head(env.bucket, items[0].output_key) or {})["outcome"] == "unverified"


# --- the openai engine's repair loop -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm() -> Iterator[OpenAIServer]:
    srv = OpenAIServer("--delay", "0.3")
    yield srv
    srv.stop()


def script(srv: OpenAIServer, *answers: str) -> None:
    request = urllib.request.Request(
        f"{srv.base}/script", data=json.dumps({"answers": list(answers)}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def requests_seen(srv: OpenAIServer) -> list[list[dict[str, str]]]:
    with urllib.request.urlopen(f"{srv.base}/requests", timeout=5) as resp:
        seen: list[list[dict[str, str]]] = json.load(resp)["requests"]
    return seen


def test_the_repair_loop_turns_a_broken_answer_into_a_compiling_one_and_meters_both_rounds(
    env: Env, checkers: Checkers, llm: OpenAIServer
) -> None:
    llm.reset()
    broken = f"Here it is:\n\n```rust\n{RUST_BROKEN}```\n"
    fixed = f"```rust\n{RUST_OK}```\n"
    script(llm, broken, fixed)
    engine = load_engine("openai", endpoint=llm.endpoint, model="test-coder", repair_attempts="2")
    assert isinstance(engine, OpenAIEngine)
    source = f"# {uuid.uuid4().hex}\ndef add(a: int, b: int) -> int:\n    return a + b\n"
    job, items = env.submit({"calc/add.py": source.encode()}, verify=True)
    started = time.monotonic()
    run(env, engine, checkers)
    elapsed = time.monotonic() - started

    stats = env.queue.job_stats(job)
    assert (stats.done, stats.compiles, stats.failed, stats.diagnostics) == (1, 1, 0, {})
    assert env.store.get_bytes(env.bucket, items[0].output_key).decode() == RUST_OK
    seen = requests_seen(llm)
    assert len(seen) == 2  # the first answer and one repair round
    repair = seen[1]
    assert [m["role"] for m in repair] == ["system", "user", "assistant", "user"]
    assert RUST_BROKEN.strip() in repair[2]["content"]
    assert "calc/add.rs:2:" in repair[3]["content"]  # the compiler's diagnostic, named as the output
    # both rounds are metered: the server's usage of each reply, and the GPU time of both 0.3 s answers
    usage = [(len("\n".join(m["content"] for m in msgs if m["role"] == "user")) // 4) for msgs in seen]
    completions = [len(broken) // 4, len(fixed) // 4]
    assert stats.tokens == sum(usage) + sum(completions)
    assert 2 * 0.3 * 2.0 <= stats.gpu_seconds <= elapsed * 2.0 + 0.01


def test_the_repair_loop_stops_after_repair_attempts_and_keeps_the_last_diagnostics(
    env: Env, checkers: Checkers, llm: OpenAIServer
) -> None:
    llm.reset()
    broken = f"```rust\n{RUST_BROKEN}```\n"
    script(llm, broken, broken, broken, broken)
    engine = load_engine("openai", endpoint=llm.endpoint, model="test-coder", repair_attempts="1")
    source = f"# {uuid.uuid4().hex}\ndef add(a: int, b: int) -> int:\n    return a + b\n"  # not in the cache
    job, _ = env.submit({"calc/add.py": source.encode()}, verify=True)
    run(env, engine, checkers)
    stats = env.queue.job_stats(job)
    assert (stats.done, stats.compiles, len(stats.diagnostics)) == (1, 0, 1)
    assert len(requests_seen(llm)) == 2  # one answer, one repair round, no more
    assert stats.tokens > 0


def test_checks_in_quick_succession_and_in_parallel_judge_each_file_afresh(checkers: Checkers) -> None:
    # a slot is reused at once by the next file: its verdict must be that file's, not the previous one's
    texts = [RUST_OK if i % 2 else RUST_BROKEN for i in range(8)]
    assert [checkers.check("rust", "x.rs", t).compiles for t in texts] == [bool(i % 2) for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        verdicts = list(pool.map(lambda t: checkers.check("rust", "x.rs", t), texts))
    assert [v.compiles for v in verdicts] == [bool(i % 2) for i in range(8)]
