"""translation-yield: the share of a real codebase's files each engine writes, and the share that compile.

The corpus is code no one here wrote: the ``email``, ``json``, ``http`` and ``logging`` packages of the Python
standard library that runs the benchmark (env PORTALIS_BENCH_YIELD_PACKAGES, comma-separated, picks others).
Portalis translates them as a job does: the files go to a real S3 server, are planned and queued on a real Redis
with verification on, and worker threads translate, check (``cargo check --offline`` per file) and count them;
the shares are read from the job's counters. The baseline, in the same run, is py2many's own command line
(``python -m py2many --rust --outdir OUT <package>``) on the same packages, each file it writes checked with the
same per-file cargo check. A file counts as written when there is output that is not py2many's ``FAILED``
marker.

Engines: ``py2many`` always; ``openai`` when PORTALIS_BENCH_OPENAI_ENDPOINT and PORTALIS_BENCH_OPENAI_MODEL name
an OpenAI-compatible server and model (with PORTALIS_BENCH_OPENAI_REPAIR_ATTEMPTS, default 2), else it is
listed as not measured. There is no goal: the figures are what they are, and the result line carries them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.common import Result, report
from portalis.clients.queue import RedisQueue, WorkItem
from portalis.clients.store import Store
from portalis.desired.plan import build_plan
from portalis.worker.cache import ResultCache
from portalis.worker.consumer import Worker
from portalis.worker.engines import Engine, load_engine
from portalis.worker.verify import Checkers, VerifySettings
from portalis_devcluster.servers import RedisServer, S3Server

PACKAGES = [p.strip() for p in os.environ.get("PORTALIS_BENCH_YIELD_PACKAGES", "email,json,http,logging").split(",")]
WORKER_THREADS = 2
CLI_TIMEOUT_SECONDS = 1800
BUCKET = "portalis-bench-yield"


@dataclass(frozen=True)
class Yield:
    name: str
    files: int
    written: int
    compiles: int
    seconds: float
    note: str = ""

    def share(self, n: int) -> float:
        return 100.0 * n / self.files if self.files else 0.0

    def row(self) -> str:
        if self.note:
            return f"{self.name:<28} {'-':>6}  {self.note}"
        return (
            f"{self.name:<28} {self.files:>6}  {self.written:>4} ({self.share(self.written):5.1f}%)"
            f"  {self.compiles:>4} ({self.share(self.compiles):5.1f}%)  {self.seconds:7.1f}s"
        )


def corpus() -> tuple[Path, list[Path]]:
    """The stdlib packages' directory and their .py files, relative to it."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for package in PACKAGES:
        if not (root / package / "__init__.py").is_file():
            raise SystemExit(f"{package} is not a package of the standard library at {root}")
        files += [p.relative_to(root) for p in sorted((root / package).rglob("*.py")) if "__pycache__" not in p.parts]
    return root, files


def portalis_yield(
    name: str, engine: Engine, root: Path, files: list[Path], queue: RedisQueue, store: Store, checkers: Checkers
) -> Yield:
    """Translate the corpus as a job: upload, plan, queue (verify on), work it off, read the job's counters."""
    job_uid = str(uuid.uuid4())
    prefix = f"sources/{job_uid[:8]}/"
    for rel in files:
        store.put_bytes(BUCKET, prefix + rel.as_posix(), (root / rel).read_bytes())
    listing = [(o.key, o.size) for o in store.list(BUCKET, prefix)]
    plan = build_plan(listing, prefix, ["**/*.py"], [], f"translations/{job_uid[:8]}/", ".rs")
    items = [
        WorkItem(
            job_namespace="bench", job_name="yield", job_uid=job_uid, item_id=p.item_id, source_bucket=BUCKET,
            source_key=p.source_key, output_bucket=BUCKET, output_key=p.output_key, size_bytes=p.size_bytes,
            size_class=p.size_class, priority="Batch", max_attempts=1, relative_path=p.relative_path, verify=True,
        )
        for p in plan
    ]  # fmt: skip
    queue.enqueue(job_uid, items, 0)
    cache = ResultCache(queue.r, ttl_seconds=3600)
    workers = [
        Worker(queue, store, cache, engine, f"bench-{i}", take_block_ms=200, checkers=checkers)
        for i in range(WORKER_THREADS)
    ]
    started = time.monotonic()
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop, 2.0)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    stats = queue.job_stats(job_uid)
    if stats.done + stats.failed != len(items):
        raise SystemExit(f"{name}: {stats.done + stats.failed} of {len(items)} items finished")
    return Yield(name, len(items), stats.done, stats.compiles, seconds)


