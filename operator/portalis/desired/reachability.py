"""Whether a Redis server answers, as the operator last saw it: a small, pure state machine per server.

The cluster controller reads each cluster's queue depth, worker heartbeats and cost ledger from Redis while it
holds one of its reconcile workers; the job controller drives jobs through the same servers. A server that
accepts connections and never answers (hung, overloaded, behind a firewall that drops packets) would hold a
worker for every call until the socket gives up, and enough clusters on it would leave no worker for anyone else.
So before a call the controllers ask this state machine, which answers like a circuit breaker:

- ``READ``: the server answered lately; call it (each call bounded in time).
- ``PROBE``: the server is new, or a failure is old enough to look again; this caller starts the one probe that
  every cluster on the server shares.
- ``WAIT``: a probe is in flight; wait for it briefly, never longer, and treat the queue as not known yet.
- ``DOWN``: the server failed lately; report why without calling it, until ``retry_seconds`` have passed.

A call that times out or cannot connect marks the server down. Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Verdict(StrEnum):
    READ = "Read"
    PROBE = "Probe"
    WAIT = "Wait"
    DOWN = "Down"


@dataclass(frozen=True)
class ServerState:
    """What is known about one server: when it last answered, when it last failed and why, and a probe in flight."""

    answered_at: float | None = None
    failed_at: float | None = None  # set only while the last outcome is a failure
    error: str = ""
    probing_since: float | None = None

    @property
    def down(self) -> bool:
        return self.failed_at is not None


def verdict(state: ServerState, now: float, retry_seconds: float) -> Verdict:
    """What a caller that wants the server now should do."""
    if state.probing_since is not None:
        return Verdict.WAIT
    if state.failed_at is not None:
        return Verdict.DOWN if now - state.failed_at < retry_seconds else Verdict.PROBE
    if state.answered_at is not None:
        return Verdict.READ
    return Verdict.PROBE


def probe_started(state: ServerState, now: float) -> ServerState:
    return replace(state, probing_since=now)


def answered(_state: ServerState, now: float) -> ServerState:
    """A call or probe got an answer: the server is up, whatever failed before."""
    return ServerState(answered_at=now)


def failed(state: ServerState, now: float, error: str) -> ServerState:
    """A call or probe got no answer; a probe in flight for the server, if any, is over."""
    return ServerState(answered_at=state.answered_at, failed_at=now, error=error)


def down_message(state: ServerState, retry_seconds: float) -> str:
    """Why the cluster's queue cannot be used, for its status and Events; stable while the error is the same."""
    error = state.error or "no answer"
    return (
        f"The cluster's Redis does not answer: {error}. The operator keeps the worker count and tries it again every "
        f"{retry_seconds:g} s."
    )
