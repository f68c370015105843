"""The controllers' way to Redis: bounded calls, one shared probe per server, no waiting on a server that is down.

Queue depth, heartbeats and the cost ledger are read on reconcile workers. Each call runs in a thread pool of its
own, so a Redis that never answers cannot take the threads that Kubernetes and S3 calls need, and is bounded by
``asyncio.wait_for``, so a reconcile worker is free again after ``call_seconds`` whatever the socket does. Which
calls are made at all is decided per server (per Redis client, one per URL) by the state machine in
``portalis.desired.reachability``: a server that timed out or refused connections is not called again for
``retry_seconds``, and then one probe (``PING``), shared by every cluster on the server, decides whether it is
back. A reconcile that finds a probe in flight waits for it for ``probe_wait_seconds`` at most and goes on
without the queue; it is looked at again as soon as the probe ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import redis

from portalis.desired.reachability import (
    ServerState,
    Verdict,
    answered,
    down_message,
    failed,
    probe_started,
    verdict,
)

log = logging.getLogger("portalis.redis")

T = TypeVar("T")

CALL_SECONDS = 3.0  # a reconcile's calls to a Redis that answers take milliseconds
PROBE_WAIT_SECONDS = 0.2  # a PING to a server that answers takes a millisecond or so
RETRY_SECONDS = 10.0
THREADS = 32
THREAD_WAIT_SECONDS = 30.0  # the longest a call waits for one of the gate's threads (each call frees its own)


class Unreachable(Exception):
    """The server is down (``message`` says why, for a status), or not known yet (``message`` is None)."""

    def __init__(self, message: str | None) -> None:
        super().__init__(message or "the Redis server has not answered yet")
        self.message = message


def server_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the server does not answer, rather than that it refused these credentials or a
    command (which concern one cluster, not every cluster on the server)."""
    if isinstance(exc, redis.exceptions.AuthenticationError | redis.exceptions.AuthorizationError):
        return False
    return isinstance(exc, TimeoutError | OSError | redis.TimeoutError | redis.ConnectionError)


def server_name(client: redis.Redis) -> str:
    """Host and port (or socket path) of ``client``'s server, for log lines: never its URL, which may hold a
    password."""
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


def describe(exc: BaseException, call_seconds: float) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"timed out after {call_seconds:g} s"
    return str(exc) or type(exc).__name__


class RedisGate:
    """Per-server reachability for every Redis client the operator uses; all methods run on the event loop. The
    operator makes one (``controllers.root``), so every controller sees the same servers down."""

    def __init__(
        self,
        call_seconds: float = CALL_SECONDS,
        probe_wait_seconds: float = PROBE_WAIT_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
        threads: int = THREADS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.call_seconds = call_seconds
        self.probe_wait_seconds = probe_wait_seconds
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="portalis-redis")
        self._states: dict[redis.Redis, ServerState] = {}
        self._probes: dict[redis.Redis, asyncio.Task[None]] = {}
        self._wake: dict[redis.Redis, list[Callable[[], None]]] = {}

    def state(self, client: redis.Redis) -> ServerState:
        return self._states.get(client, ServerState())

    def down(self, client: redis.Redis) -> str | None:
        """Why ``client``'s server must not be called now, or None when it may be."""
        state = self.state(client)
        if verdict(state, self._clock(), self.retry_seconds) == Verdict.DOWN:
            return down_message(state, self.retry_seconds)
        return None

    def report(self, client: redis.Redis, exc: BaseException) -> None:
        """A failure seen by a caller that used ``client`` directly; marks the server down if it did not answer."""
        if server_failure(exc):
            self._fail(client, describe(exc, self.call_seconds))

    async def call(self, client: redis.Redis, fn: Callable[[], T], wake: Callable[[], None] | None = None) -> T:
        """``fn()`` (blocking calls on ``client``) in the gate's threads, within ``call_seconds``.

        Raises ``Unreachable`` without calling when the server is down or a probe has not answered within
        ``probe_wait_seconds``; ``wake`` is called when that probe ends. Other errors of ``fn`` pass through.
        """
        now = self._clock()
        state = self.state(client)
        step = verdict(state, now, self.retry_seconds)
        if step == Verdict.DOWN:
            raise Unreachable(down_message(state, self.retry_seconds))
        if step == Verdict.PROBE:
            self._states[client] = probe_started(state, now)
            self._probes[client] = asyncio.create_task(self._probe(client), name="redis-probe")
        if step in (Verdict.PROBE, Verdict.WAIT):
            probe = self._probes.get(client)
            if probe is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(probe), self.probe_wait_seconds)
                except TimeoutError:
                    if wake is not None:
                        self._wake.setdefault(client, []).append(wake)
                    raise Unreachable(None) from None
            state = self.state(client)
            if state.down:
                raise Unreachable(down_message(state, self.retry_seconds))
        return await self._run(client, fn)

    async def _run(self, client: redis.Redis, fn: Callable[[], T]) -> T:
        """``fn()`` in the gate's threads; ``call_seconds`` counts from when a thread starts it, so a busy
        operator (calls waiting for a thread) is not taken for a server that does not answer."""
        loop = asyncio.get_running_loop()
        began: asyncio.Future[None] = loop.create_future()

        def started() -> None:
            if not began.done():
                began.set_result(None)

        def run() -> T:
            loop.call_soon_threadsafe(started)
            return fn()

        call = loop.run_in_executor(self._pool, run)
        try:
            await asyncio.wait_for(asyncio.shield(began), THREAD_WAIT_SECONDS)
        except TimeoutError:
            call.cancel()  # not started: it never will be
            raise Unreachable(None) from None
        try:
            result = await asyncio.wait_for(call, self.call_seconds)
        except Exception as exc:
            if not server_failure(exc):
                raise
            self._fail(client, describe(exc, self.call_seconds))
            raise Unreachable(down_message(self.state(client), self.retry_seconds)) from exc
        if self.state(client).down:
            log.info("Redis at %s answers again", server_name(client))
        self._states[client] = answered(self.state(client), self._clock())
        return result

    def _fail(self, client: redis.Redis, error: str) -> None:
        if not self.state(client).down:
            log.warning(
                "Redis at %s does not answer (%s); its clusters are not read for %.0f s",
                server_name(client),
                error,
                self.retry_seconds,
            )
        self._states[client] = failed(self.state(client), self._clock(), error)

    async def _probe(self, client: redis.Redis) -> None:
        try:
            await self._run(client, client.ping)
        except Exception:  # recorded by _run when the server did not answer
            pass
        finally:
            self._probes.pop(client, None)
            state = self.state(client)
            if state.probing_since is not None:  # it answered, if only with an error about this client
                self._states[client] = answered(state, self._clock())
            for wake in self._wake.pop(client, []):
                wake()
