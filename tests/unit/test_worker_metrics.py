"""The workers' metrics: bucket placement, merging drained stats, the exposition, and the flags that serve them."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import threading

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from portalis.api.v1alpha1.job import Outcome
from portalis.worker import consumer, local, ray_driver
from portalis.worker.metrics import (
    DURATION_BUCKETS,
    FILE_OUTCOMES,
    OUTCOMES,
    StatsRecorder,
    WorkerCollector,
    WorkerStats,
    bucket_index,
    worker_registry,
)


def samples(recorder: StatsRecorder, namespace: str = "team-a", cluster: str = "h100") -> dict[str, float]:
    """Every sample of the exposition as 'name{label="value",...}' -> value, labels sorted."""
    registry = CollectorRegistry()
    registry.register(WorkerCollector(recorder, namespace, cluster))
    return {
        key(s.name, **s.labels): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }


def test_bucket_upper_bounds_are_inclusive() -> None:
    assert bucket_index(0.0) == 0
    assert bucket_index(0.05) == 0
    assert bucket_index(0.050001) == 1
    assert bucket_index(600.0) == len(DURATION_BUCKETS) - 1
    assert bucket_index(601.0) == len(DURATION_BUCKETS)  # +Inf


def key(name: str, **labels: str) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def test_the_histogram_is_cumulative_and_labelled_by_cluster_engine_and_outcome() -> None:
    recorder = StatsRecorder()
    for seconds in (0.03, 0.3, 0.3, 700.0):
        recorder.observe_item("py2many", "done", seconds)
    recorder.observe_item("py2many", "failed", 2.0)
    found = samples(recorder)
    done = {"namespace": "team-a", "cluster": "h100", "engine": "py2many", "outcome": "done"}
    bucket = "portalis_translation_duration_seconds_bucket"
    assert found[key(bucket, **done, le="0.05")] == 1
    assert found[key(bucket, **done, le="0.25")] == 1
    assert found[key(bucket, **done, le="0.5")] == 3
    assert found[key(bucket, **done, le="600.0")] == 3
    assert found[key(bucket, **done, le="+Inf")] == 4
    assert found[key("portalis_translation_duration_seconds_count", **done)] == 4
    assert found[key("portalis_translation_duration_seconds_sum", **done)] == pytest.approx(700.63)
    failed = {**done, "outcome": "failed"}
    assert found[key("portalis_translation_duration_seconds_count", **failed)] == 1


def test_cache_lookups_and_source_lines() -> None:
    recorder = StatsRecorder()
    recorder.observe_cache("openai", hit=True)
    recorder.observe_cache("openai", hit=False)
    recorder.observe_cache("openai", hit=False)
    recorder.observe_lines("openai", 12)
    recorder.observe_lines("openai", 30)
    found = samples(recorder)
    base = {"namespace": "team-a", "cluster": "h100", "engine": "openai"}
    assert found[key("portalis_result_cache_lookups_total", **base, result="hit")] == 1
    assert found[key("portalis_result_cache_lookups_total", **base, result="miss")] == 2
    assert found[key("portalis_translated_source_lines_total", **base)] == 42


def test_files_by_outcome_repair_rounds_and_tokens() -> None:
    recorder = StatsRecorder()
    recorder.prime("openai")
    recorder.observe_file("openai", "compiles", repair_rounds=1, tokens=900)
    recorder.observe_file("openai", "translated", repair_rounds=2, tokens=1500)
    recorder.observe_file("openai", "failed")
    found = samples(recorder)
    base = {"namespace": "team-a", "cluster": "h100", "engine": "openai"}
    assert {o: found[key("portalis_translated_files_total", **base, outcome=o)] for o in FILE_OUTCOMES} == {
        "compiles": 1,
        "translated": 1,
        "failed": 1,
    }
    assert found[key("portalis_repair_rounds_total", **base)] == 3
    assert found[key("portalis_engine_tokens_total", **base)] == 2400


def test_the_file_outcomes_are_the_api_outcomes() -> None:
    assert set(FILE_OUTCOMES) == {o.value for o in Outcome}


def test_nothing_recorded_exposes_no_series() -> None:
    assert samples(StatsRecorder()) == {}


def test_a_primed_engine_has_every_series_at_zero_and_priming_again_keeps_counts() -> None:
    recorder = StatsRecorder()
    recorder.prime("py2many")
    found = samples(recorder)
    base = {"namespace": "team-a", "cluster": "h100", "engine": "py2many"}
    for outcome in ("done", "cached", "failed", "retry"):
        assert found[key("portalis_translation_duration_seconds_count", **base, outcome=outcome)] == 0
        assert found[key("portalis_translation_duration_seconds_bucket", **base, outcome=outcome, le="+Inf")] == 0
    assert found[key("portalis_result_cache_lookups_total", **base, result="hit")] == 0
    assert found[key("portalis_result_cache_lookups_total", **base, result="miss")] == 0
    assert found[key("portalis_translated_source_lines_total", **base)] == 0
    recorder.observe_item("py2many", "done", 0.1)
    recorder.prime("py2many")  # a second worker loop of the same engine
    assert samples(recorder)[key("portalis_translation_duration_seconds_count", **base, outcome="done")] == 1


def test_the_outcomes_primed_are_those_the_worker_returns() -> None:
    assert set(OUTCOMES) == {consumer.DONE, consumer.CACHED, consumer.FAILED, consumer.RETRY}


def test_drained_stats_travel_by_pickle_and_add_up_in_the_driver() -> None:
    actor_a, actor_b, driver = StatsRecorder(), StatsRecorder(), StatsRecorder()
    actor_a.observe_item("py2many", "done", 0.2)
    actor_a.observe_cache("py2many", hit=False)
    actor_b.observe_item("py2many", "done", 0.7)
    actor_b.observe_item("py2many", "cached", 0.01)
    actor_b.observe_lines("py2many", 5)
    for actor in (actor_a, actor_b):
        driver.merge(pickle.loads(pickle.dumps(actor.drain())))
    assert actor_a.snapshot().empty() and actor_b.snapshot().empty()  # a drain starts again from nothing
    actor_a.observe_item("py2many", "retry", 1.0)
    driver.merge(actor_a.drain())
    total = driver.snapshot()
    assert total.items() == 4
    assert (total.items("done"), total.items("cached"), total.items("retry")) == (2, 1, 1)
    assert total.duration_sums[("py2many", "done")] == pytest.approx(0.9)
    assert total.cache_lookups == {("py2many", "miss"): 1}
    assert total.source_lines == {"py2many": 5}


def test_the_recorder_is_safe_across_threads() -> None:
    recorder = StatsRecorder()

    def work() -> None:
        for _ in range(2000):
            recorder.observe_item("e", "done", 0.1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert recorder.snapshot().items("done") == 8000


def test_merge_into_empty_stats_copies_nothing_by_reference() -> None:
    a, b = WorkerStats(), WorkerStats()
    b.observe_item("e", "done", 0.1)
    a.merge(b)
    a.observe_item("e", "done", 0.1)
    assert b.items() == 1 and a.items() == 2


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) is not installed")
def test_promtool_check_metrics_is_clean() -> None:
    recorder = StatsRecorder()
    recorder.observe_item("py2many", "done", 0.4)
    recorder.observe_item("py2many", "cached", 0.02)
    recorder.observe_cache("py2many", hit=True)
    recorder.observe_lines("py2many", 10)
    text = generate_latest(worker_registry(recorder, "team-a", "h100"))
    assert b"portalis_translation_duration_seconds_bucket" in text and b"process_cpu_seconds_total" in text
    proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), proc.stdout + proc.stderr


def test_metrics_are_off_unless_a_port_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTALIS_METRICS_PORT", raising=False)
    args = local.parser().parse_args(["--namespace", "n", "--cluster", "c", "--redis-url", "redis://x"])
    assert args.metrics_port == 0 and args.metrics_host == "0.0.0.0"
    args = ray_driver.parser().parse_args(["--metrics-port", "9090", "--metrics-host", "127.0.0.1"])
    assert (args.metrics_port, args.metrics_host) == (9090, "127.0.0.1")
    monkeypatch.setenv("PORTALIS_METRICS_PORT", "9191")
    assert local.parser().parse_args([]).metrics_port == 9191
    settings = local.WorkerSettings(namespace="n", cluster="c", redis_url="redis://x")
    assert local.serve_metrics(StatsRecorder(), settings, 0, "127.0.0.1")  # port 0: nothing to serve, no error
