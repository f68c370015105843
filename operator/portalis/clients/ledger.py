"""The GPU-time ledger of a cluster, kept in Redis beside its queue: one record per worker pod.

Records are written from pod timestamps as the operator observes pods (start when a pod starts running,
end when its deletion begins), keyed by pod uid so writing one twice changes nothing. A pod that vanished
while the operator was away is closed at the last time it was seen running. Spend is always recomputed from
the records (``portalis.desired.budget``), so a restart recomputes the same totals.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import redis

from portalis.api.meta import parse_time


@dataclass(frozen=True)
class PodTime:
    """One worker pod's GPU time as recorded: ``gpus`` from ``start`` to ``end`` (None: still running)."""

    pod_uid: str
    gpus: int
    start: datetime
    end: datetime | None
    spot: bool


RETENTION_SECONDS = 40 * 24 * 3600  # records older than the longest window (a month) plus margin


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse(value: Any) -> datetime | None:
    return parse_time(value)


class Ledger:
    def __init__(self, client: redis.Redis, namespace: str, cluster: str) -> None:
        self.r = client
        self.key = f"portalis:{{{namespace}/{cluster}}}:meter"

    def record(self, usages: Iterable[PodTime], seen: datetime) -> None:
        """Upsert live pods' records: start and GPUs as first seen, end once known, ``seen`` for the rest."""
        current = self._raw()
        pipe = self.r.pipeline(transaction=False)
        for u in usages:
            old = current.get(u.pod_uid)
            rec = {
                "gpus": u.gpus,
                "start": _ts(u.start),
                "end": _ts(u.end) or (old or {}).get("end"),
                "spot": u.spot,
                "seen": _ts(seen),
            }
            if old is not None:
                rec["start"] = old["start"]
                rec["gpus"] = old["gpus"]
            if rec != old:
                pipe.hset(self.key, u.pod_uid, json.dumps(rec))
        pipe.execute()

    def close_missing(self, live_uids: set[str], at: datetime) -> int:
        """Pods that are gone without a recorded end: end them when last seen running (never later)."""
        closed = 0
        for uid, rec in self._raw().items():
            if rec.get("end") is None and uid not in live_uids:
                rec["end"] = rec.get("seen") or _ts(at)
                self.r.hset(self.key, uid, json.dumps(rec))
                closed += 1
        return closed

    def end(self, pod_uid: str, at: datetime) -> None:
        """A pod was deleted: its record ends at ``at`` unless an end is already known."""
        rec = self._raw().get(pod_uid)
        if rec is not None and rec.get("end") is None:
            rec["end"] = _ts(at)
            self.r.hset(self.key, pod_uid, json.dumps(rec))

    def usages(self, now: datetime) -> list[PodTime]:
        out = []
        stale = []
        for uid, rec in self._raw().items():
            end = _parse(rec.get("end"))
            if end is not None and (now - end).total_seconds() > RETENTION_SECONDS:
                stale.append(uid)
                continue
            start = _parse(rec.get("start"))
            if start is None:
                continue
            out.append(PodTime(uid, int(rec.get("gpus", 0)), start, end, bool(rec.get("spot"))))
        if stale:
            self.r.hdel(self.key, *stale)
        return out

    def _raw(self) -> dict[str, dict[str, Any]]:
        raw = cast(dict[Any, Any], self.r.hgetall(self.key))
        return {(k.decode() if isinstance(k, bytes) else str(k)): json.loads(v) for k, v in raw.items()}
