"""A cluster's queue as one object (consuming, job bookkeeping and observing over the same keys), and Redis
clients made for it."""

from __future__ import annotations

from typing import Any

import redis

from portalis.clients.queue.consuming import Consuming
from portalis.clients.queue.jobs import JobBook
from portalis.clients.queue.observing import Observing


class RedisQueue(Consuming, JobBook, Observing):
    """One cluster's queue on a Redis server; safe to share between threads (redis-py pools connections)."""


def redis_client(url: str, max_connections: int | None = None, socket_timeout: float = 30) -> redis.Redis:
    """A client for the Redis at ``url``. Workers keep the default 30 s so a blocking take finishes before the
    socket gives up; the operator, which never blocks on the queue, passes a short timeout so a Redis that
    accepts connections but never answers cannot hold its reconcile workers."""
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=min(5, socket_timeout),
        socket_keepalive=True,
        health_check_interval=15,
        retry_on_timeout=socket_timeout >= 30,
        max_connections=max_connections,
    )


def queue_for(url: str, namespace: str, cluster: str, **kw: Any) -> RedisQueue:
    """A queue on the Redis at ``url`` with a client of its own."""
    return RedisQueue(redis_client(url), namespace, cluster, **kw)
