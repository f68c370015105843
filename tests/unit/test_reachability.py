"""Whether a Redis server is called: the pure state machine, and the gate that runs calls through it.

The gate's tests use fake clients whose calls sleep in threads, with timeouts of a fraction of a second, and a
fake clock for the retry interval; nothing here opens a socket.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from portalis.controllers.redis_gate import RedisGate, Unreachable, server_failure
from portalis.desired.reachability import (
    ServerState,
    Verdict,
    answered,
    down_message,
    failed,
    probe_started,
    verdict,
)

RETRY = 10.0


# --- the state machine -------------------------------------------------------------------------------------


def test_a_new_server_is_probed_once_and_read_after_it_answers() -> None:
    new = ServerState()
    assert verdict(new, 0.0, RETRY) == Verdict.PROBE
    probing = probe_started(new, 0.0)
    assert verdict(probing, 0.1, RETRY) == Verdict.WAIT
    up = answered(probing, 0.2)
    assert verdict(up, 0.3, RETRY) == Verdict.READ
    assert verdict(up, 1e9, RETRY) == Verdict.READ


def test_a_failed_server_is_left_alone_until_its_retry_then_probed_once() -> None:
    down = failed(answered(ServerState(), 0.0), 5.0, "Timeout reading from socket")
    assert down.down and down.error == "Timeout reading from socket"
    assert verdict(down, 5.0, RETRY) == Verdict.DOWN
    assert verdict(down, 14.9, RETRY) == Verdict.DOWN
    assert verdict(down, 15.0, RETRY) == Verdict.PROBE
    probing = probe_started(down, 15.0)
    assert verdict(probing, 15.1, RETRY) == Verdict.WAIT
    assert verdict(failed(probing, 20.0, "again"), 21.0, RETRY) == Verdict.DOWN
    assert verdict(answered(probing, 16.0), 16.0, RETRY) == Verdict.READ


def test_the_down_message_is_stable_and_says_what_happens() -> None:
    one = down_message(failed(ServerState(), 1.0, "Timeout reading from socket"), RETRY)
    two = down_message(failed(ServerState(), 99.0, "Timeout reading from socket"), RETRY)
    assert one == two
    assert "Timeout reading from socket" in one and "every 10 s" in one and "worker count" in one


EVENTS = st.lists(st.sampled_from(["probe", "answer", "fail", "tick"]), max_size=40)


@given(EVENTS)
def test_one_probe_at_a_time_and_never_a_read_while_down(events: list[str]) -> None:
    state, now = ServerState(), 0.0
    for event in events:
        now += 1.0
        step = verdict(state, now, RETRY)
        if step == Verdict.DOWN:
            assert state.down and now - (state.failed_at or 0.0) < RETRY
        if event == "probe" and step == Verdict.PROBE:
            state = probe_started(state, now)
            assert verdict(state, now, RETRY) == Verdict.WAIT
        elif event == "answer":
            state = answered(state, now)
            assert verdict(state, now, RETRY) == Verdict.READ
        elif event == "fail":
            state = failed(state, now, "x")
            assert verdict(state, now, RETRY) == Verdict.DOWN
        elif event == "tick":
            now += RETRY / 3


# --- the gate ----------------------------------------------------------------------------------------------


class Pool:
    connection_kwargs = {"host": "10.0.0.1", "port": 6379}


class FakeRedis:
    """Answers PING after ``delay`` seconds (in the caller's thread), or raises ``error``."""

    def __init__(self, delay: float = 0.0, error: BaseException | None = None) -> None:
        self.delay = delay
        self.error = error
        self.pings = 0
        self.connection_pool = Pool()
        self._lock = threading.Lock()

    def ping(self) -> bool:
        with self._lock:
            self.pings += 1
        time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gate(clock: Clock) -> RedisGate:
    return RedisGate(call_seconds=0.3, probe_wait_seconds=0.05, retry_seconds=RETRY, threads=4, clock=clock)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_server_that_answers_is_probed_once_then_read_in_the_gates_threads() -> None:
    client, clock = FakeRedis(), Clock()

    async def scenario() -> list[str]:
        g = gate(clock)
        names = [await g.call(client, lambda: threading.current_thread().name) for _ in range(3)]  # type: ignore[arg-type]
        assert g.down(client) is None  # type: ignore[arg-type]
        return names

    names = run(scenario())
    assert client.pings == 1
    assert all(n.startswith("portalis-redis") for n in names), names


def test_a_server_that_never_answers_holds_no_caller_longer_than_the_probe_wait() -> None:
    client, clock = FakeRedis(delay=0.6), Clock()
    calls: list[int] = []
    woken: list[str] = []

    async def scenario() -> None:
        g = gate(clock)
        started = time.monotonic()
        # forty clusters on the one server, all at once: one probe, nobody waits longer than the probe wait
        results = await asyncio.gather(
            *(g.call(client, lambda: calls.append(1), wake=lambda i=i: woken.append(f"c{i}")) for i in range(40)),  # type: ignore[arg-type,misc]
            return_exceptions=True,
        )
        assert time.monotonic() - started < 0.25
        assert all(isinstance(r, Unreachable) and r.message is None for r in results), results
        assert client.pings == 1
        await asyncio.sleep(0.4)  # the probe gives up after call_seconds and wakes everyone who asked
        assert len(woken) == 40
        why = g.down(client)  # type: ignore[arg-type]
        assert why is not None and "does not answer: timed out after 0.3 s" in why
        started = time.monotonic()
        with pytest.raises(Unreachable) as info:
            await g.call(client, lambda: calls.append(1))  # type: ignore[arg-type]
        assert time.monotonic() - started < 0.01 and info.value.message == why
        clock.now += RETRY  # due again: one probe, shared
        await asyncio.gather(*(g.call(client, lambda: calls.append(1)) for _ in range(5)), return_exceptions=True)  # type: ignore[arg-type]
        assert client.pings == 2

    run(scenario())
    assert calls == []


def test_a_server_that_comes_back_is_read_again_after_its_probe() -> None:
    client, clock = (
        FakeRedis(error=redis.ConnectionError("Error 111 connecting to 10.0.0.1:6379. Connection refused.")),
        Clock(),
    )

    async def scenario() -> None:
        g = gate(clock)
        with pytest.raises(Unreachable) as info:
            await g.call(client, lambda: 1)  # type: ignore[arg-type]
        assert info.value.message is not None and "Connection refused" in info.value.message
        client.error = None
        with pytest.raises(Unreachable):
            await g.call(client, lambda: 1)  # type: ignore[arg-type]  # not due yet
        clock.now += RETRY
        assert await g.call(client, lambda: 7) == 7  # type: ignore[arg-type]
        assert g.down(client) is None  # type: ignore[arg-type]

    run(scenario())


def test_a_read_that_hangs_marks_the_server_down_and_frees_the_caller() -> None:
    client, clock = FakeRedis(), Clock()

    async def scenario() -> None:
        g = gate(clock)
        assert await g.call(client, lambda: 1) == 1  # type: ignore[arg-type]
        started = time.monotonic()
        with pytest.raises(Unreachable) as info:
            await g.call(client, lambda: time.sleep(1.0))  # type: ignore[arg-type]
        assert time.monotonic() - started < 0.5
        assert info.value.message is not None and "timed out after 0.3 s" in info.value.message
        assert g.down(client) is not None  # type: ignore[arg-type]

    run(scenario())


def test_errors_about_one_cluster_pass_through_and_leave_the_server_up() -> None:
    client, clock = FakeRedis(), Clock()

    def refuse() -> None:
        raise redis.AuthenticationError("invalid username-password pair or user is disabled.")

    def wrong_type() -> None:
        raise redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    async def scenario() -> None:
        g = gate(clock)
        for fn in (refuse, wrong_type):
            with pytest.raises(redis.RedisError):
                await g.call(client, fn)  # type: ignore[arg-type]
            assert g.down(client) is None  # type: ignore[arg-type]
        g.report(client, redis.ResponseError("no"))  # type: ignore[arg-type]
        assert g.down(client) is None  # type: ignore[arg-type]
        g.report(client, redis.TimeoutError("Timeout reading from socket"))  # type: ignore[arg-type]
        assert "Timeout reading from socket" in (g.down(client) or "")  # type: ignore[arg-type]

    run(scenario())


def test_a_probe_answered_with_an_error_about_credentials_counts_as_an_answer() -> None:
    client, clock = FakeRedis(error=redis.AuthenticationError("WRONGPASS")), Clock()

    async def scenario() -> None:
        g = gate(clock)
        assert await g.call(client, lambda: "read") == "read"  # type: ignore[arg-type]

    run(scenario())


@pytest.mark.parametrize(
    ("exc", "server"),
    [
        (redis.TimeoutError("Timeout reading from socket"), True),
        (redis.ConnectionError("Error 111 connecting"), True),
        (TimeoutError(), True),
        (ConnectionRefusedError(), True),
        (redis.AuthenticationError("WRONGPASS"), False),
        (redis.exceptions.AuthorizationError("NOAUTH"), False),
        (redis.ResponseError("ERR"), False),
        (ValueError("bad"), False),
    ],
)
def test_server_failures(exc: BaseException, server: bool) -> None:
    assert server_failure(exc) is server
