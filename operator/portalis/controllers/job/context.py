"""What the job controller keeps between looks, and one look's view of a job."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from portalis.api.meta import Key
from portalis.clients.connections import Connections
from portalis.clients.kube import Kube, Ref
from portalis.config import OperatorConfig
from portalis.controllers.caches import Index, NodeCache, ObjectCache, SpecCache
from portalis.controllers.observer import QueueObserver
from portalis.controllers.redis_gate import RedisGate
from portalis.controllers.runtime import Controller
from portalis.desired.job_actions import Progress
from portalis.desired.job_status import RateTracker
from portalis.desired.plan import PlanItem

log = logging.getLogger("portalis.job")


@dataclass
class JobContext:
    """The job controller: its reconcile loop, what it reads (shared with the other controllers) and what it
    remembers of each job (plans, rates, the last progress, counters already exported)."""

    loop: Controller
    jobs: ObjectCache
    clusters: Index
    pods: Index
    nodes: NodeCache
    kube: Kube
    connections: Connections
    gate: RedisGate
    observer: QueueObserver
    specs: SpecCache
    config: OperatorConfig
    plans: OrderedDict[str, list[PlanItem]] = field(default_factory=OrderedDict)
    plan_items: int = 0  # items in all plans held
    rates: dict[str, RateTracker] = field(default_factory=dict)
    progress_at: dict[str, Progress] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)
    counted: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    seen: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    deleted: dict[Key, tuple[str, Key]] = field(default_factory=dict)  # job -> (uid, cluster), until cleaned up
    suspects: dict[Key, set[str]] = field(default_factory=dict)  # cluster -> uids without a job at the last sweep
    prices: dict[Key, tuple[float, Decimal]] = field(default_factory=dict)  # cluster -> (when, item GPU-hour price)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


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
