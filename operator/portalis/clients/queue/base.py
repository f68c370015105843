"""One cluster's queue keys on a Redis server, its consumer groups and its registered scripts: what consuming,
job bookkeeping and observing share."""

from __future__ import annotations

import redis
from redis.exceptions import ResponseError

from portalis.clients.queue import scripts
from portalis.clients.queue.items import PRIORITIES

DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 360.0
# a worker whose heartbeat expired stays this long in the workers set, where consumers learn that it died
DEAD_WORKER_MEMORY_SECONDS = 3600
PROGRESS_MAXLEN = 100_000  # finished items whose jobs a reader can still learn of
SCAN_CHUNK = 1000


class QueueBase:
    """The keys of one cluster's queue and the scripts registered on its client."""

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        cluster: str,
        visibility_timeout_seconds: float = DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
        group: str = "workers",
    ) -> None:
        self.r = client
        self.namespace = namespace
        self.cluster = cluster
        self.group = group
        self.visibility_timeout_seconds = visibility_timeout_seconds
        self.prefix = f"portalis:{{{namespace}/{cluster}}}"
        self.dlq = f"{self.prefix}:dlq"
        self.cancelled_key = f"{self.prefix}:cancelled"
        self.progress_key = f"{self.prefix}:progress"  # uids of jobs whose items finished, or that a worker began
        self.workers_key = f"{self.prefix}:workers"  # worker names scored by when their heartbeat expires
        self.jobs_key = f"{self.prefix}:jobs"  # job uid -> "namespace/name", for the jobs with items here
        self._groups_ready = False
        self._last_reclaim = float("-inf")
        self._cancelled_at = float("-inf")
        self._cancelled_cache: set[str] = set()
        self._complete = client.register_script(scripts.COMPLETE)
        self._fail = client.register_script(scripts.FAIL)
        self._release = client.register_script(scripts.RELEASE)
        self._record_failure = client.register_script(scripts.RECORD_FAILURE)
        self._mark_done = client.register_script(scripts.MARK_DONE)
        self._remove_waiting = client.register_script(scripts.REMOVE_WAITING)
        self._workers = client.register_script(scripts.WORKERS)
        self._orphan = client.register_script(scripts.ORPHAN)

    # --- keys ---

    def stream(self, priority: str) -> str:
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}; expected one of {', '.join(PRIORITIES)}")
        return f"{self.prefix}:q:{priority}"

    @property
    def streams(self) -> list[str]:
        return [self.stream(p) for p in PRIORITIES]

    def heartbeat_key(self, worker: str) -> str:
        return f"{self.prefix}:hb:{worker}"

    @staticmethod
    def job_key(job_uid: str, what: str) -> str:
        return f"portalis:job:{job_uid}:{what}"

    @property
    def _visibility_ms(self) -> int:
        return max(1, int(self.visibility_timeout_seconds * 1000))

    # --- setup ---

    def ensure_groups(self) -> None:
        """Create every priority stream and its consumer group (reading from the start); idempotent."""
        for stream in self.streams:
            try:
                self.r.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups_ready = True

    def _ready(self) -> None:
        if not self._groups_ready:
            self.ensure_groups()
