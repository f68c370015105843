"""Debian's Prometheus and Alertmanager on loopback, wired like a cluster's monitoring stack, for tests and benches.

Prometheus scrapes the targets it is given (the fake dcgm-exporter; and, as further jobs, the operator's and the
workers' ``/metrics``) every second, evaluates the chart's rule file
(``charts/portalis/files/prometheus-rules.yaml``) every second and sends firing alerts to Alertmanager;
Alertmanager routes every alert to the operator's ``POST /alerts`` with the bearer token read from a file
(``http_config.authorization.credentials_file``, as in a real install), grouped by alertname, Hostname and gpu,
with no group wait. Both run on free ports in a temporary directory, gossip off, and stop cleanly.

The rules are used as the chart ships them; ``for_override`` replaces the ``for:`` durations of the GPU rules
in a test copy only, for rules whose production ``for:`` would make a test wait minutes.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from portalis_devcluster.servers import ServerError, _Server

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "portalis" / "files" / "prometheus-rules.yaml"
GPU_GROUP = "portalis-gpu-health"


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise ServerError(
        f"{names[0]} is not installed: apt-get install prometheus prometheus-alertmanager (or run `make deps`)"
    )


def _get_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def _wait_ready(url: str, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise ServerError(f"{what} was not ready at {url} within {timeout:.0f}s: {last}")


def rules_for_tests(source: Path = RULES, for_override: str | None = None) -> str:
    """The chart's rule file as text, with the GPU rules' ``for:`` replaced by ``for_override`` when given."""
    doc = yaml.safe_load(source.read_text())
    if for_override is not None:
        for group in doc.get("groups") or []:
            if group.get("name") != GPU_GROUP:
                continue
            for rule in group.get("rules") or []:
                if "for" in rule:
                    rule["for"] = for_override
    return str(yaml.safe_dump(doc, sort_keys=False))


@dataclass
class AlertmanagerServer(_Server):
    """``prometheus-alertmanager`` sending every alert to ``webhook_url`` with the token in ``token_file``."""

    webhook_url: str = ""
    token_file: Path | None = None
    group_wait: str = "0s"
    group_interval: str = "1s"
    repeat_interval: str = "1h"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        webhook: dict[str, Any] = {"url": self.webhook_url, "send_resolved": True, "max_alerts": 0}
        if self.token_file is not None:
            webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": str(self.token_file)}}
        return {
            "route": {
                "receiver": "portalis",
                "group_by": ["alertname", "Hostname", "gpu"],
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [{"name": "portalis", "webhook_configs": [webhook]}],
        }

    def start(self) -> AlertmanagerServer:
        binary = _binary("prometheus-alertmanager", "alertmanager")
        wd = self._prepare("portalis-alertmanager-")
        (wd / "alertmanager.yml").write_text(yaml.safe_dump(self.config(), sort_keys=False))
        (wd / "data").mkdir(exist_ok=True)
        argv = [
            binary,
            f"--config.file={wd / 'alertmanager.yml'}",
            f"--storage.path={wd / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=info",
        ]
        self._spawn(argv, "alertmanager")
        _wait_ready(f"{self.url}/-/ready", "Alertmanager")
        return self

    def alerts(self) -> list[dict[str, Any]]:
        return list(_get_json(f"{self.url}/api/v2/alerts"))


@dataclass
class PrometheusServer(_Server):
    """``prometheus`` scraping ``targets`` (job ``dcgm``) and the targets of each of ``jobs`` (job name -> host:port
    list) every second, alerting through ``alertmanager`` (host:port)."""

    targets: list[str] = field(default_factory=list)
    jobs: dict[str, list[str]] = field(default_factory=dict)
    alertmanager: str = ""
    rules: str = ""
    interval: str = "1s"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self, rule_file: Path) -> dict[str, Any]:
        out: dict[str, Any] = {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "rule_files": [str(rule_file)],
            "scrape_configs": [
                {"job_name": name, "scrape_interval": self.interval, "static_configs": [{"targets": list(targets)}]}
                for name, targets in {"dcgm": self.targets, **self.jobs}.items()
            ],
        }
        if self.alertmanager:
            out["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [self.alertmanager]}]}]}
        return out

    def start(self) -> PrometheusServer:
        binary = _binary("prometheus")
        wd = self._prepare("portalis-prometheus-")
        rule_file = wd / "rules.yaml"
        rule_file.write_text(self.rules or rules_for_tests())
        (wd / "prometheus.yml").write_text(yaml.safe_dump(self.config(rule_file), sort_keys=False))
        (wd / "data").mkdir(exist_ok=True)
        argv = [
            binary,
            f"--config.file={wd / 'prometheus.yml'}",
            f"--storage.tsdb.path={wd / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=2h",
            "--log.level=warn",
        ]
        self._spawn(argv, "prometheus")
        _wait_ready(f"{self.url}/-/ready", "Prometheus")
        return self

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = _get_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
        return list(data["data"]["result"])

    def label_values(self, label: str, match: str) -> list[str]:
        """The values of ``label`` on the series ``match`` selects, as Grafana's ``label_values()`` reads them."""
        query = urllib.parse.urlencode({"match[]": match})
        return list(_get_json(f"{self.url}/api/v1/label/{urllib.parse.quote(label)}/values?{query}")["data"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(_get_json(f"{self.url}/api/v1/alerts")["data"]["alerts"])


@dataclass
class Monitoring:
    """Prometheus and Alertmanager together; ``start`` brings up Alertmanager first."""

    targets: list[str]
    webhook_url: str
    token_file: Path
    for_override: str | None = "0s"
    jobs: dict[str, list[str]] = field(default_factory=dict)
    workdir: Path | None = None
    prometheus: PrometheusServer | None = None
    alertmanager: AlertmanagerServer | None = None

    def start(self) -> Monitoring:
        base = self.workdir
        am = AlertmanagerServer(
            workdir=base / "alertmanager" if base else None, webhook_url=self.webhook_url, token_file=self.token_file
        ).start()
        self.alertmanager = am
        try:
            self.prometheus = PrometheusServer(
                workdir=base / "prometheus" if base else None,
                targets=list(self.targets),
                jobs=dict(self.jobs),
                alertmanager=f"127.0.0.1:{am.port}",
                rules=rules_for_tests(for_override=self.for_override),
            ).start()
        except Exception:
            am.stop()
            raise
        return self

    def stop(self) -> None:
        for server in (self.prometheus, self.alertmanager):
            if server is not None:
                server.stop()
