"""The Ray driver: runs on the Ray head and keeps one translator actor per GPU in the cluster.

Each ``TranslatorActor`` wraps the worker loop (``consumer.Worker``) and holds ``--gpus-per-actor`` GPUs. Every few
seconds the driver compares the pool with the cluster (``ray.cluster_resources()``) and grows or shrinks it as
the operator adds or removes GPU workers: a surplus actor is asked to stop, so it finishes (or releases) the item
in hand before it goes; an actor lost with its node is dropped and its item is redelivered by the queue after the
visibility timeout. Each round the driver also collects what every actor recorded for the metrics (item times,
outcomes, cache lookups) into its own ``StatsRecorder``, which it serves on ``--metrics-port`` from the head pod;
what a lost actor recorded since the last round is lost with it. Ray is imported lazily, so this module imports
where Ray is not installed.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from portalis.worker.engines import EngineError
from portalis.worker.local import (
    EngineFactory,
    WorkerSettings,
    add_worker_arguments,
    build_worker,
    default_name,
    install_stop_handlers,
    load_configured_engine,
    restore_handlers,
    serve_metrics,
    settings_from_args,
    setup_logging,
)
from portalis.worker.metrics import StatsRecorder, WorkerStats

log = logging.getLogger("portalis.worker.ray")


class TranslatorActor:
    """One worker loop in a Ray actor. Created with ``max_concurrency=2`` so ``stop`` and ``drain_stats`` run while
    ``run`` works."""

    def __init__(self, settings: WorkerSettings, seq: int, engine_factory: EngineFactory | None = None) -> None:
        # The actor runs on a worker pod: name it after that pod, so the operator can tell which pod is busy.
        self.name = f"{default_name()}/{seq}"
        self._stop = threading.Event()
        self._stats = StatsRecorder()
        self._worker = build_worker(settings, self.name, engine_factory=engine_factory, stats=self._stats)

    def ready(self) -> str:
        return self.name

    def run(self, idle_exit_seconds: float | None = None) -> dict[str, int]:
        """Work until ``stop``; returns the outcomes of the items it processed."""
        self._worker.run(self._stop, idle_exit_seconds)
        return dict(self._worker.processed)

    def stop(self) -> None:
        self._stop.set()

    def drain_stats(self) -> WorkerStats:
        """What the loop recorded for the metrics since the last call."""
        return self._stats.drain()


@functools.cache
def _remote_translator() -> Any:
    """The Ray actor class, made once per process (Ray exports a class each time it is decorated)."""
    import ray

    return ray.remote(TranslatorActor)


def compute_actor_count(
    resources: Mapping[str, float], gpus_per_actor: float, cpus_per_actor: float, forced: int | None = None
) -> int:
    """Actors the cluster should run: ``forced`` if given, else one per ``gpus_per_actor`` GPUs (per
    ``cpus_per_actor`` CPUs when actors take no GPU)."""
    if forced is not None:
        return max(0, forced)
    if gpus_per_actor > 0:
        return math.floor(resources.get("GPU", 0.0) / gpus_per_actor + 1e-9)
    return math.floor(resources.get("CPU", 0.0) / max(cpus_per_actor, 1.0) + 1e-9)


@dataclass
class DriverConfig:
    settings: WorkerSettings
    gpus_per_actor: float = 1.0
    cpus_per_actor: float = 1.0
    actors: int | None = None  # a fixed count instead of one per GPU
    check_interval_seconds: float = 5.0
    stop_grace_seconds: float = 330.0  # how long a stopping actor may take to finish its item
    engine_factory: EngineFactory | None = None


@dataclass(eq=False)
class _Member:
    actor: Any
    run_ref: Any
    seq: int
    stop_deadline: float | None = None
    stats_ref: Any = None  # a drain_stats call not yet collected


@dataclass
class ActorPool:
    """The translator actors the driver runs, and those it has asked to stop."""

    config: DriverConfig
    active: list[_Member] = field(default_factory=list)
    stopping: list[_Member] = field(default_factory=list)
    outcomes: dict[int, dict[str, int]] = field(default_factory=dict)  # by actor seq, of actors that finished
    stats: StatsRecorder = field(default_factory=StatsRecorder)  # what every actor recorded, served on /metrics
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(0))

    def _start(self) -> _Member:
        seq = next(self._seq)
        cls = _remote_translator().options(
            num_gpus=self.config.gpus_per_actor, num_cpus=self.config.cpus_per_actor, max_concurrency=2
        )
        actor = cls.remote(self.config.settings, seq, self.config.engine_factory)
        member = _Member(actor=actor, run_ref=actor.run.remote(), seq=seq)
        log.info("started translator actor %d (%s GPU)", seq, self.config.gpus_per_actor)
        return member

    def reap(self) -> None:
        """Forget actors whose loop ended (stopped, or lost with their node); kill stoppers past their grace."""
        import ray

        members = self.active + self.stopping
        if not members:
            return
        ready, _ = ray.wait([m.run_ref for m in members], num_returns=len(members), timeout=0)
        finished = {id(ref) for ref in ready}
        now = time.monotonic()
        for m in members:
            if id(m.run_ref) in finished:
                self._collect(m)
                self._drop(m)
            elif m.stop_deadline is not None and now > m.stop_deadline:
                log.warning("translator actor %d did not stop within its grace period; killing it", m.seq)
                self._drop(m)

    def _collect(self, m: _Member) -> None:
        import ray

        try:
            self.outcomes[m.seq] = ray.get(m.run_ref)
            log.info("translator actor %d finished: %s", m.seq, self.outcomes[m.seq])
        except Exception as exc:  # the actor or its node died; its item is redelivered by the queue
            log.warning("translator actor %d was lost: %s", m.seq, exc)
            return
        for ref in (m.stats_ref, self._ask_stats(m)):  # the last of its stats, before it is killed
            if ref is not None:
                self._merge_stats(ref, m.seq, timeout=5.0)
        m.stats_ref = None

    def _ask_stats(self, m: _Member) -> Any:
        try:
            return m.actor.drain_stats.remote()
        except Exception as exc:
            log.debug("translator actor %d: drain_stats: %s", m.seq, exc)
            return None

    def _merge_stats(self, ref: Any, seq: int, timeout: float | None = None) -> None:
        import ray

        try:
            self.stats.merge(ray.get(ref, timeout=timeout))
        except Exception as exc:  # the actor is gone, and what it recorded since the last collection with it
            log.debug("translator actor %d: stats lost: %s", seq, exc)

    def gather_stats(self) -> None:
        """Add what each actor recorded since the last look to ``stats``, without waiting: a drain asked for in one
        round is collected in a later one."""
        import ray

        for m in self.active + self.stopping:
            if m.stats_ref is not None:
                ready, _ = ray.wait([m.stats_ref], num_returns=1, timeout=0)
                if not ready:
                    continue
                self._merge_stats(m.stats_ref, m.seq)
            m.stats_ref = self._ask_stats(m)

    def _drop(self, m: _Member) -> None:
        import ray

        if m in self.active:
            self.active.remove(m)
        if m in self.stopping:
            self.stopping.remove(m)
        try:
            ray.kill(m.actor, no_restart=True)
        except Exception as exc:  # already gone
            log.debug("translator actor %d: kill: %s", m.seq, exc)

    def _ask_to_stop(self, m: _Member) -> None:
        try:
            m.actor.stop.remote()
        except Exception as exc:
            log.debug("translator actor %d: stop: %s", m.seq, exc)
        m.stop_deadline = time.monotonic() + self.config.stop_grace_seconds
        self.active.remove(m)
        self.stopping.append(m)

    def scale(self, desired: int) -> None:
        """Grow or shrink to ``desired`` running actors; surplus actors stop gracefully, newest first."""
        self.reap()
        self.gather_stats()
        if len(self.active) != desired:
            log.info("translator actors: %d running, %d wanted", len(self.active), desired)
        while len(self.active) < desired:
            self.active.append(self._start())
        while len(self.active) > desired:
            self._ask_to_stop(self.active[-1])

    def shutdown(self, timeout: float) -> None:
        """Stop every actor gracefully, wait up to ``timeout`` for their items, then kill what is left."""
        import ray

        for m in list(self.active):
            self._ask_to_stop(m)
        refs = [m.run_ref for m in self.stopping]
        if refs:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
            finished = {id(ref) for ref in ready}
            for m in self.stopping:
                if id(m.run_ref) in finished:
                    self._collect(m)
        for m in list(self.stopping):
            self._drop(m)


def desired_actors(config: DriverConfig) -> int:
    import ray

    cluster_resources: Any = ray.cluster_resources
    resources = {str(k): float(v) for k, v in cluster_resources().items()}
    return compute_actor_count(resources, config.gpus_per_actor, config.cpus_per_actor, config.actors)


def run_driver(config: DriverConfig, stop: threading.Event, pool: ActorPool | None = None) -> ActorPool:
    """Keep the pool matched to the cluster until ``stop`` is set, then stop it; Ray must be initialized."""
    pool = pool or ActorPool(config)
    try:
        while not stop.is_set():
            try:
                pool.scale(desired_actors(config))
            except Exception:  # a GCS hiccup must not end the driver; look again next round
                log.exception("could not reconcile the translator actors")
            stop.wait(config.check_interval_seconds)
    finally:
        pool.shutdown(config.stop_grace_seconds)
    return pool


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="portalis worker ray-driver",
        description="Run one translator actor per GPU of the Ray cluster until stopped (SIGTERM or SIGINT).",
    )
    add_worker_arguments(p)
    p.add_argument("--address", default=env("RAY_ADDRESS") or "auto", help="Ray cluster address (default: auto)")
    p.add_argument(
        "--gpus-per-actor",
        type=float,
        default=float(env("PORTALIS_GPUS_PER_ACTOR") or 1),
        help="GPUs each translator actor holds; 0 runs CPU-only actors",
    )
    p.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs each translator actor holds")
    p.add_argument("--actors", type=int, default=None, help="run exactly this many actors instead of one per GPU")
    p.add_argument("--check-interval-seconds", type=float, default=5.0, help="how often to match the cluster")
    p.add_argument(
        "--stop-grace-seconds",
        type=float,
        default=330.0,
        help="how long a stopping actor may take to finish the item in hand",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    if args.gpus_per_actor < 0 or args.cpus_per_actor < 0:
        p.error("--gpus-per-actor and --cpus-per-actor cannot be negative")
    config = DriverConfig(
        settings=settings_from_args(args, p, gpus=args.gpus_per_actor),
        gpus_per_actor=args.gpus_per_actor,
        cpus_per_actor=args.cpus_per_actor,
        actors=args.actors,
        check_interval_seconds=args.check_interval_seconds,
        stop_grace_seconds=args.stop_grace_seconds,
    )
    try:  # fail fast on a misconfigured engine instead of starting actors that cannot work
        engine = load_configured_engine(config.settings)
    except EngineError as exc:
        log.error("cannot start the %s engine: %s", config.settings.engine, exc)
        return 2
    pool = ActorPool(config)
    pool.stats.prime(engine.name)  # the series exist before the first actor reports
    if not serve_metrics(pool.stats, config.settings, args.metrics_port, args.metrics_host):
        return 2
    import ray

    ray.init(address=args.address)
    stop = threading.Event()
    previous = install_stop_handlers(stop)
    try:
        run_driver(config, stop, pool)
    finally:
        restore_handlers(previous)
        ray.shutdown()
    return 0
