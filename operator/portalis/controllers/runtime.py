"""A level-triggered reconcile loop: a de-duplicating work queue of object keys and a pool of workers.

kopf's watch streams feed it: every event about a TranslationCluster, its RayCluster or its pods only
enqueues the cluster's key, and a worker reconciles the key from the watch caches (kopf indexes). As in
client-go's work queue, a key is queued at most once, never reconciled by two workers at once, re-queued if it
changed while being reconciled, and retried with exponential backoff when a reconcile fails.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from portalis.api.meta import Key

log = logging.getLogger("portalis.runtime")

T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next: nothing, or another look after ``requeue_after`` seconds."""

    requeue_after: float | None = None
    done: bool = False  # the object is gone: drop the key

    @classmethod
    def forget(cls) -> Result:
        return cls(done=True)


class WorkQueue:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._dirty: set[Key] = set()
        self._processing: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}

    def add(self, key: Key) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.put_nowait(key)

    def add_after(self, key: Key, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        when = loop.time() + delay
        if existing is not None and existing.when() <= when:
            return  # an earlier look is already scheduled
        if existing is not None:
            existing.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> Key:
        key = await self._queue.get()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: Key) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.put_nowait(key)

    def forget(self, key: Key) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def __len__(self) -> int:
        return self._queue.qsize()


def changed(seen: dict[Key, tuple[Any, ...]], key: Key, fingerprint: tuple[Any, ...] | None) -> bool:
    """Remember ``key``'s fingerprint (None: the object is gone); True when it differs from the one before or
    the object went away. Watch handlers enqueue a key only then: most events about an object are its status,
    written by Portalis itself."""
    if fingerprint is None:
        seen.pop(key, None)
        return True
    if seen.get(key) == fingerprint:
        return False
    seen[key] = fingerprint
    return True


class Controller:
    """Runs ``reconcile(key)`` for queued keys on ``workers`` concurrent tasks."""

    def __init__(
        self,
        name: str,
        reconcile: Callable[[Key], Awaitable[Result]],
        workers: int = 8,
        resync_seconds: float = 300.0,
        observe: Callable[[str, float, bool], None] | None = None,
    ) -> None:
        self.name = name
        self.queue = WorkQueue()
        self._reconcile = reconcile
        self._workers = workers
        self._resync = resync_seconds
        self._failures: dict[Key, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._observe = observe

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    def start(self) -> None:
        for i in range(self._workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            started = time.monotonic()
            ok = True
            try:
                result = await self._reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                ok = False
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                delay = min(0.5 * 2 ** (failures - 1), 60.0)
                log.exception(
                    "%s: reconcile of %s/%s failed (attempt %d); retrying in %.1fs",
                    self.name,
                    key[0],
                    key[1],
                    failures,
                    delay,
                )
                self.queue.add_after(key, delay)
            else:
                self._failures.pop(key, None)
                if not result.done:
                    after = result.requeue_after if result.requeue_after is not None else self._resync
                    self.queue.add_after(key, after)
            finally:
                self.queue.done(key)
                if self._observe is not None:
                    self._observe(self.name, time.monotonic() - started, ok)

    def forget(self, key: Key) -> None:
        self.queue.forget(key)
        self._failures.pop(key, None)
