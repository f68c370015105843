"""kopf's settings for Portalis, applied by the start-up handler (``controllers.root``): bookkeeping out of the
CRs' status, no diff bases, no limit on kopf's per-object workers, and a thread pool sized for the I/O."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from typing_extensions import override

from portalis import GROUP
from portalis.clients import IO_THREADS


class NoDiffBase(kopf.DiffBaseStorage):
    """A diff-base storage for an operator without create/update/delete handlers, daemons or timers: the diff
    kopf computes for every event is only read by those, so none is built and none is stored."""

    @override
    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    @override
    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    @override
    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


async def configure(settings: kopf.OperatorSettings) -> None:
    # Blocking Kubernetes, Redis and S3 calls run in threads (asyncio.to_thread); the default pool of
    # cpu_count + 4 threads would queue one slow S3 listing behind another and stall every controller.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="portalis-io")
    )
    # Status is structural and owned by the controllers; kopf keeps its progress in annotations instead.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    registry = kopf.get_default_registry()
    if not registry._changing.get_all_handlers() and not registry._spawning.get_all_handlers():
        # Every handler is an event or index handler: no diff of an object is ever read, and building one (a
        # deep copy of every body) for every watch event cost more than the handlers themselves at fleet scale.
        settings.persistence.diffbase_storage = NoDiffBase()
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # Events are posted deliberately by the controllers; kopf's own per-handler chatter is kept to warnings.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    # No limit on kopf's per-object workers: the handlers of an indexed kind wait until every object of every
    # indexed kind has been indexed, and indexing needs a worker per object, so any limit below the number of
    # objects present at start-up (jobs, pods, nodes) would leave the operator waiting forever.
    settings.queueing.worker_limit = None
