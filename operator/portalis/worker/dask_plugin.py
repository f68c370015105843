"""The Dask data plane: ``dask worker --preload portalis.worker.dask_plugin`` runs the Portalis worker loop inside
each Dask worker of a TranslationCluster with ``spec.backend: Dask``.

A Dask worker pod holds ``PORTALIS_GPUS_PER_WORKER`` GPUs and runs one worker loop per GPU (at least one), each on
a thread of its own and named ``<pod>/<i>`` like the Ray translator actors, so that the operator tells busy pods
from idle ones by their heartbeats. The loops read the settings every worker reads (``PORTALIS_*`` and ``AWS_*``,
which the operator puts in the pod's environment) and serve their Prometheus metrics on ``PORTALIS_METRICS_PORT``
(the DaskCluster sets 9090, port ``worker-metrics``). When the Dask worker closes (SIGTERM to the pod), each loop
finishes the item it is translating, or releases one it has just taken, before the worker goes.

Dask calls ``dask_setup`` when the worker starts and ``dask_teardown`` when it closes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portalis.clients.store import Store
from portalis.worker.local import (
    EngineFactory,
    WorkerSettings,
    build_queue,
    build_worker,
    default_name,
    default_visibility_timeout,
    serve_metrics,
)
from portalis.worker.metrics import StatsRecorder
from portalis.worker.verify import Checkers

log = logging.getLogger("portalis.worker.dask")


class SetupError(RuntimeError):
    """The worker loops cannot start: a setting is missing or the metrics port is taken."""


@dataclass
class Loops:
    """The threads of one Dask worker's loops and the event that stops them."""

    threads: list[threading.Thread]
    stop: threading.Event

    def close(self, timeout: float | None = None) -> bool:
        """Stop taking items and wait for the ones in hand; True when every loop has ended."""
        self.stop.set()
        for t in self.threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self.threads)


def settings_from_env(env: Mapping[str, str] | None = None) -> tuple[WorkerSettings, int]:
    """The worker settings and the number of loops (one per GPU, at least one) from a worker pod's environment."""
    env = os.environ if env is None else env
    needed = ("PORTALIS_NAMESPACE", "PORTALIS_CLUSTER", "PORTALIS_REDIS_URL")
    missing = [var for var in needed if not env.get(var)]
    if missing:
        raise SetupError(
            f"{', '.join(missing)} not set: the operator sets them on a TranslationCluster's worker pods "
            "(run the Dask worker from a TranslationCluster with spec.backend: Dask)"
        )
    gpus = float(env.get("PORTALIS_GPUS_PER_WORKER") or 1)
    loops = max(1, int(gpus))
    settings = WorkerSettings(
        namespace=env["PORTALIS_NAMESPACE"],
        cluster=env["PORTALIS_CLUSTER"],
        redis_url=env["PORTALIS_REDIS_URL"],
        engine=env.get("PORTALIS_ENGINE") or "py2many",
        gpus=gpus / loops,
        visibility_timeout_seconds=default_visibility_timeout(env),
    )
    return settings, loops


def start(
    name: str,
    env: Mapping[str, str] | None = None,
    *,
    engine_factory: EngineFactory | None = None,
    store: Store | None = None,
) -> Loops:
    """Build the worker loops named ``name/<i>`` and start them on threads; raises SetupError or EngineError."""
    env = os.environ if env is None else env
    settings, count = settings_from_env(env)
    stats = StatsRecorder()
    port = int(env.get("PORTALIS_METRICS_PORT") or 0)
    if not serve_metrics(stats, settings, port, env.get("PORTALIS_METRICS_HOST") or "0.0.0.0"):
        raise SetupError(f"cannot serve the worker metrics on port {port}")
    queue = build_queue(settings)
    queue.ensure_groups()
    store = store or Store.from_env()
    checkers = Checkers()
    workers = [
        build_worker(
            settings, f"{name}/{i}", queue=queue, store=store, engine_factory=engine_factory, stats=stats,
            checkers=checkers,
        )
        for i in range(count)
    ]  # fmt: skip
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,), name=w.name, daemon=True) for w in workers]
    for t in threads:
        t.start()
    log.info("%d worker loop(s) on queue %s, %g GPU(s) each", count, queue.prefix, settings.gpus)
    return Loops(threads, stop)


_RUNNING: dict[int, Loops] = {}  # id(dask worker) -> its loops


def log_to_stderr(level: str) -> None:
    """Dask sets up logging for its own loggers only: give Portalis' a handler of their own, as in the other
    worker processes."""
    logger = logging.getLogger("portalis")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())


def dask_setup(worker: Any) -> None:
    """Dask's preload hook: start this worker's loops, named after the pod (``POD_NAME``)."""
    log_to_stderr(os.environ.get("PORTALIS_LOG_LEVEL") or "INFO")
    _RUNNING[id(worker)] = start(default_name())


# After the loops have ended, the process leaves within this many seconds even if the Dask worker's own close is
# still trying to reach a scheduler that is gone (a whole DaskCluster deleted at once): nothing is left to lose.
EXIT_AFTER_TEARDOWN_SECONDS = 10.0


def _close_then_leave(loops: Loops, closed: threading.Event) -> None:
    loops.close()
    closed.set()
    time.sleep(EXIT_AFTER_TEARDOWN_SECONDS)
    os._exit(0)


async def dask_teardown(worker: Any) -> None:
    """Dask's preload hook on close: the loops finish (or release) the items in hand, then end.

    The closing runs on a thread of its own, which goes on if Dask cancels this hook (a SIGTERM during a close the
    scheduler started) and ends the process a little after the loops, should the Dask worker not exit by itself.
    """
    loops = _RUNNING.pop(id(worker), None)
    if loops is not None:
        log.info("Dask worker closing: finishing the items in hand")
        closed = threading.Event()
        threading.Thread(target=_close_then_leave, args=(loops, closed), name="portalis-close", daemon=True).start()
        await asyncio.to_thread(closed.wait)
