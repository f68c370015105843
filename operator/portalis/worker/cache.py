"""The result cache: a translation is reused for the same source text, engine, engine version, target and outcome.

Workers look here before calling the engine and fill it after translating (and checking) a file. Entries live
in the cluster's Redis under ``portalis:cache:v2:<engine>:<version>:<target>:<outcome>:<sha256 of the source>``
and expire after a TTL (30 days by default), so a new engine version starts from an empty cache and old entries
age out. The engine version names the model and a digest of the options that change its answers.

The outcome is part of the key: ``compiles`` (the target's compiler accepted it), ``translated`` (written, does
not compile; the entry keeps the compiler's diagnostics) or ``unverified`` (written by a job that does not check
its outputs). A worker asks for the outcomes it may serve, best first, so a cached answer that does not compile is
never served as one that does, and an unchecked answer never stands in for a checked one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import redis

log = logging.getLogger("portalis.worker.cache")

DEFAULT_TTL_SECONDS = 30 * 24 * 3600
UNVERIFIED = "unverified"  # the outcome key of answers a job wrote without checking them
KEY_VERSION = "v2"


def source_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(engine: str, version: str, target: str, outcome: str, source_text: str) -> str:
    return f"portalis:cache:{KEY_VERSION}:{engine}:{version}:{target}:{outcome}:{source_sha256(source_text)}"


@dataclass(frozen=True)
class CachedAnswer:
    """A cached translation and how it ended when it was made."""

    text: str
    outcome: str  # "compiles", "translated" or "unverified"
    diagnostics: tuple[str, ...] = ()


class ResultCache:
    """Translations by source digest and outcome; a cache that cannot be reached is a miss, never an error."""

    def __init__(self, client: redis.Redis, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        self.r = client
        self.ttl_seconds = ttl_seconds

    def get(
        self, engine: str, version: str, target: str, source_text: str, outcomes: Sequence[str]
    ) -> CachedAnswer | None:
        """The first entry found among ``outcomes``, in that order; None when there is none."""
        if not outcomes:
            return None
        try:
            values = self.r.mget([cache_key(engine, version, target, o, source_text) for o in outcomes])
        except redis.RedisError as exc:
            log.warning("result cache unavailable, translating without it: %s", exc)
            return None
        for outcome, value in zip(outcomes, values, strict=True):
            if value is None:
                continue
            try:
                decoded = json.loads(value)
                return CachedAnswer(
                    text=str(decoded["text"]),
                    outcome=outcome,
                    diagnostics=tuple(str(d) for d in decoded.get("diagnostics") or ()),
                )
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a malformed result cache entry for outcome %s", outcome)
        return None

    def put(
        self,
        engine: str,
        version: str,
        target: str,
        source_text: str,
        answer: CachedAnswer,
    ) -> None:
        body = json.dumps({"text": answer.text, "diagnostics": list(answer.diagnostics)})
        try:
            self.r.set(
                cache_key(engine, version, target, answer.outcome, source_text),
                body.encode("utf-8"),
                ex=self.ttl_seconds,
            )
        except redis.RedisError as exc:
            log.warning("result cache unavailable, not caching: %s", exc)
