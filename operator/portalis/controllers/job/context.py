"""What the job controller keeps between looks, and one look's view of a job."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import kopf

from portalis import GROUP, VERSION
from portalis.clients.connections import Connections
from portalis.clients.kube import Kube, Ref
from portalis.controllers.caches import ObjectCache, Recent
from portalis.controllers.redis_gate import RedisGate
from portalis.controllers.runtime import Controller, Key
from portalis.desired.job_status import (
    RateTracker,
)
from portalis.desired.plan import PlanItem

log = logging.getLogger("portalis.job")

# Jobs carried this finalizer before queue clean-up moved to the deletion event and the sweep; it is still
# removed from jobs that have it, so that they can be deleted.
FINALIZER = f"{GROUP}/queue-cleanup"


TJ_API_VERSION = f"{GROUP}/{VERSION}"


@dataclass
class JobContext:
    controller: Controller
    jobs: ObjectCache
    clusters: kopf.Index[Key, dict[str, Any]]
    kube: Kube
    connections: Connections
    plans: OrderedDict[str, list[PlanItem]] = field(default_factory=OrderedDict)
    plan_items: int = 0  # items in all plans held
    rates: dict[str, RateTracker] = field(default_factory=dict)
    progress_at: dict[str, tuple[float, int]] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)
    counted: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    seen: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    deleted: dict[Key, tuple[str, Key]] = field(default_factory=dict)  # job -> (uid, cluster), until cleaned up
    suspects: dict[Key, set[str]] = field(default_factory=dict)  # cluster -> uids without a job at the last sweep
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    waiting: Recent[int] = field(default_factory=Recent)  # cluster -> items waiting in its queue
    busy: Recent[dict[str, int]] = field(default_factory=Recent)  # cluster -> job -> workers busy with it
    cluster_seen: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    redis: RedisGate = field(default_factory=RedisGate.shared)


@dataclass
class Job:
    """One reconcile's view of a job."""

    key: Key
    ref: Ref
    uid: str
    generation: int
    status: dict[str, Any]
    meta: dict[str, Any]
    created: datetime | None
    events: list[asyncio.Task[None]] = field(default_factory=list)  # this reconcile's Events, posted in order
    body: dict[str, Any] | None = None  # as the watch cache held it when this look began
