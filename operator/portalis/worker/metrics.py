"""Prometheus metrics of the data plane (names ``portalis_*``, units in the names).

Where it sits: the worker loop (``consumer.Worker``) records what each item took, how it ended, whether the result
cache had it, how many source lines it translated, how its file ended (compiles, translated, failed), the repair
rounds it took and the model tokens it used into a ``StatsRecorder``. The process that serves ``/metrics``
(``portalis worker run``, or the Ray driver sidecar in the head pod) exposes its recorder through a
``WorkerCollector``, labelled with the TranslationCluster's namespace and name. A Ray translator actor runs on a
worker pod with a recorder of its own; the driver drains it every few seconds and adds what it got to the
driver's recorder, so one scrape of the head pod covers every actor of the cluster.

Labels are bounded: namespace and cluster (one pair per process), the engine's name, and a fixed set of outcomes
and cache results; nothing per job or per item. Every series of an engine is there, at zero, from the moment a
worker loop for it starts (``prime``): Prometheus cannot see an increase in a series' first sample, so a series
that appeared only with its first items would hide them from ``rate()`` and ``increase()``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

# Seconds: a small file through py2many takes well under a second, an LLM engine can take minutes per file.
DURATION_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

OUTCOMES: tuple[str, ...] = ("done", "cached", "failed", "retry")  # what consumer.Worker.process returns
CACHE_RESULTS: tuple[str, ...] = ("hit", "miss")
FILE_OUTCOMES: tuple[str, ...] = ("compiles", "translated", "failed")  # api.v1alpha1.job.Outcome

DURATION = "portalis_translation_duration_seconds"
CACHE_LOOKUPS = "portalis_result_cache_lookups"
SOURCE_LINES = "portalis_translated_source_lines"
FILES = "portalis_translated_files"
REPAIR_ROUNDS = "portalis_repair_rounds"
ENGINE_TOKENS = "portalis_engine_tokens"


def bucket_index(seconds: float, bounds: tuple[float, ...] = DURATION_BUCKETS) -> int:
    """The index of the first bucket whose upper bound (``le``, inclusive) holds ``seconds``; len(bounds): +Inf."""
    for i, bound in enumerate(bounds):
        if seconds <= bound:
            return i
    return len(bounds)


@dataclass
class WorkerStats:
    """Counts recorded since a recorder started or was last drained; picklable, and merged by adding.

    ``durations`` holds per-bucket (not cumulative) counts, one more than there are bounds (the last is +Inf).
    """

    durations: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (engine, outcome) -> counts
    duration_sums: dict[tuple[str, str], float] = field(default_factory=dict)
    cache_lookups: dict[tuple[str, str], int] = field(default_factory=dict)  # (engine, hit|miss) -> count
    source_lines: dict[str, int] = field(default_factory=dict)  # engine -> lines
    files: dict[tuple[str, str], int] = field(default_factory=dict)  # (engine, compiles|translated|failed) -> count
    repair_rounds: dict[str, int] = field(default_factory=dict)  # engine -> rounds
    tokens: dict[str, int] = field(default_factory=dict)  # engine -> model tokens

    def prime(self, engine: str) -> None:
        """Every series of ``engine`` at zero, leaving counts already there alone."""
        for outcome in OUTCOMES:
            self.durations.setdefault((engine, outcome), [0] * (len(DURATION_BUCKETS) + 1))
            self.duration_sums.setdefault((engine, outcome), 0.0)
        for result in CACHE_RESULTS:
            self.cache_lookups.setdefault((engine, result), 0)
        self.source_lines.setdefault(engine, 0)
        for outcome in FILE_OUTCOMES:
            self.files.setdefault((engine, outcome), 0)
        self.repair_rounds.setdefault(engine, 0)
        self.tokens.setdefault(engine, 0)

    def observe_file(self, engine: str, outcome: str, repair_rounds: int = 0, tokens: int = 0) -> None:
        """A file finished as ``outcome`` after ``repair_rounds`` rounds, using ``tokens`` model tokens."""
        self.files[(engine, outcome)] = self.files.get((engine, outcome), 0) + 1
        self.repair_rounds[engine] = self.repair_rounds.get(engine, 0) + max(repair_rounds, 0)
        self.tokens[engine] = self.tokens.get(engine, 0) + max(tokens, 0)

    def observe_item(self, engine: str, outcome: str, seconds: float) -> None:
        key = (engine, outcome)
        counts = self.durations.setdefault(key, [0] * (len(DURATION_BUCKETS) + 1))
        counts[bucket_index(max(seconds, 0.0))] += 1
        self.duration_sums[key] = self.duration_sums.get(key, 0.0) + max(seconds, 0.0)

    def observe_cache(self, engine: str, hit: bool) -> None:
        key = (engine, "hit" if hit else "miss")
        self.cache_lookups[key] = self.cache_lookups.get(key, 0) + 1

    def observe_lines(self, engine: str, lines: int) -> None:
        self.source_lines[engine] = self.source_lines.get(engine, 0) + max(lines, 0)

    def merge(self, other: WorkerStats) -> None:
        for key, counts in other.durations.items():
            mine = self.durations.setdefault(key, [0] * len(counts))
            for i, n in enumerate(counts):
                mine[i] += n
        for key, total in other.duration_sums.items():
            self.duration_sums[key] = self.duration_sums.get(key, 0.0) + total
        for key, n in other.cache_lookups.items():
            self.cache_lookups[key] = self.cache_lookups.get(key, 0) + n
        for engine, n in other.source_lines.items():
            self.source_lines[engine] = self.source_lines.get(engine, 0) + n
        for key, n in other.files.items():
            self.files[key] = self.files.get(key, 0) + n
        for engine, n in other.repair_rounds.items():
            self.repair_rounds[engine] = self.repair_rounds.get(engine, 0) + n
        for engine, n in other.tokens.items():
            self.tokens[engine] = self.tokens.get(engine, 0) + n

    def items(self, outcome: str | None = None) -> int:
        """Items observed, of one outcome or of all."""
        return sum(sum(c) for (_, o), c in self.durations.items() if outcome is None or o == outcome)

    def empty(self) -> bool:
        return not (
            self.durations or self.cache_lookups or self.source_lines or self.files or self.repair_rounds or self.tokens
        )


class StatsRecorder:
    """``WorkerStats`` shared by the worker loops of one process (threads, or a Ray actor's loop): thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = WorkerStats()

    def prime(self, engine: str) -> None:
        with self._lock:
            self._stats.prime(engine)

    def observe_item(self, engine: str, outcome: str, seconds: float) -> None:
        with self._lock:
            self._stats.observe_item(engine, outcome, seconds)

    def observe_cache(self, engine: str, hit: bool) -> None:
        with self._lock:
            self._stats.observe_cache(engine, hit)

    def observe_lines(self, engine: str, lines: int) -> None:
        with self._lock:
            self._stats.observe_lines(engine, lines)

    def observe_file(self, engine: str, outcome: str, repair_rounds: int = 0, tokens: int = 0) -> None:
        with self._lock:
            self._stats.observe_file(engine, outcome, repair_rounds, tokens)

    def merge(self, stats: WorkerStats) -> None:
        with self._lock:
            self._stats.merge(stats)

    def snapshot(self) -> WorkerStats:
        with self._lock:
            return copy.deepcopy(self._stats)

    def drain(self) -> WorkerStats:
        """What was recorded since the last drain; the recorder starts again from nothing."""
        with self._lock:
            stats, self._stats = self._stats, WorkerStats()
        return stats


def build_metric_families(stats: WorkerStats, namespace: str, cluster: str) -> list[Metric]:
    """The exposition of ``stats`` for one TranslationCluster (pure)."""
    duration = HistogramMetricFamily(
        DURATION,
        "Time a worker took over one item: read the source, translate it (or take it from the result cache), "
        "write the output and report it; by engine and outcome (done, cached, failed, retry).",
        labels=["namespace", "cluster", "engine", "outcome"],
    )
    for (engine, outcome), counts in sorted(stats.durations.items()):
        cumulative, buckets = 0, []
        for bound, n in zip((*DURATION_BUCKETS, float("inf")), counts, strict=True):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(cumulative)))
        duration.add_metric([namespace, cluster, engine, outcome], buckets, stats.duration_sums[(engine, outcome)])
    scope = (namespace, cluster)
    return [
        duration,
        _counter(
            CACHE_LOOKUPS,
            "Result cache lookups by the workers, by engine and result (hit or miss).",
            ["result"],
            stats.cache_lookups,
            scope,
        ),
        _counter(
            SOURCE_LINES,
            "Source lines of the items the workers translated or took from the result cache, by engine.",
            [],
            stats.source_lines,
            scope,
        ),
        _counter(
            FILES,
            "Files the workers finished, by engine and outcome: compiles (the target's compiler accepts the "
            "output), translated (written, does not compile or was not checked) or failed (no output).",
            ["outcome"],
            stats.files,
            scope,
        ),
        _counter(
            REPAIR_ROUNDS,
            "Rounds in which an engine was shown the compiler's diagnostics and asked for a corrected file, by engine.",
            [],
            stats.repair_rounds,
            scope,
        ),
        _counter(
            ENGINE_TOKENS,
            "Model tokens (prompt and completion, repair rounds included) of the files the workers finished, by "
            "engine.",
            [],
            stats.tokens,
            scope,
        ),
    ]


