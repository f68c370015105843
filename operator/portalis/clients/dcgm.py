"""Poll dcgm-exporter directly, for clusters without Prometheus and Alertmanager (``PORTALIS_DCGM_ENDPOINTS``).

Every ``interval`` seconds each endpoint's ``/metrics`` is read; when a GPU's double-bit ECC counter
(``DCGM_FI_DEV_ECC_DBE_VOL_TOTAL``) is higher than at the previous read, the poller hands the health controller
the same notification Alertmanager would post for the chart's ``PortalisGpuEccDoubleBitErrors`` rule, so both
inputs share one path. The first read of a GPU only sets its baseline: errors counted before the operator started
are not new. An endpoint that cannot be read is logged and tried again at the next round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from portalis.api.alertmanager import Alert, WebhookPayload

log = logging.getLogger("portalis.dcgm")

DBE_METRIC = "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"
ALERT_NAME = "PortalisGpuEccDoubleBitErrors"
SeriesKey = tuple[tuple[str, str], ...]


def parse_counters(text: str, metric: str = DBE_METRIC) -> dict[SeriesKey, float]:
    """The samples of ``metric`` in a Prometheus text exposition, by their sorted label pairs."""
    out: dict[SeriesKey, float] = {}
    names = {metric, f"{metric}_total"}  # the parser adds _total to counter samples that lack it (in lowercase)
    for family in text_string_to_metric_families(text):
        if family.name != metric:
            continue
        for sample in family.samples:
            if sample.name in names:
                out[tuple(sorted(sample.labels.items()))] = float(sample.value)
    return out


def increases(previous: Mapping[SeriesKey, float], current: Mapping[SeriesKey, float]) -> list[SeriesKey]:
    """Series whose counter went up since the previous read (a new series only sets its baseline)."""
    return [k for k, v in current.items() if k in previous and v > previous[k]]


def payload_for(series: Iterable[SeriesKey]) -> WebhookPayload | None:
    alerts = []
    for key in series:
        labels = dict(key)
        labels.update({"alertname": ALERT_NAME, "severity": "critical", "portalis_action": "quarantine"})
        host = labels.get("Hostname", "?")
        summary = f"Uncorrectable ECC errors on GPU {labels.get('gpu', '?')} of node {host}"
        alerts.append(Alert(status="firing", labels=labels, annotations={"summary": summary}))
    if not alerts:
        return None
    return WebhookPayload(receiver="dcgm-poll", status="firing", alerts=alerts)


class DcgmPoller:
    """Reads ``endpoints`` every ``interval`` seconds and hands new double-bit ECC errors to ``on_alerts``."""

    def __init__(
        self, endpoints: Sequence[str], on_alerts: Callable[[WebhookPayload], bool], interval: float = 10.0
    ) -> None:
        self.endpoints = list(endpoints)
        self.on_alerts = on_alerts
        self.interval = interval
        self.seen: dict[str, dict[SeriesKey, float]] = {}

    async def poll_once(self, session: aiohttp.ClientSession) -> int:
        """One round over every endpoint; returns how many alerts it handed on."""
        handed = 0
        for url in self.endpoints:
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                    resp.raise_for_status()
                    text = await resp.text()
                current = parse_counters(text)
            except Exception as exc:
                log.warning("dcgm-exporter %s: cannot read metrics: %s", url, exc)
                continue
            previous = self.seen.get(url)
            new = increases(previous, current) if previous is not None else []
            payload = payload_for(new)
            if payload is not None:
                if self.on_alerts(payload):
                    handed += len(payload.alerts)
                else:  # not taken: keep the old values so the increase is seen again next round
                    for key in new:
                        current[key] = (previous or {})[key]
            self.seen[url] = current
        return handed

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                await self.poll_once(session)
                await asyncio.sleep(self.interval)
