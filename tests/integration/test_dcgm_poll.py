"""The dcgm-exporter stand-in and the direct poller (for clusters without Alertmanager), over real loopback HTTP;
and the test copy of the chart's rules that the end-to-end tests give Prometheus."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from portalis.api.alertmanager import WebhookPayload
from portalis.clients.dcgm import DBE_METRIC, DcgmPoller, increases, parse_counters
from portalis_devcluster.dcgm import FakeDcgmExporter
from portalis_devcluster.monitoring import GPU_GROUP, RULES, rules_for_tests


@pytest.fixture
def exporter() -> Iterator[FakeDcgmExporter]:
    ex = FakeDcgmExporter().start()
    ex.add_node("gpu-h100-0", 2, "NVIDIA-H100-80GB-HBM3")
    ex.add_node("gpu-a100-0", 1, "NVIDIA-A100-SXM4-80GB")
    yield ex
    ex.stop()


def test_the_stand_in_speaks_dcgm_exporters_format(exporter: FakeDcgmExporter) -> None:
    with urllib.request.urlopen(exporter.url, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families[DBE_METRIC].type == "counter"
    samples = families[DBE_METRIC].samples
    assert len(samples) == 3
    labels = next(s.labels for s in samples if s.labels["Hostname"] == "gpu-h100-0" and s.labels["gpu"] == "1")
    assert labels["modelName"] == "NVIDIA H100 80GB HBM3" and labels["UUID"] == exporter.uuid("gpu-h100-0", 1)
    assert labels["UUID"].startswith("GPU-") and labels["device"] == "nvidia1"
    assert exporter.bump_dbe("gpu-h100-0", 1, errors=2) == 2
    counters = parse_counters(exporter.render())
    assert sorted(counters.values()) == [0.0, 0.0, 2.0]
    exporter.set_xid("gpu-a100-0", 0, 79)
    assert "DCGM_FI_DEV_XID_ERRORS{" in exporter.render() and " 79\n" in exporter.render()


def test_increases_only_for_counters_seen_before() -> None:
    a = (("gpu", "0"),)
    b = (("gpu", "1"),)
    assert increases({a: 1.0}, {a: 2.0, b: 5.0}) == [a]
    assert increases({a: 2.0}, {a: 2.0}) == []
    assert increases({a: 3.0}, {a: 0.0}) == []  # a reset (exporter restart) is not an error


def test_the_poller_reports_new_double_bit_errors_once(exporter: FakeDcgmExporter) -> None:
    got: list[WebhookPayload] = []
    accept = [True]

    def on_alerts(payload: WebhookPayload) -> bool:
        got.append(payload)
        return accept[0]

    async def run() -> None:
        poller = DcgmPoller([exporter.url, "http://127.0.0.1:1/metrics"], on_alerts, interval=0.1)
        async with aiohttp.ClientSession() as session:
            assert await poller.poll_once(session) == 0  # the baseline
            assert await poller.poll_once(session) == 0
            exporter.bump_dbe("gpu-h100-0", 1)
            assert await poller.poll_once(session) == 1
            assert await poller.poll_once(session) == 0  # counted once
            accept[0] = False  # the operator cannot take it: reported again next round
            exporter.bump_dbe("gpu-a100-0", 0)
            assert await poller.poll_once(session) == 0
            accept[0] = True
            assert await poller.poll_once(session) == 1

    asyncio.run(run())
    alert = got[0].alerts[0]
    assert alert.labels["alertname"] == "PortalisGpuEccDoubleBitErrors"
    assert alert.labels["portalis_action"] == "quarantine" and alert.labels["Hostname"] == "gpu-h100-0"
    assert alert.labels["gpu"] == "1" and alert.status == "firing"
    assert [p.alerts[0].labels["Hostname"] for p in got[1:]] == ["gpu-a100-0", "gpu-a100-0"]


def test_the_test_copy_of_the_rules_changes_only_for_durations() -> None:
    original = yaml.safe_load(RULES.read_text())
    assert yaml.safe_load(rules_for_tests()) == original
    copy = yaml.safe_load(rules_for_tests(for_override="0s"))
    for group, before in zip(copy["groups"], original["groups"], strict=True):
        for rule, old in zip(group["rules"], before["rules"], strict=True):
            if group["name"] == GPU_GROUP and "for" in old:
                assert rule["for"] == "0s"
            else:
                assert rule == old