def _counter(
    name: str,
    documentation: str,
    labels: list[str],
    series: Mapping[str, int] | Mapping[tuple[str, str], int],
    scope: tuple[str, str],
) -> CounterMetricFamily:
    """A counter family labelled namespace, cluster, engine and ``labels``, from counts keyed by the engine
    (or by the engine and the one further label)."""
    family = CounterMetricFamily(name, documentation, labels=["namespace", "cluster", "engine", *labels])
    for key, n in sorted(series.items()):
        values: list[str] = list(key) if isinstance(key, tuple) else [str(key)]
        family.add_metric([*scope, *values], float(n))
    return family


class WorkerCollector(Collector):
    """Exposes a ``StatsRecorder`` as the metrics of one TranslationCluster's workers."""

    def __init__(self, recorder: StatsRecorder, namespace: str, cluster: str) -> None:
        self.recorder = recorder
        self.namespace = namespace
        self.cluster = cluster

    def collect(self) -> Iterator[Metric]:
        yield from build_metric_families(self.recorder.snapshot(), self.namespace, self.cluster)


def worker_registry(recorder: StatsRecorder, namespace: str, cluster: str) -> CollectorRegistry:
    """A registry with the workers' metrics and the usual process, platform and garbage-collector ones."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(WorkerCollector(recorder, namespace, cluster))
    return registry


def serve(recorder: StatsRecorder, namespace: str, cluster: str, port: int, host: str = "0.0.0.0") -> None:
    """Serve ``GET /metrics`` on ``host:port`` from a daemon thread; raises OSError when the port is taken."""
    start_http_server(port, addr=host, registry=worker_registry(recorder, namespace, cluster))
