"""The controllers' gate to Redis, against a real redis-server: a busy operator is not a server that is down."""

from __future__ import annotations

import asyncio
import time

import redis

from portalis.controllers.redis_gate import RedisGate
from portalis_devcluster.servers import RedisServer


def test_calls_waiting_for_a_thread_do_not_count_against_the_server(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)

    def slow() -> int:
        time.sleep(0.3)  # the server answers; the caller's own work is what takes time
        return int(bool(client.ping()))

    async def main() -> list[int]:
        gate = RedisGate(call_seconds=0.5, threads=1)
        # one thread and four calls: the last waits 0.9 s for the thread, longer than call_seconds
        results = await asyncio.gather(*(gate.call(client, slow) for _ in range(4)))
        assert gate.down(client) is None
        return list(results)

    try:
        assert asyncio.run(main()) == [1, 1, 1, 1]
    finally:
        client.close()
