"""Return the items that workers on a quarantined node hold to their cluster's queue, at once.

Workers name themselves after their pod (``<pod>`` or ``<pod>/<translator>``) as Redis Streams consumers. When a
GPU node is quarantined, its workers' results cannot be trusted and the workers are about to be removed, so
every entry they hold is put back with ``RedisQueue.release``: a copy is queued for another worker without
using up one of the item's attempts, and the original is acknowledged, atomically and only while the same
consumer still holds it. An item a worker finishes anyway is counted once (the queue counts by item id), and
outputs have deterministic keys, so nothing is lost or written twice. Without this, the visibility timeout
redelivers the items later.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from redis.exceptions import ResponseError

from portalis.clients.queue import PRIOR_ATTEMPTS_FIELD, Delivery, RedisQueue, WorkItem

log = logging.getLogger("portalis.inflight")


def _s(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def held_by(queue: RedisQueue, pods: Collection[str]) -> list[Delivery]:
    """Entries held by consumers named after ``pods``, as deliveries that ``release`` accepts."""
    wanted = set(pods)
    out: list[Delivery] = []
    if not wanted:
        return out
    for stream in queue.streams:
        try:
            consumers: Any = queue.r.xinfo_consumers(stream, queue.group)
        except ResponseError:  # no stream or no group yet
            continue
        for consumer in consumers:
            name = _s(consumer.get("name"))
            if int(consumer.get("pending") or 0) == 0 or name.split("/", 1)[0] not in wanted:
                continue
            pending: Any = queue.r.xpending_range(
                stream, queue.group, min="-", max="+", count=10_000, consumername=name
            )
            for entry in pending:
                entry_id = _s(entry["message_id"])
                found: Any = queue.r.xrange(stream, min=entry_id, max=entry_id, count=1)
                if not found:
                    continue
                raw = found[0][1]
                prior = raw.get(PRIOR_ATTEMPTS_FIELD, raw.get(PRIOR_ATTEMPTS_FIELD.encode(), 0))
                out.append(
                    Delivery(
                        item=WorkItem.from_fields(raw),
                        stream=stream,
                        entry_id=entry_id,
                        attempt=int(_s(prior or 0)) + int(entry["times_delivered"]),
                        consumer=name,
                    )
                )
    return out


def release_held_by(queue: RedisQueue, pods: Collection[str]) -> list[str]:
    """Put back every item the workers of ``pods`` hold; returns the released item ids."""
    released = []
    for delivery in held_by(queue, pods):
        try:
            if queue.release(delivery):
                released.append(delivery.item.item_id)
        except Exception as exc:  # one bad entry must not keep the others in limbo
            log.warning("could not release item %s held by %s: %s", delivery.item.item_id, delivery.consumer, exc)
    return released
