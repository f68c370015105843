"""What the worker tests share: a cluster's queue, store and result cache on the real Redis and S3 servers,
jobs submitted as the job controller submits them, worker processes started and stopped, their metrics read."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from portalis.clients.queue import RedisQueue, WorkItem
from portalis.clients.store import Store
from portalis.desired.plan import build_plan
from portalis.worker.cache import ResultCache
from portalis.worker.consumer import Worker
from portalis.worker.engines import output_extension

VISIBILITY = 1.0
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Env:
    queue: RedisQueue
    store: Store
    cache: ResultCache
    bucket: str

    def worker(self, engine: Any, name: str = "w", **kw: Any) -> Worker:
        return Worker(
            self.queue, self.store, self.cache, engine, name, gpus=kw.pop("gpus", 2.0), take_block_ms=200, **kw
        )

    def submit(
        self,
        files: dict[str, bytes],
        max_attempts: int = 3,
        priority: str = "Batch",
        max_file_bytes: int = 1 << 20,
        verify: bool = False,
        target: str = "rust",
    ) -> tuple[str, list[WorkItem]]:
        """Upload ``files`` under a fresh prefix, plan them as the job controller does and enqueue them; with
        ``verify`` the workers check each output with ``target``'s compiler."""
        job_uid = str(uuid.uuid4())
        prefix = f"repos/{job_uid[:8]}/"
        for rel, data in files.items():
            self.store.put_bytes(self.bucket, prefix + rel, data)
        listing = [(o.key, o.size) for o in self.store.list(self.bucket, prefix)]
        plan = build_plan(
            listing,
            prefix,
            ["**/*.py"],
            [],
            f"translations/team-a/{job_uid[:8]}/",
            output_extension(target),
            max_file_bytes,
        )
        items = [
            WorkItem(
                job_namespace="team-a",
                job_name=f"job-{job_uid[:8]}",
                job_uid=job_uid,
                item_id=p.item_id,
                source_bucket=self.bucket,
                source_key=p.source_key,
                output_bucket=self.bucket,
                output_key=p.output_key,
                size_bytes=p.size_bytes,
                size_class=p.size_class,
                priority=priority,
                max_attempts=max_attempts,
                relative_path=p.relative_path,
                target_language=target,
                verify=verify,
            )
            for p in plan
        ]
        self.queue.enqueue(job_uid, items, 0)
        return job_uid, items

    def outputs(self, items: list[WorkItem]) -> dict[str, bytes]:
        prefix = items[0].output_key.rsplit("/", 1)[0].split("/")[:3]
        found = {
            o.key: self.store.get_bytes(self.bucket, o.key) for o in self.store.list(self.bucket, "/".join(prefix))
        }
        return found


@contextlib.contextmanager
def process(args: list[str], **kw: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A process started with ``args`` (output piped), killed on the way out if it still runs."""
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """SIGTERM ``proc`` and wait for it; its whole output."""
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=timeout)
    return (out or b"").decode()


def scrape(url: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return str(resp.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def sample_values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
