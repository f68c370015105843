"""The result cache: a translation is reused for the same source text, engine, engine version and target.

Workers look here before calling the engine and fill it after a successful translation. Entries live in the
cluster's Redis under ``portalis:cache:<engine>:<version>:<target>:<sha256 of the source>`` and expire after a
TTL (30 days by default), so a new engine version starts from an empty cache and old entries age out.
"""

from __future__ import annotations

import hashlib
import logging

import redis

log = logging.getLogger("portalis.worker.cache")

DEFAULT_TTL_SECONDS = 30 * 24 * 3600


def source_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(engine: str, version: str, target: str, source_text: str) -> str:
    return f"portalis:cache:{engine}:{version}:{target}:{source_sha256(source_text)}"


class ResultCache:
    """Translations by source digest; a cache that cannot be reached is a miss, never an error."""

    def __init__(self, client: redis.Redis, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        self.r = client
        self.ttl_seconds = ttl_seconds

    def get(self, engine: str, version: str, target: str, source_text: str) -> str | None:
        try:
            value = self.r.get(cache_key(engine, version, target, source_text))
        except redis.RedisError as exc:
            log.warning("result cache unavailable, translating without it: %s", exc)
            return None
        if value is None:
            return None
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    def put(self, engine: str, version: str, target: str, source_text: str, translated: str) -> None:
        try:
            self.r.set(cache_key(engine, version, target, source_text), translated.encode("utf-8"), ex=self.ttl_seconds)
        except redis.RedisError as exc:
            log.warning("result cache unavailable, not caching: %s", exc)
