"""Fixtures of the integration tests (the servers they use come from the repository's conftest)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from portalis.clients.queue import RedisQueue
from portalis.clients.store import Store
from portalis.worker.cache import ResultCache
from portalis_devcluster.servers import RedisServer, S3Server
from tests.integration.worker_kit import VISIBILITY, Env


@pytest.fixture
def env(redis_server: RedisServer, s3_server: S3Server) -> Iterator[Env]:
    client = redis.Redis.from_url(redis_server.url)
    queue = RedisQueue(client, "team-a", f"c-{uuid.uuid4().hex[:8]}", visibility_timeout_seconds=VISIBILITY)
    queue.ensure_groups()
    store = Store(s3_server.endpoint, s3_server.region, s3_server.access_key, s3_server.secret_key)
    bucket = f"work-{uuid.uuid4().hex[:10]}"
    store.ensure_bucket(bucket)
    yield Env(queue, store, ResultCache(client, ttl_seconds=600), bucket)
    client.close()
