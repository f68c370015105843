"""``portalis worker run``: the worker loop as a local process, with N threads, until SIGTERM or SIGINT.

Reads the queue, engine and storage settings that the worker pods get from the operator (``PORTALIS_*`` and
``AWS_*`` environment variables), with command-line flags to override them. Also the shared wiring that builds a
``Worker`` from settings, used by the Ray translator actors as well. On SIGTERM each thread finishes the item it
is translating (or releases one it has just taken) and the process exits 0. With ``--metrics-port`` it serves the
workers' Prometheus metrics (``portalis.worker.metrics``) on ``GET /metrics``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import redis

from portalis.clients.queue import DEFAULT_VISIBILITY_TIMEOUT_SECONDS, RedisQueue, queue_for
from portalis.clients.store import Store
from portalis.desired.plan import DEFAULT_MAX_FILE_BYTES
from portalis.worker.cache import DEFAULT_TTL_SECONDS, ResultCache
from portalis.worker.consumer import Worker
from portalis.worker.engines import ENV_SETTINGS, Engine, EngineError, load_engine
from portalis.worker.metrics import StatsRecorder, serve
from portalis.worker.verify import Checkers

log = logging.getLogger("portalis.worker")

EngineFactory = Callable[[], Engine]


def engine_settings_from_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The engine settings the operator puts in the worker pods' environment (``PORTALIS_ENGINE_*``), as strings."""
    env = os.environ if env is None else env
    return {key: env[var] for key, var in ENV_SETTINGS.items() if env.get(var)}


@dataclass(frozen=True)
class WorkerSettings:
    """Everything needed to build a Worker in this or another process (a Ray actor): picklable, and without the
    engine's API key, which each process reads from its own environment when ``engine_settings`` is None."""

    namespace: str
    cluster: str
    redis_url: str
    engine: str = "py2many"
    engine_settings: dict[str, str] | None = None  # None: PORTALIS_ENGINE_* of the process that builds the engine
    gpus: float = 1.0
    visibility_timeout_seconds: float = DEFAULT_VISIBILITY_TIMEOUT_SECONDS
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    cache_ttl_seconds: int = DEFAULT_TTL_SECONDS
    take_block_ms: int = 1000


def build_queue(settings: WorkerSettings) -> RedisQueue:
    return queue_for(
        settings.redis_url,
        settings.namespace,
        settings.cluster,
        visibility_timeout_seconds=settings.visibility_timeout_seconds,
    )


def load_configured_engine(settings: WorkerSettings) -> Engine:
    engine_settings = settings.engine_settings
    if engine_settings is None:
        engine_settings = engine_settings_from_env()
    return load_engine(settings.engine, **engine_settings)


def build_worker(
    settings: WorkerSettings,
    name: str,
    *,
    queue: RedisQueue | None = None,
    store: Store | None = None,
    engine_factory: EngineFactory | None = None,
    stats: StatsRecorder | None = None,
    checkers: Checkers | None = None,
) -> Worker:
    """A Worker for ``settings``; queue, store, stats and checkers may be shared between the workers of one
    process."""
    queue = queue or build_queue(settings)
    engine = engine_factory() if engine_factory is not None else load_configured_engine(settings)
    return Worker(
        queue=queue,
        store=store or Store.from_env(),
        cache=ResultCache(queue.r, ttl_seconds=settings.cache_ttl_seconds),
        engine=engine,
        name=name,
        gpus=settings.gpus,
        max_file_bytes=settings.max_file_bytes,
        take_block_ms=settings.take_block_ms,
        stats=stats,
        checkers=checkers,
    )


def default_name() -> str:
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def default_visibility_timeout(env: Mapping[str, str] | None = None) -> float:
    """PORTALIS_VISIBILITY_TIMEOUT_SECONDS, else the engine timeout plus a minute to write the output, else 360s."""
    env = os.environ if env is None else env
    if env.get("PORTALIS_VISIBILITY_TIMEOUT_SECONDS"):
        return float(env["PORTALIS_VISIBILITY_TIMEOUT_SECONDS"])
    if env.get("PORTALIS_ENGINE_TIMEOUT_SECONDS"):
        return float(env["PORTALIS_ENGINE_TIMEOUT_SECONDS"]) + 60.0
    return DEFAULT_VISIBILITY_TIMEOUT_SECONDS


