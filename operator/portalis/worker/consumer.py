"""The worker loop: take an item, translate it, write the output, report the outcome (one item at a time).

A plain library, so the same loop runs inside a Ray translator actor (``ray_driver``), as a local process
(``local``) and in tests. For each item: read the source from S3, look in the result cache, else call the engine;
check the translation with the target's compiler (when the job verifies; an engine that can repair is shown the
diagnostics and asked again, up to its ``repair_attempts``); write the translation to the item's deterministic
output key *before* acknowledging it, so a redelivered item
overwrites the same object instead of adding a second one; then ``complete`` it with the GPU-seconds it used
(wall time x the GPUs this worker holds). Problems that retrying cannot fix (missing or unreadable source, not
UTF-8, too large, an unsupported construct) fail the item at once; transient ones (a compile check that cannot run
here among them) leave it for redelivery. Each file ends as ``compiles``, ``translated`` (written, does not compile,
with the compiler's first diagnostics) or ``failed``. What each item took and how it ended goes to a
``StatsRecorder``, which the process serves as Prometheus metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import redis

from portalis.api.v1alpha1.job import Outcome
from portalis.clients.queue import Delivery, RedisQueue
from portalis.clients.store import Store, StoreError
from portalis.desired.plan import DEFAULT_MAX_FILE_BYTES, output_key
from portalis.worker.cache import UNVERIFIED, CachedAnswer, ResultCache, source_sha256
from portalis.worker.engines.base import Engine, EngineError, Repairer, Source, Translation, output_extension
from portalis.worker.metrics import StatsRecorder
from portalis.worker.verify import Checkers, CheckUnavailable, Verdict

log = logging.getLogger("portalis.worker")

# Store errors on the source that no retry can fix.
PERMANENT_READ_ERRORS = ("NotFound", "NoSuchBucket", "AccessDenied", "Unreadable", "TooLarge")
# Store errors on the output that no retry can fix (the job's output location is wrong).
PERMANENT_WRITE_ERRORS = ("NoSuchBucket", "AccessDenied")
# A worker beats every third of this; once it has not for this long, it is dead and another worker claims its items.
HEARTBEAT_TTL_SECONDS = 10

DONE, CACHED, FAILED, RETRY = "done", "cached", "failed", "retry"


@dataclass(frozen=True)
class Answer:
    """A translation ready to write: its text, what the compile check said and what it cost."""

    text: str
    outcome: str  # "compiles", "translated", or UNVERIFIED when the job does not check
    diagnostics: tuple[str, ...] = ()
    repair_rounds: int = 0
    tokens: int = 0

    @property
    def verdict(self) -> str:
        """The class counted for the job: "compiles", "translated", or "" (not checked)."""
        return "" if self.outcome == UNVERIFIED else self.outcome


def _repair(engine: Repairer, source: Source, previous: str, diagnostics: Sequence[str]) -> list[Translation]:
    return [engine.repair(source, previous, diagnostics)]


class _Retry(Exception):
    """A transient problem: leave the item for another attempt."""


def count_lines(text: str) -> int:
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def _read_reason(exc: StoreError, where: str) -> str:
    if exc.reason == "NotFound":
        return f"source not found: {where}"
    if exc.reason == "NoSuchBucket":
        return f"source bucket does not exist: {where}"
    if exc.reason == "AccessDenied":
        return f"access denied reading {where}"
    if exc.reason == "TooLarge":
        return f"source too large: {exc}"
    return f"source unreadable: {exc}"


class _Failed(Exception):
    """The engine cannot translate the file: fail the item for good."""

    def __init__(self, reason: str, tokens: int = 0) -> None:
        super().__init__(reason)
        self.tokens = tokens


class Worker:
    """Translates items from one cluster's queue; one Worker per thread or actor."""

    def __init__(
        self,
        queue: RedisQueue,
        store: Store,
        cache: ResultCache,
        engine: Engine,
        name: str,
        gpus: float = 1.0,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        clock: Callable[[], float] = time.monotonic,
        *,
        take_block_ms: int = 1000,
        heartbeat_ttl_seconds: int = HEARTBEAT_TTL_SECONDS,
        stats: StatsRecorder | None = None,
        checkers: Checkers | None = None,
    ) -> None:
        self.queue = queue
        self.checkers = checkers if checkers is not None else Checkers()
        self.store = store
        self.cache = cache
        self.engine = engine
        self.name = name
        self.gpus = gpus
        self.max_file_bytes = max_file_bytes
        self.clock = clock
        self.take_block_ms = take_block_ms
        self.heartbeat_ttl_seconds = heartbeat_ttl_seconds
        self.processed: dict[str, int] = {DONE: 0, CACHED: 0, FAILED: 0, RETRY: 0}
        self.stats = stats if stats is not None else StatsRecorder()
        self.stats.prime(engine.name)
        self._state: tuple[str, str | None, str | None] = ("idle", None, None)
        self._last_job: str | None = None  # uid of the job of the last item taken
        self._state_lock = threading.Lock()

    # --- one item ---

    def process(self, d: Delivery) -> str:
        """Translate one delivered item and report it; returns "done", "cached", "failed" or "retry"."""
        start = self.clock()
        outcome = self._process(d, start)
        self.stats.observe_item(self.engine.name, outcome, self.clock() - start)
        self.processed[outcome] = self.processed.get(outcome, 0) + 1
        return outcome

    def _process(self, d: Delivery, start: float) -> str:
        item = d.item
        where = f"s3://{item.source_bucket}/{item.source_key}"
        try:
            data = self.store.get_bytes(item.source_bucket, item.source_key, max_bytes=self.max_file_bytes)
        except StoreError as exc:
            if exc.reason in PERMANENT_READ_ERRORS:
                return self._fail(d, _read_reason(exc, where))
            return self._retry(d, f"reading {where}: {exc}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return self._fail(d, f"not UTF-8 text: {item.source_key} (invalid byte at offset {exc.start})")
        lines = count_lines(text)
        engine_name, engine_version = self.engine.name, self.engine.version
        cached = self.cache.get(engine_name, engine_version, item.target_language, text, self._servable(item.verify))
        self.stats.observe_cache(engine_name, hit=cached is not None)
        if cached is not None:
            answer = Answer(cached.text, cached.outcome, cached.diagnostics)
            failed = self._write(d, text, answer)
            if failed is not None:
                return failed
            gpu_seconds = (self.clock() - start) * self.gpus
            self.queue.complete(
                d, CACHED, gpu_seconds=gpu_seconds, lines=lines, verdict=answer.verdict, diagnostics=answer.diagnostics
            )
            self._observe(answer, lines)
            log.info("item %s of job %s: %s served from the result cache", item.item_id, item.job_name, item.path)
            return CACHED
        source = Source(
            path=item.path,
            text=text,
            source_language=item.source_language,
            target_language=item.target_language,
        )
        try:
            answer = self._translate(source, verify=item.verify)
        except _Retry as retry:
            return self._retry(d, str(retry))
        except _Failed as engine_failed:
            return self._fail(d, str(engine_failed))
        not_written = self._write(d, text, answer)
        if not_written is not None:
            return not_written
        self.cache.put(
            engine_name,
            engine_version,
            item.target_language,
            text,
            CachedAnswer(answer.text, answer.outcome, answer.diagnostics),
        )
        elapsed = self.clock() - start
        counted = self.queue.complete(
            d,
            DONE,
            gpu_seconds=elapsed * self.gpus,
            lines=lines,
            verdict=answer.verdict,
            diagnostics=answer.diagnostics,
            tokens=answer.tokens,
        )
        self._observe(answer, lines)
        log.info(
            "item %s of job %s: %s (%d lines) %s in %.2fs%s%s",
            item.item_id,
            item.job_name,
            item.path,
            lines,
            answer.outcome,
            elapsed,
            f" after {answer.repair_rounds} repair rounds" if answer.repair_rounds else "",
            "" if counted else " (already counted by an earlier delivery)",
        )
        return DONE

    def _servable(self, verify: bool) -> list[str]:
        """The cached outcomes this item may be answered with, best first. A job that checks its outputs takes
        only checked answers, and an engine that repairs gets another go at one that did not compile."""
        if not verify:
            return [Outcome.COMPILES, Outcome.TRANSLATED, UNVERIFIED]
        if isinstance(self.engine, Repairer) and self.engine.repair_attempts > 0:
            return [Outcome.COMPILES]
        return [Outcome.COMPILES, Outcome.TRANSLATED]

    def _translate(self, source: Source, verify: bool) -> Answer:
        """Translate ``source``, check it and, with an engine that repairs, correct it while it does not compile.
        Raises _Retry or _Failed."""
        engine_name = self.engine.name
        result = self._call(lambda: self.engine.translate([source]))
        tokens = result.tokens
        if not result.ok:
            reason = f"{engine_name} could not translate {source.path}: {result.error or 'no reason given'}"
            if result.permanent:
                raise _Failed(reason, tokens)
            raise _Retry(reason)
        if not verify:
            return Answer(result.text, UNVERIFIED, tokens=tokens)
        text, verdict = result.text, self._check(source, result.text)
        rounds = 0
        while not verdict.compiles and isinstance(self.engine, Repairer) and rounds < self.engine.repair_attempts:
            rounds += 1
            fixed = self._call(partial(_repair, self.engine, source, text, verdict.diagnostics))
            tokens += fixed.tokens
            if not fixed.ok:
                log.info("%s: repair round %d gave no file: %s", source.path, rounds, fixed.error)
                break
            text, verdict = fixed.text, self._check(source, fixed.text)
        return Answer(text, verdict.outcome, verdict.diagnostics, repair_rounds=rounds, tokens=tokens)

    def _call(self, call: Callable[[], list[Translation]]) -> Translation:
        """One engine call for one source; an engine that raises or answers oddly makes the item retry."""
        engine_name = self.engine.name
        try:
            results = call()
        except Exception as exc:  # an engine bug or outage must not take the worker down
            log.warning("engine %s raised: %s", engine_name, exc)
            raise _Retry(f"engine {engine_name} raised {type(exc).__name__}: {exc}") from None
        if len(results) != 1:
            raise _Retry(f"engine {engine_name} returned {len(results)} results for 1 source")
        return results[0]

    def _check(self, source: Source, text: str) -> Verdict:
        """The compiler's verdict on ``text``, its diagnostics naming the file as its output is named."""
        try:
            extension = output_extension(source.target_language)
            return self.checkers.check(source.target_language, output_key("", source.path, extension), text)
        except (CheckUnavailable, EngineError) as exc:
            raise _Retry(f"cannot check the {source.target_language} output of {source.path} here: {exc}") from None

    def _observe(self, answer: Answer, lines: int) -> None:
        self.stats.observe_lines(self.engine.name, lines)
        outcome = Outcome.TRANSLATED if answer.outcome == UNVERIFIED else answer.outcome
        self.stats.observe_file(self.engine.name, outcome, answer.repair_rounds, answer.tokens)

    def _write(self, d: Delivery, source_text: str, answer: Answer) -> str | None:
        item = d.item
        metadata = {
            "source-sha256": source_sha256(source_text),
            "engine": self.engine.name,
            "engine-version": self.engine.version,
            "outcome": answer.outcome,
        }
        try:
            self.store.put_bytes(item.output_bucket, item.output_key, answer.text.encode("utf-8"), metadata=metadata)
        except StoreError as exc:
            where = f"s3://{item.output_bucket}/{item.output_key}"
            if exc.reason in PERMANENT_WRITE_ERRORS:
                return self._fail(d, f"cannot write output {where}: {exc.reason}")
            return self._retry(d, f"writing {where}: {exc}")
        return None

    def _fail(self, d: Delivery, reason: str) -> str:
        self.stats.observe_file(self.engine.name, Outcome.FAILED)
        log.warning("item %s of job %s failed: %s", d.item.item_id, d.item.job_name, reason)
        self.queue.fail(d, reason)
        return FAILED

    def _retry(self, d: Delivery, reason: str) -> str:
        log.warning(
            "item %s of job %s will be retried (attempt %d): %s", d.item.item_id, d.item.job_name, d.attempt, reason
        )
        self.queue.retry_later(d, reason)
        return RETRY

    # --- the loop ---

    def _set_state(self, state: str, d: Delivery | None = None) -> None:
        new = (state, d.item.item_id if d else None, f"{d.item.job_namespace}/{d.item.job_name}" if d else None)
        with self._state_lock:
            changed = new != self._state
            self._state = new
        started = None
        if d is not None and d.item.job_uid != self._last_job:  # the first item of a job since another's
            started = self._last_job = d.item.job_uid
        if changed:
            self._beat(started=started)

    def _beat(self, ttl_seconds: int | None = None, started: str | None = None) -> None:
        with self._state_lock:
            state, item_id, job = self._state
        try:
            self.queue.heartbeat(
                self.name,
                state,
                item_id=item_id,
                job=job,
                ttl_seconds=ttl_seconds or self.heartbeat_ttl_seconds,
                started=started,
            )
        except redis.RedisError as exc:
            log.warning("worker %s: heartbeat failed: %s", self.name, exc)

    def _heartbeats(self, finished: threading.Event) -> None:
        interval = max(0.5, self.heartbeat_ttl_seconds / 3)
        while not finished.wait(interval):
            self._beat()

    def run(self, stop: threading.Event, idle_exit_seconds: float | None = None) -> None:
        """Work until ``stop`` is set (checked between items) or, with ``idle_exit_seconds``, until idle that long.

        An item taken after ``stop`` was set is released for another worker at once; an item being translated
        when it is set completes normally (engine calls are bounded by the engine's timeout).
        """
        log.info("worker %s: started on queue %s", self.name, self.queue.prefix)
        finished = threading.Event()
        beats = threading.Thread(target=self._heartbeats, args=(finished,), name=f"{self.name}-heartbeat", daemon=True)
        self._set_state("idle")
        self._beat()
        beats.start()
        idle_since = self.clock()
        backoff = 0.5
        try:
            while not stop.is_set():
                self._set_state("idle")
                try:
                    d = self.queue.take(self.name, block_ms=self.take_block_ms)
                except redis.RedisError as exc:
                    log.warning("worker %s: queue unavailable, retrying in %.1fs: %s", self.name, backoff, exc)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                backoff = 0.5
                if d is None:
                    if idle_exit_seconds is not None and self.clock() - idle_since >= idle_exit_seconds:
                        log.info("worker %s: idle for %.0fs, exiting", self.name, idle_exit_seconds)
                        break
                    continue
                if stop.is_set():
                    self._release(d)
                    break
                self._set_state("busy", d)
                try:
                    self.process(d)
                except Exception:  # the item stays pending and is redelivered after the visibility timeout
                    log.exception(
                        "worker %s: item %s of job %s not finished", self.name, d.item.item_id, d.item.job_name
                    )
                idle_since = self.clock()
        finally:
            finished.set()
            beats.join(timeout=5)
            self._set_state("idle")
            self._beat(ttl_seconds=1)  # gone: let the heartbeat expire at once
            log.info("worker %s: stopped (%s)", self.name, ", ".join(f"{k} {v}" for k, v in self.processed.items()))

    def _release(self, d: Delivery) -> None:
        try:
            if self.queue.release(d):
                log.info("worker %s: stopping, released item %s of job %s", self.name, d.item.item_id, d.item.job_name)
        except redis.RedisError as exc:  # it will be redelivered after the visibility timeout instead
            log.warning("worker %s: could not release item %s: %s", self.name, d.item.item_id, exc)
