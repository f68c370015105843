"""Shared benchmark plumbing: percentiles, the result line every benchmark prints, and the local cluster.

Each benchmark measures Portalis and a baseline in the same run and reports the ratio, so results compare
across machines. The last line a benchmark prints is its JSON result, also written to
``bench/results/<name>.json``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portalis_devcluster import build
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.nodes import FleetSpec
from portalis_devcluster.operator import OperatorProcess, install_crds

RESULTS = Path(__file__).parent / "results"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Result:
    bench: str
    metric: str
    unit: str
    values: Sequence[float]
    baseline_name: str
    baseline_values: Sequence[float]
    goal: str
    met: bool
    extra: dict[str, Any] | None = None
    higher_is_better: bool = False

    def ratio(self) -> float | None:
        """ours/baseline: on p95 for latencies, on p50 for throughputs (``higher_is_better``)."""
        q = 50 if self.higher_is_better else 95
        ours, base = percentile(self.values, q), percentile(self.baseline_values, q)
        return round(ours / base, 4) if base else None

    def to_json(self) -> dict[str, Any]:
        p50, p95 = percentile(self.values, 50), percentile(self.values, 95)
        b50, b95 = percentile(self.baseline_values, 50), percentile(self.baseline_values, 95)
        out: dict[str, Any] = {
            "bench": self.bench,
            "metric": self.metric,
            "unit": self.unit,
            "p50": round(p50, 6),
            "p95": round(p95, 6),
            "baseline": {"name": self.baseline_name, "p50": round(b50, 6), "p95": round(b95, 6)},
            "ratio": self.ratio(),
            "goal": self.goal,
            "met": self.met,
            "n": len(self.values),
        }
        if self.higher_is_better:
            out["higher_is_better"] = True
        if self.extra:
            out["extra"] = self.extra
        return out


def report(result: Result) -> dict[str, Any]:
    line = result.to_json()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{result.bench}.json").write_text(json.dumps(line, indent=2) + "\n")
    print(json.dumps(line), flush=True)
    return line


def summary(name: str, values: Sequence[float], unit: str = "s") -> str:
    return f"{name}: p50 {percentile(values, 50):.3f}{unit}  p95 {percentile(values, 95):.3f}{unit}  n={len(values)}"


@contextmanager
def local_cluster(name: str = "bench", fleet: FleetSpec | None = None) -> Iterator[DevCluster]:
    """A local cluster for one benchmark run (PORTALIS_BENCH_REUSE_CLUSTER=1 uses the default one)."""
    if os.environ.get("PORTALIS_BENCH_REUSE_CLUSTER") == "1":
        yield install_crds(DevCluster().up())
        return
    cluster = DevCluster(build.cache_root() / "clusters" / f"{name}-{os.getpid()}", fleet)
    try:
        cluster.up()
        yield install_crds(cluster)
    finally:
        cluster.down()
        shutil.rmtree(cluster.dir, ignore_errors=True)


@contextmanager
def operator_running(kube: DevCluster, extra_env: dict[str, str] | None = None) -> Iterator[OperatorProcess]:
    log = Path(tempfile.mkdtemp(prefix="portalis-bench-")) / "operator.log"
    proc = OperatorProcess(kube, log).start(extra_env)
    try:
        yield proc
    finally:
        proc.stop()
