"""The operator's metrics pass `promtool check metrics` (names, units, types, help texts)."""

from __future__ import annotations

import gc
import shutil
import subprocess

import pytest
from prometheus_client import generate_latest

from portalis import metrics


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) is not installed")
def test_promtool_check_metrics_is_clean() -> None:
    metrics.QUEUE_DEPTH.labels("ns", "c", "Batch").set(3)
    metrics.QUEUE_OLDEST_AGE.labels("ns", "c", "Batch").set(1.5)
    metrics.ITEMS.labels("ns", "c", "done").inc()
    metrics.SCALE_EVENTS.labels("ns", "c", "up", "QueueBacklog").inc()
    metrics.BUDGET_PERCENT.labels("ns", "c", "daily").set(5)
    metrics.GPU_SECONDS.labels("ns", "c", "team-a").inc(3)
    metrics.SPEND.labels("ns", "c", "team-a").inc(0.01)
    metrics.API_REQUESTS.labels("GET", "translationjobs/status").inc()
    metrics.observe_reconcile("translationcluster", 0.02, True)
    metrics.watch_gc()
    gc.collect()
    text = generate_latest()
    assert b'portalis_gc_seconds_total{generation="2"}' in text
    assert b"portalis_queue_depth" in text and b"portalis_spend_dollars_total" in text
    proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), proc.stdout + proc.stderr