def cli_yield(root: Path, files: list[Path], checkers: Checkers) -> Yield:
    """py2many's command line on each package, every file it writes checked as the worker checks outputs."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="portalis-yield-cli-") as tmp:
        for package in PACKAGES:
            shutil.copytree(root / package, Path(tmp) / "src" / package, ignore=shutil.ignore_patterns("__pycache__"))
            subprocess.run(
                [sys.executable, "-m", "py2many", "--rust", "--outdir", f"out/{package}", f"src/{package}"],
                cwd=tmp, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS, check=False,
            )  # fmt: skip
        written = compiles = 0
        for rel in files:
            out = Path(tmp) / "out" / rel.parts[0] / Path(*rel.parts[1:]).with_suffix(".rs")
            text = out.read_text(encoding="utf-8") if out.is_file() else ""
            if not text.strip() or text.strip() == "FAILED":
                continue
            written += 1
            compiles += checkers.check("rust", rel.with_suffix(".rs").as_posix(), text).compiles
    return Yield("py2many CLI (baseline)", len(files), written, compiles, time.monotonic() - started)


def engines() -> list[tuple[str, Engine | None, str]]:
    found: list[tuple[str, Engine | None, str]] = [("portalis, engine py2many", load_engine("py2many"), "")]
    endpoint = os.environ.get("PORTALIS_BENCH_OPENAI_ENDPOINT", "")
    model = os.environ.get("PORTALIS_BENCH_OPENAI_MODEL", "")
    if endpoint and model:
        repair = os.environ.get("PORTALIS_BENCH_OPENAI_REPAIR_ATTEMPTS", "2")
        found.append(
            (
                "portalis, engine openai",
                load_engine("openai", endpoint=endpoint, model=model, repair_attempts=repair),
                "",
            )
        )
    else:
        note = "not measured: no model server (set PORTALIS_BENCH_OPENAI_ENDPOINT and PORTALIS_BENCH_OPENAI_MODEL)"
        found.append(("portalis, engine openai", None, note))
    return found


def main() -> int:
    root, files = corpus()
    checkers = Checkers(VerifySettings.from_env())
    toolchain = checkers.get("rust").toolchain
    print(f"corpus: {len(files)} files of {', '.join(PACKAGES)} from {root} (Python {sys.version.split()[0]})")
    print(f"compile check: cargo check --offline per file, {toolchain}", flush=True)
    redis_server, s3_server = RedisServer().start(), S3Server().start()
    try:
        client = redis.Redis.from_url(redis_server.url)
        queue = RedisQueue(client, "bench", f"yield-{uuid.uuid4().hex[:6]}", visibility_timeout_seconds=600)
        queue.ensure_groups()
        store = Store(s3_server.endpoint, s3_server.region, s3_server.access_key, s3_server.secret_key)
        store.ensure_bucket(BUCKET)
        rows = []
        for name, engine, note in engines():
            if engine is None:
                rows.append(Yield(name, len(files), 0, 0, 0.0, note))
                continue
            rows.append(portalis_yield(name, engine, root, files, queue, store, checkers))
            print(rows[-1].row(), flush=True)
        baseline = cli_yield(root, files, checkers)
        client.close()
    finally:
        s3_server.stop()
        redis_server.stop()

    print(f"\n{'':<28} {'files':>6}  {'written':>12}  {'compile':>12}  {'time':>8}")
    for row in [*rows, baseline]:
        print(row.row())
    ours = rows[0]
    report(
        Result(
            bench="translation-yield",
            metric="share of the corpus' files whose Rust compiles (cargo check), engine py2many",
            unit="percent",
            values=[ours.share(ours.compiles)],
            baseline_name="py2many CLI on the same files, same check",
            baseline_values=[baseline.share(baseline.compiles)],
            goal="none: reported as measured",
            met=True,
            higher_is_better=True,
            extra={
                "corpus": PACKAGES,
                "files": len(files),
                "python": sys.version.split()[0],
                "toolchain": toolchain,
                "yield": {
                    r.name: {"written": r.written, "compiles": r.compiles, "seconds": round(r.seconds, 1)}
                    for r in [*rows, baseline]
                    if not r.note
                },
                "not_measured": {r.name: r.note for r in rows if r.note},
            },
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
