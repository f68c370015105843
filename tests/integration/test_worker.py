"""The worker loop end to end on a real Redis and a real S3 server: plan, queue, translate, write, count."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from typing_extensions import override

from portalis.clients.queue import Delivery, RedisQueue
from portalis.worker.cache import CachedAnswer, cache_key, source_sha256
from portalis.worker.consumer import Worker
from portalis.worker.engines.base import Source, Translation
from portalis_devcluster.cluster import free_port
from portalis_devcluster.servers import RedisServer, S3Server
from tests.integration.worker_kit import REPO, VISIBILITY, Env, process, sample_values, scrape, terminate


@dataclass
class UpperEngine:
    """A test engine: upper-cases the source; fails for good on "poison", once on "flaky", and can be held."""

    name: str = "upper"
    version: str = field(default_factory=lambda: uuid.uuid4().hex[:8])  # a fresh result cache for every test
    calls: list[str] = field(default_factory=list)
    hold: threading.Event | None = None
    holding: threading.Event = field(default_factory=threading.Event)

    def translate(self, sources: list[Source]) -> list[Translation]:
        out = []
        for s in sources:
            self.calls.append(s.path)
            if self.hold is not None:
                self.holding.set()
                self.hold.wait(30)
            if "poison" in s.path:
                out.append(Translation(ok=False, error="unsupported construct: metaclass", permanent=True))
            elif "flaky" in s.path and self.calls.count(s.path) == 1:
                out.append(Translation(ok=False, error="model server answered 503", permanent=False))
            elif "explode" in s.path:
                raise RuntimeError("engine crashed")
            else:
                out.append(Translation(ok=True, text=f"// {s.target_language}\n{s.text.upper()}"))
        return out


def twenty_files(tag: str) -> dict[str, bytes]:
    return {f"pkg{i % 3}/mod_{i:02d}.py": f"# {tag}\ndef f{i}(x):\n    return x + {i}\n".encode() for i in range(20)}


def run_threads(workers: list[Worker], idle_exit_seconds: float = 1.0) -> None:
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop, idle_exit_seconds)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)


def test_a_job_runs_end_to_end_and_a_rerun_is_served_from_the_cache(env: Env) -> None:
    files = twenty_files("v1")
    job, items = env.submit(files)
    assert len(items) == 20
    engine = UpperEngine()
    workers = [env.worker(engine, f"pod-{i}") for i in range(4)]
    run_threads(workers)

    outputs = env.outputs(items)
    assert sorted(outputs) == sorted(i.output_key for i in items)
    for item in items:
        source = files[item.relative_path].decode()
        assert outputs[item.output_key].decode() == "// rust\n" + source.upper()
        assert env.store.head(env.bucket, item.output_key) == {
            "source-sha256": source_sha256(source),
            "engine": "upper",
            "engine-version": engine.version,
            "outcome": "unverified",
        }
    stats = env.queue.job_stats(job)
    assert (stats.done, stats.cached, stats.failed, stats.enqueued) == (20, 0, 0, 20)
    assert stats.lines == 20 * 3
    assert stats.gpu_seconds > 0
    assert sorted(engine.calls) == sorted(i.relative_path for i in items)
    assert sum(w.processed["done"] for w in workers) == 20
    assert env.queue.backlog() == 0

    # The same sources in another job: every item comes from the result cache, no engine call.
    rerun, rerun_items = env.submit(files)
    cold = UpperEngine(version=engine.version)
    run_threads([env.worker(cold, f"pod-{i}") for i in range(2)])
    stats = env.queue.job_stats(rerun)
    assert (stats.done, stats.cached) == (20, 20)
    assert cold.calls == []
    assert len(env.outputs(rerun_items)) == 20
    source = files["pkg0/mod_00.py"].decode()
    unverified = ["unverified"]
    assert env.cache.get("upper", engine.version, "rust", source, unverified) == CachedAnswer(
        "// rust\n" + source.upper(), "unverified"
    )
    assert env.cache.get("upper", engine.version + "-next", "rust", source, unverified) is None  # a new version
    assert env.cache.get("upper", engine.version, "go", source, unverified) is None
    assert env.cache.get("upper", engine.version, "rust", source, ["compiles", "translated"]) is None  # unchecked
    assert 500 < env.queue.r.ttl(cache_key("upper", engine.version, "rust", "unverified", source)) <= 600


def test_a_worker_beginning_a_job_says_so_once_on_the_progress_stream(env: Env) -> None:
    # the operator leaves a job waiting in the queue alone until it hears of it: a worker beginning one of its
    # items (after another job's or none) appends its uid to the progress stream, as finishing an item does
    _, cursor = env.queue.progress_since(None)
    first, _ = env.submit({"a.py": b"a = 1\n", "b.py": b"b = 2\n"})
    second, _ = env.submit({"c.py": b"c = 3\n"})
    release = threading.Event()
    engine = UpperEngine(hold=release)
    thread = threading.Thread(target=env.worker(engine, "pod-1").run, args=(threading.Event(), 1.0))
    thread.start()
    try:
        assert engine.holding.wait(10)
        assert env.queue.progress_since(cursor)[0] == {first}  # begun, nothing finished yet
    finally:
        release.set()
        thread.join(30)
    assert not thread.is_alive()
    entries: Any = env.queue.r.xrange(env.queue.progress_key, min=f"({cursor}", max="+")
    told = [raw[b"job"].decode() for _id, raw in entries]
    # first: begun, a finished, b finished (same job, no second signal); second: begun, c finished
    assert sorted(told) == sorted([first, first, first, second, second])


def test_gpu_seconds_are_wall_time_times_gpus(env: Env) -> None:
    job, _ = env.submit({"a.py": b"x = 1\n"})
    ticks = iter([100.0, 103.5, 104.0])
    worker = env.worker(UpperEngine(), gpus=2.0, clock=lambda: next(ticks))
    d = env.queue.take("w")
    assert d is not None
    assert worker.process(d) == "done"
    assert env.queue.job_stats(job).gpu_seconds == pytest.approx(7.0)


def test_an_item_of_a_killed_worker_is_redelivered_and_written_once(env: Env) -> None:
    job, items = env.submit({"a.py": b"a = 1\n", "b.py": b"b = 2\n"})
    dead = env.queue.take("killed-pod")  # took an item and died without a word
    assert dead is not None

    class CrashBeforeAck(RedisQueue):
        @override
        def complete(
            self,
            d: Delivery,
            outcome: str,
            gpu_seconds: float,
            lines: int = 0,
            *,
            verdict: str = "",
            diagnostics: Sequence[str] = (),
            tokens: int = 0,
        ) -> bool:
            raise RuntimeError("killed after writing the output, before acknowledging it")

    crashing = CrashBeforeAck(env.queue.r, env.queue.namespace, env.queue.cluster, VISIBILITY)
    second = crashing.take("crashing-pod")
    assert second is not None
    crash_worker = Worker(crashing, env.store, env.cache, UpperEngine(), "crashing-pod")
    with pytest.raises(RuntimeError):
        crash_worker.process(second)
    assert env.store.head(env.bucket, second.item.output_key) is not None  # written, never acknowledged

    engine = UpperEngine()
    survivor = env.worker(engine, "survivor")
    started = time.monotonic()
    run_threads([survivor], idle_exit_seconds=VISIBILITY + 1.5)
    assert time.monotonic() - started >= VISIBILITY - 0.5  # it had to wait for the visibility timeout
    stats = env.queue.job_stats(job)
    assert (stats.done, stats.failed) == (2, 0)
    assert survivor.processed["done"] + survivor.processed["cached"] == 2
    assert sorted(env.outputs(items)) == sorted(i.output_key for i in items)  # one object per item
    assert env.queue.backlog() == 0


def test_an_item_of_a_sigkilled_worker_process_is_finished_by_another_within_seconds(
    env: Env, redis_server: RedisServer, s3_server: S3Server
) -> None:
    """The worker holding the item dies while its engine works on it; its heartbeat expires and the next worker
    that takes an item claims it, long before the visibility timeout (five minutes here)."""
    from tests.integration.test_openai_engine import OpenAIServer

    server = OpenAIServer("--delay", "120")  # every answer takes two minutes: the item stays in hand
    queue = RedisQueue(env.queue.r, env.queue.namespace, env.queue.cluster, 300)
    job, items = env.submit({"slow.py": b"def slow() -> int:\n    return 1\n"})
    proc_env = {
        **os.environ,
        **s3_server.client_env(),
        "PORTALIS_S3_FORCE_PATH_STYLE": "true",
        "PORTALIS_ENGINE_ENDPOINT": server.endpoint,
        "PORTALIS_ENGINE_MODEL": "test-model",
    }
    worker_args = ["--redis-url", redis_server.url, "--engine", "openai", "--visibility-timeout-seconds", "300"]
    where = ["--namespace", queue.namespace, "--cluster", queue.cluster, "--name", "doomed"]
    stop = threading.Event()
    survivor = Worker(queue, env.store, env.cache, UpperEngine(), "survivor")
    try:
        with process([sys.executable, "-m", "portalis", "worker", "run", *where, *worker_args], env=proc_env) as proc:
            deadline = time.monotonic() + 30
            while (queue.workers().get("doomed/0") or {}).get("state") != "busy":
                assert time.monotonic() < deadline and proc.poll() is None, "the worker never took the item"
                time.sleep(0.1)
            proc.kill()  # SIGKILL: no release, no last heartbeat
            proc.wait(10)
        killed = time.monotonic()
        thread = threading.Thread(target=survivor.run, args=(stop,))
        thread.start()
        while queue.job_stats(job).done < 1:
            assert time.monotonic() - killed < 60, "the dead worker's item was not claimed"
            time.sleep(0.1)
        recovered = time.monotonic() - killed
    finally:
        stop.set()
        server.stop()
    thread.join(30)
    stats = queue.job_stats(job)
    assert (stats.done, stats.failed) == (1, 0) and survivor.processed["done"] == 1
    assert list(env.outputs(items)) == [items[0].output_key]
    # the heartbeat (10 s) ran out and the next take claimed the item, long before the 300 s visibility timeout
    print(f"recovered {recovered:.1f}s after the kill")
    assert recovered < 30, recovered


def test_poison_non_utf8_too_large_and_missing_files_fail_by_name(env: Env) -> None:
    files = {
        "ok.py": b"x = 1\n",
        "pkg/poison.py": b"class M(type): pass\n",
        "latin1.py": "s = 'café'\n".encode("latin-1"),
        "big.py": b"#" * 5000,
        "gone.py": b"y = 2\n",
    }
    job, items = env.submit(files)
    env.store.s3.delete_object(Bucket=env.bucket, Key=next(i.source_key for i in items if i.path == "gone.py"))
    worker = env.worker(UpperEngine(), max_file_bytes=4096)
    run_threads([worker])

    stats = env.queue.job_stats(job)
    assert (stats.done, stats.failed) == (1, 4)
    by_path = {i.item_id: i for i in items}
    reasons = {by_path[item_id].path: reason for item_id, reason in stats.failed_items.items()}
    assert set(reasons) == {"pkg/poison.py", "latin1.py", "big.py", "gone.py"}
    assert reasons["pkg/poison.py"] == "upper could not translate pkg/poison.py: unsupported construct: metaclass"
    assert reasons["latin1.py"].startswith("not UTF-8 text: ") and reasons["latin1.py"].split(": ")[1].endswith(
        "latin1.py (invalid byte at offset 8)"
    )
    assert reasons["big.py"].startswith("source too large: ") and "5000 bytes" in reasons["big.py"]
    assert "big.py" in reasons["big.py"]
    assert reasons["gone.py"].startswith("source not found: s3://") and reasons["gone.py"].endswith("gone.py")
    dead = {item.path: reason for item, reason in env.queue.dead_letters()}
    assert dead == reasons
    assert worker.processed == {"done": 1, "cached": 0, "failed": 4, "retry": 0}
    assert list(env.outputs(items)) == [next(i.output_key for i in items if i.path == "ok.py")]


def test_transient_engine_failures_are_retried(env: Env) -> None:
    job, _ = env.submit({"flaky.py": b"z = 3\n", "explode.py": b"w = 4\n"}, max_attempts=2)
    engine = UpperEngine()
    worker = env.worker(engine)
    run_threads([worker], idle_exit_seconds=VISIBILITY * 3 + 1)
    stats = env.queue.job_stats(job)
    assert (stats.done, stats.failed) == (1, 1)  # flaky succeeded on its second attempt
    assert engine.calls.count("flaky.py") == 2
    assert engine.calls.count("explode.py") == 2  # then its attempts were used up
    [reason] = stats.failed_items.values()
    assert reason.startswith("exceeded maxAttemptsPerItem (2)") and "RuntimeError: engine crashed" in reason


def test_stop_finishes_the_item_in_hand(env: Env) -> None:
    job, _ = env.submit({f"m{i}.py": b"v = 1\n" for i in range(5)})
    hold = threading.Event()
    engine = UpperEngine(hold=hold)
    worker = env.worker(engine)
    stop = threading.Event()
    t = threading.Thread(target=worker.run, args=(stop,))
    t.start()
    assert engine.holding.wait(10)
    assert env.queue.workers()["w"]["state"] == "busy"
    stop.set()
    hold.set()
    t.join(10)
    assert not t.is_alive()
    assert env.queue.job_stats(job).done == 1
    [batch] = [d for d in env.queue.depth() if d.priority == "Batch"]
    assert (batch.waiting, batch.in_flight) == (4, 0)


def test_stop_during_take_releases_the_item(env: Env) -> None:
    job, _ = env.submit({"a.py": b"a = 1\n"}, max_attempts=1)
    stop = threading.Event()

    class StopWhileTaking(RedisQueue):
        def take(self, consumer: str, block_ms: int = 1000) -> Delivery | None:
            d = super().take(consumer, block_ms)
            stop.set()  # SIGTERM arrives while the item is being taken
            return d

    q = StopWhileTaking(env.queue.r, env.queue.namespace, env.queue.cluster, VISIBILITY)
    engine = UpperEngine()
    worker = Worker(q, env.store, env.cache, engine, "w", take_block_ms=200)
    worker.run(stop)
    assert engine.calls == []
    [batch] = [d for d in env.queue.depth() if d.priority == "Batch"]
    assert (batch.waiting, batch.in_flight) == (1, 0)
    again = env.queue.take("other", block_ms=0)
    assert again is not None and again.attempt == 1  # released without using its only attempt
    assert env.queue.job_stats(job).failed == 0


def test_the_heartbeat_disappears_after_a_graceful_stop(env: Env) -> None:
    worker = env.worker(UpperEngine(), "short-lived")
    stop = threading.Event()
    t = threading.Thread(target=worker.run, args=(stop,))
    t.start()
    deadline = time.monotonic() + 5
    while "short-lived" not in env.queue.workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert env.queue.workers()["short-lived"]["state"] == "idle"
    stop.set()
    t.join(10)
    time.sleep(1.2)
    assert "short-lived" not in env.queue.workers()


py2many_missing = importlib.util.find_spec("py2many") is None


@pytest.mark.skipif(py2many_missing, reason="py2many is not installed in this environment")
def test_the_py2many_engine_translates_a_job_to_rust(env: Env) -> None:
    from portalis.worker.engines import load_engine

    files = {
        "calc/add.py": b"def add(a: int, b: int) -> int:\n    return a + b\n",
        "calc/loop.py": b"def total(n: int) -> int:\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n",
        "broken.py": b"def f(:\n",
    }
    job, items = env.submit(files, verify=True)
    engine = load_engine("py2many")
    run_threads([env.worker(engine, "py2many-0")])
    stats = env.queue.job_stats(job)
    assert (stats.done, stats.failed, stats.compiles) == (2, 1, 2)
    outputs = env.outputs(items)
    add = next(outputs[i.output_key].decode() for i in items if i.path == "calc/add.py")
    assert "fn add(" in add
    [reason] = stats.failed_items.values()
    assert "broken.py" in reason and "SyntaxError" in reason
    assert all(key.endswith(".rs") for key in outputs)


@pytest.mark.skipif(py2many_missing, reason="py2many is not installed in this environment")
def test_portalis_worker_run_exits_cleanly_on_sigterm(env: Env, redis_server: RedisServer, s3_server: S3Server) -> None:
    job, items = env.submit({f"m{i}.py": f"def f{i}() -> int:\n    return {i}\n".encode() for i in range(6)})
    proc_env = {**os.environ, **s3_server.client_env(), "PORTALIS_S3_FORCE_PATH_STYLE": "true"}
    with process(
        [
            sys.executable,
            "-c",
            "import sys; from portalis.worker.local import main; sys.exit(main(sys.argv[1:]))",
            "--namespace",
            env.queue.namespace,
            "--cluster",
            env.queue.cluster,
            "--redis-url",
            redis_server.url,
            "--engine",
            "py2many",
            "--concurrency",
            "2",
            "--name",
            "local-test",
            "--visibility-timeout-seconds",
            str(VISIBILITY),
        ],
        env=proc_env,
    ) as proc:
        deadline = time.monotonic() + 30
        while env.queue.job_stats(job).done < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert env.queue.job_stats(job).done == 6
        assert set(env.queue.workers()) == {"local-test/0", "local-test/1"}
        out = terminate(proc, 20)
    assert proc.returncode == 0, out[-2000:]
    assert "received SIGTERM" in out
    assert len(env.outputs(items)) == 6


@pytest.mark.skipif(py2many_missing, reason="py2many is not installed in this environment")
def test_portalis_worker_run_serves_its_metrics(env: Env, redis_server: RedisServer, s3_server: S3Server) -> None:
    salt = uuid.uuid4().hex  # sources no other test has put in the result cache
    good = {f"m{i}.py": f"def f{i}_{salt}() -> int:\n    return {i}\n".encode() for i in range(4)}
    port = free_port()
    proc_env = {**os.environ, **s3_server.client_env(), "PORTALIS_S3_FORCE_PATH_STYLE": "true"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "portalis",
            "worker",
            "run",
            "--namespace",
            env.queue.namespace,
            "--cluster",
            env.queue.cluster,
            "--redis-url",
            redis_server.url,
            "--engine",
            "py2many",
            "--concurrency",
            "2",
            "--name",
            "metrics-test",
            "--visibility-timeout-seconds",
            str(VISIBILITY),
            "--metrics-port",
            str(port),
            "--metrics-host",
            "127.0.0.1",
        ],
        env=proc_env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    base = {"namespace": env.queue.namespace, "cluster": env.queue.cluster, "engine": "py2many"}
    try:
        # served from the start; every series of the engine is there at zero once its worker loops are built
        done = ("portalis_translation_duration_seconds_count", frozenset({**base, "outcome": "done"}.items()))
        deadline = time.monotonic() + 30
        while done not in (before := sample_values(scrape(url))):
            assert time.monotonic() < deadline, before
            time.sleep(0.1)
        assert before[done] == 0
        first, _ = env.submit({**good, "broken.py": b"def f(:\n"}, max_attempts=1)
        while (env.queue.job_stats(first).done, env.queue.job_stats(first).failed) != (4, 1):
            assert time.monotonic() < deadline, env.queue.job_stats(first)
            time.sleep(0.1)
        again, _ = env.submit(good)  # the same sources: every item from the result cache
        while env.queue.job_stats(again).cached != 4:
            assert time.monotonic() < deadline, env.queue.job_stats(again)
            time.sleep(0.1)
        text = scrape(url)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out.decode()[-2000:]

    found = sample_values(text)

    def value(name: str, **labels: str) -> float:
        return found.get((name, frozenset({**base, **labels}.items())), 0.0)

    count = "portalis_translation_duration_seconds_count"
    assert (value(count, outcome="done"), value(count, outcome="cached"), value(count, outcome="failed")) == (4, 4, 1)
    assert value(count, outcome="retry") == 0
    assert value("portalis_translation_duration_seconds_bucket", outcome="done", le="+Inf") == 4
    assert value("portalis_translation_duration_seconds_sum", outcome="done") > 0
    assert value("portalis_result_cache_lookups_total", result="miss") == 5  # the four and the broken file
    assert value("portalis_result_cache_lookups_total", result="hit") == 4
    assert value("portalis_translated_source_lines_total") == 16  # 4 files of 2 lines, translated and cached
    assert any(name == "process_resident_memory_bytes" for name, _ in found)
    if shutil.which("promtool"):
        check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr
