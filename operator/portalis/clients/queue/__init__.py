"""The work queue: Redis Streams per cluster and priority, one consumer group, at-least-once delivery.

The job controller enqueues a job's planned items; workers ``take`` an item, translate it, write the output to S3
and ``complete`` it (or ``fail`` / ``retry_later``); the cluster controller reads ``depth``, ``backlog``,
``job_stats`` and worker heartbeats to scale and report. Nothing here knows Kubernetes.

Keys (the ``{namespace/cluster}`` hash tag keeps a cluster's queue keys in one Redis Cluster slot)::

    portalis:{ns/cluster}:q:<Priority>   stream of items, consumer group "workers"
    portalis:{ns/cluster}:dlq            dead-lettered items with their reason
    portalis:{ns/cluster}:hb:<worker>    worker heartbeat (JSON, expires)
    portalis:{ns/cluster}:cancelled      sorted set of cancelled job uids (score: when)
    portalis:job:<uid>:stats             hash: done, failed, cached, compiles, gpu_ms, lines, tokens
    portalis:job:<uid>:done              set of item ids counted as done
    portalis:job:<uid>:failed            hash: item id -> reason
    portalis:job:<uid>:errors            hash: item id -> last transient error (named in the dead-letter reason)
    portalis:job:<uid>:diagnostics       hash: item id -> JSON list of the compiler's first errors on its output
    portalis:job:<uid>:compiles          set of item ids whose output the target's compiler accepted
    portalis:job:<uid>:gpu_hours         hash: UTC epoch hour -> GPU milliseconds of items finished in it
    portalis:job:<uid>:enqueued          items enqueued so far (the next plan index to enqueue)
    portalis:job:<uid>:epoch             set on first enqueue; missing while the job runs means the queue was lost

Delivery is at least once: an item taken and not acknowledged within the visibility timeout (its worker died)
is reclaimed by another worker with XAUTOCLAIM, and after ``max_attempts`` deliveries it is dead-lettered.
Counting is exactly once: ``complete`` and ``fail`` record the item id in a set or hash and bump the job's
counters in the same Lua script, only when the id was not there yet; an item is done or failed, never both.

The job controller also holds a suspended job's waiting items (``remove_waiting``) and puts back whatever is
neither done, failed nor queued (``requeue_remaining``) on resume, after a stall, or, with ``mark_done`` for
outputs already in S3, when it rebuilds a lost queue from the job's plan.

The per-job keys carry no hash tag, so the Lua scripts that touch a stream and a job's keys together need a
standalone Redis (or a Redis Cluster where both map to one node).

Modules: ``items`` (the item schema and the figures read back), ``scripts`` (the Lua), ``base`` (keys, groups),
``consuming`` (workers), ``jobs`` (the job controller's bookkeeping), ``observing`` (depth, progress, heartbeats)
and ``client`` (``RedisQueue``, all three over one cluster's keys, and Redis clients).
"""

from portalis.clients.queue.base import DEFAULT_VISIBILITY_TIMEOUT_SECONDS, PROGRESS_MAXLEN
from portalis.clients.queue.client import RedisQueue, queue_for, redis_client
from portalis.clients.queue.consuming import DEAD_LETTER_MAXLEN
from portalis.clients.queue.items import PRIOR_ATTEMPTS_FIELD, PRIORITIES, Delivery, JobStats, QueueDepth, WorkItem
from portalis.clients.queue.observing import look_many

__all__ = [
    "DEAD_LETTER_MAXLEN",
    "DEFAULT_VISIBILITY_TIMEOUT_SECONDS",
    "PRIORITIES",
    "PRIOR_ATTEMPTS_FIELD",
    "PROGRESS_MAXLEN",
    "Delivery",
    "JobStats",
    "QueueDepth",
    "RedisQueue",
    "WorkItem",
    "look_many",
    "queue_for",
    "redis_client",
]