def add_worker_arguments(p: argparse.ArgumentParser) -> None:
    """Queue, engine and limits flags shared by ``portalis worker run`` and the Ray driver."""
    env = os.environ.get
    p.add_argument("--namespace", default=env("PORTALIS_NAMESPACE"), help="namespace of the TranslationCluster")
    p.add_argument("--cluster", default=env("PORTALIS_CLUSTER"), help="name of the TranslationCluster")
    p.add_argument("--redis-url", default=env("PORTALIS_REDIS_URL"), help="queue URL (env PORTALIS_REDIS_URL)")
    p.add_argument("--engine", default=env("PORTALIS_ENGINE") or "py2many", help="py2many or openai")
    p.add_argument(
        "--visibility-timeout-seconds",
        type=float,
        default=default_visibility_timeout(),
        help=(
            "an item not finished this long after it was taken is handed to another worker "
            "(default: the engine timeout plus 60s, as the operator uses)"
        ),
    )
    p.add_argument("--max-file-bytes", type=int, default=DEFAULT_MAX_FILE_BYTES, help="larger sources fail")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=int(env("PORTALIS_METRICS_PORT") or 0),
        help="serve Prometheus /metrics on this port (env PORTALIS_METRICS_PORT; default 0: off)",
    )
    p.add_argument("--metrics-host", default="0.0.0.0", help="address of /metrics")
    p.add_argument("--log-level", default=env("PORTALIS_LOG_LEVEL") or "INFO")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="portalis worker run",
        description="Translate items from a TranslationCluster's queue until stopped (SIGTERM or SIGINT).",
    )
    add_worker_arguments(p)
    p.add_argument("--concurrency", type=int, default=1, help="worker threads, each taking one item at a time")
    p.add_argument("--name", default=default_name(), help="worker (pod) name in heartbeats; threads add /<i>")
    p.add_argument(
        "--gpus",
        type=float,
        default=float(os.environ.get("PORTALIS_GPUS_PER_WORKER") or 1),
        help="GPUs this process holds, shared by its threads when metering GPU-seconds",
    )
    p.add_argument("--idle-exit-seconds", type=float, default=None, help="exit after this long without work")
    return p


def settings_from_args(args: argparse.Namespace, p: argparse.ArgumentParser, gpus: float) -> WorkerSettings:
    """Worker settings from the shared flags; ``gpus`` is what each worker holds, for metering."""
    missing = [flag for flag, value in (("--namespace", args.namespace), ("--cluster", args.cluster)) if not value]
    if not args.redis_url:
        missing.append("--redis-url (or PORTALIS_REDIS_URL)")
    if missing:
        p.error(f"missing {', '.join(missing)}")
    return WorkerSettings(
        namespace=args.namespace,
        cluster=args.cluster,
        redis_url=args.redis_url,
        engine=args.engine,
        gpus=gpus,
        visibility_timeout_seconds=args.visibility_timeout_seconds,
        max_file_bytes=args.max_file_bytes,
    )


def serve_metrics(stats: StatsRecorder, settings: WorkerSettings, port: int, host: str) -> bool:
    """Serve ``stats`` on ``host:port`` (port 0: not at all); False, logged, when the port cannot be bound."""
    if port <= 0:
        return True
    try:
        serve(stats, settings.namespace, settings.cluster, port, host)
    except OSError as exc:
        log.error("cannot serve /metrics on %s:%d: %s", host, port, exc)
        return False
    log.info("serving Prometheus metrics on http://%s:%d/metrics", host, port)
    return True


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def install_stop_handlers(stop: threading.Event) -> dict[int, Any]:
    """SIGTERM and SIGINT set ``stop``; returns the previous handlers for ``restore_handlers``."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the items in hand, then exiting", signal.Signals(signum).name)
        stop.set()

    return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}


def restore_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def run_workers(
    settings: WorkerSettings,
    name: str,
    concurrency: int,
    stop: threading.Event,
    idle_exit_seconds: float | None = None,
    *,
    store: Store | None = None,
    engine_factory: EngineFactory | None = None,
    stats: StatsRecorder | None = None,
) -> list[Worker]:
    """Run ``concurrency`` workers on threads until ``stop`` is set or all exit idle; returns them when done."""
    queue = build_queue(settings)
    queue.ensure_groups()
    store = store or Store.from_env()
    stats = stats if stats is not None else StatsRecorder()
    checkers = Checkers()
    workers = [
        build_worker(
            settings,
            f"{name}/{i}",
            queue=queue,
            store=store,
            engine_factory=engine_factory,
            stats=stats,
            checkers=checkers,
        )
        for i in range(concurrency)
    ]
    threads = [
        threading.Thread(target=w.run, args=(stop, idle_exit_seconds), name=w.name, daemon=True) for w in workers
    ]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():  # join in slices so the main thread keeps handling signals
            t.join(timeout=0.5)
    return workers


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    settings = settings_from_args(args, p, gpus=args.gpus / args.concurrency)
    stats = StatsRecorder()
    if not serve_metrics(stats, settings, args.metrics_port, args.metrics_host):
        return 2
    stop = threading.Event()
    previous = install_stop_handlers(stop)
    try:
        run_workers(settings, args.name, args.concurrency, stop, args.idle_exit_seconds, stats=stats)
    except EngineError as exc:
        log.error("cannot start the %s engine: %s", settings.engine, exc)
        return 2
    except redis.RedisError as exc:
        log.error("cannot reach the queue of %s/%s: %s", settings.namespace, settings.cluster, exc)
        return 1
    finally:
        restore_handlers(previous)
    return 0
