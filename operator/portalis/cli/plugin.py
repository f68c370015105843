"""``kubectl portalis``: Portalis clusters and jobs at a glance, submitting a source tree, and node release.

Installed as the console script ``kubectl-portalis``, so ``kubectl portalis ...`` runs it as a kubectl plugin.
It reads the kubeconfig as kubectl does (``--kubeconfig``, ``--context``, ``-n``, ``-A``) and talks to the API
server with the official Kubernetes client; ``submit`` also uploads to the TranslationCluster's S3 store.

Commands:
  status        clusters and jobs at a glance, and the conditions that need attention
  submit        upload a local source tree to S3, create a TranslationJob and follow it to the end
  logs          a job's or cluster's Events and conditions, optionally followed
  cost          spend by cluster, tenant and job for a day, week or month
  release-node  release a GPU node Portalis quarantined, once it is repaired

The pure pieces (formatting, the cost report, file selection, the job manifest) are plain functions at the top;
the commands below them do the I/O.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO, cast

import kubernetes
from kubernetes.client.exceptions import ApiException

from portalis.cli.kubeconfig import KubeContext, PluginError, api_errors, api_message
from portalis.cli.kubeconfig import load as load_kubeconfig
from portalis.desired.health import QUARANTINE_ANNOTATIONS, QUARANTINED_LABEL, RELEASE_ANNOTATION, TAINT_KEY
from portalis.desired.plan import match_globs

GROUP = "portalis.dev"
VERSION = "v1alpha1"
CLUSTERS = "translationclusters"
JOBS = "translationjobs"
UNHEALTHY_TAINT = TAINT_KEY  # what the operator's GPU health controller taints a quarantined node with
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
PRIORITIES = ("Interactive", "Batch", "Training", "LowPriority")
TARGETS = ("rust", "go", "cpp")
WINDOWS = {"day": "daily", "week": "weekly", "month": "monthly"}
DEFAULT_INCLUDE = ("**/*.py",)
DEFAULT_POLL_SECONDS = 1.0

# Conditions that are fine when True, and conditions that are fine when False (anything else is not shown).
POSITIVE_CONDITIONS = frozenset({"Ready", "Planned"})
NEGATIVE_CONDITIONS = frozenset(
    {"Degraded", "BudgetWarning", "BudgetExceeded", "Suspended", "Failed", "AtRisk", "BudgetHeld"}
)

_CENT = Decimal("0.01")
_DNS_LABEL = re.compile(r"[^a-z0-9-]+")
_COUNT_OR_PERCENT = re.compile(r"^(\d+)(%?)$")


# ---- pure: formatting ---------------------------------------------------------------------------------------


def progress_bar(percent: int | float | None, width: int = 20) -> str:
    """``[#####...............]`` for a percentage; values outside 0..100 are clamped."""
    pct = max(0.0, min(100.0, float(percent or 0)))
    filled = int(pct * width // 100)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def format_duration(seconds: int | float | None) -> str:
    """Seconds as ``45s``, ``3m05s``, ``2h10m`` or ``1d03h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def to_money(value: Any) -> Decimal:
    """A money value from status (a decimal string such as ``"12.30"``); missing or malformed counts as 0."""
    if value is None or value == "":
        return Decimal(0)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)
    return amount if amount.is_finite() else Decimal(0)


def format_money(value: Any) -> str:
    """A money value with two decimals: ``"12.3"`` -> ``"12.30"``, missing -> ``"0.00"``."""
    return str(to_money(value).quantize(_CENT, rounding=ROUND_HALF_UP))


def spend_vs_limit(window: Mapping[str, Any] | None) -> str:
    """``spent/limit`` of a budget window, or just the spend when it has no limit."""
    window = window or {}
    spent = format_money(window.get("spent"))
    limit = window.get("limit")
    return f"{spent}/{format_money(limit)}" if limit not in (None, "") else spent


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned columns separated by three spaces, like kubectl's tables."""
    body = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *body]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def _status(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("status") or {})


def _meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("metadata") or {})


def condition_status(obj: Mapping[str, Any], type_: str) -> str:
    for c in _status(obj).get("conditions") or []:
        if c.get("type") == type_:
            return str(c.get("status", "Unknown"))
    return "-"


def conditions_needing_attention(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Conditions that are not OK: Ready or Planned not True; Degraded, Failed, AtRisk, the budget ones... True."""
    out = []
    for c in _status(obj).get("conditions") or []:
        type_, status = c.get("type"), c.get("status")
        if (type_ in POSITIVE_CONDITIONS and status != "True") or (type_ in NEGATIVE_CONDITIONS and status == "True"):
            out.append(dict(c))
    return out


def cluster_row(tc: Mapping[str, Any], with_namespace: bool) -> list[str]:
    meta, spec, st = _meta(tc), dict(tc.get("spec") or {}), _status(tc)
    workers = st.get("workers") or {}
    row = [
        meta.get("name", ""),
        spec.get("backend") or "Ray",
        f"{int(workers.get('ready') or 0)}/{int(workers.get('desired') or 0)}",
        str(int((st.get("gpus") or {}).get("allocated") or 0)),
        str(int((st.get("queue") or {}).get("depth") or 0)),
        spend_vs_limit((st.get("budget") or {}).get("daily")),
        condition_status(tc, "Ready"),
    ]
    return [meta.get("namespace", ""), *row] if with_namespace else row


CLUSTER_HEADERS = ["CLUSTER", "BACKEND", "WORKERS", "GPUS", "QUEUE", "SPENT TODAY", "READY"]


def job_row(tj: Mapping[str, Any], with_namespace: bool) -> list[str]:
    meta, spec, st = _meta(tj), dict(tj.get("spec") or {}), _status(tj)
    items = st.get("items") or {}
    pct = int(st.get("progressPercent") or 0)
    row = [
        meta.get("name", ""),
        (spec.get("clusterRef") or {}).get("name", ""),
        spec.get("priority") or "Batch",
        f"{progress_bar(pct)} {pct}%",
        f"{int(items.get('done') or 0)}/{int(items.get('total') or 0)}",
        format_money((st.get("cost") or {}).get("spent")),
        "-" if st.get("phase") in TERMINAL_PHASES else format_duration(st.get("etaSeconds")),
        st.get("phase") or "Pending",
    ]
    return [meta.get("namespace", ""), *row] if with_namespace else row


JOB_HEADERS = ["JOB", "CLUSTER", "PRIORITY", "PROGRESS", "DONE/TOTAL", "COST", "ETA", "PHASE"]


def render_status(clusters: Sequence[Mapping[str, Any]], jobs: Sequence[Mapping[str, Any]], all_ns: bool) -> str:
    """The ``status`` report: a clusters table, a jobs table, then the conditions that are not OK."""
    ns = ["NAMESPACE"] if all_ns else []
    parts = []
    if clusters:
        parts.append(render_table([*ns, *CLUSTER_HEADERS], (cluster_row(c, all_ns) for c in clusters)))
    else:
        parts.append("No TranslationClusters.")
    if jobs:
        parts.append(render_table([*ns, *JOB_HEADERS], (job_row(j, all_ns) for j in jobs)))
    else:
        parts.append("No TranslationJobs.")
    attention = []
    for kind, objs in (("tc", clusters), ("tj", jobs)):
        for obj in objs:
            meta = _meta(obj)
            who = f"{kind}/{meta.get('name')}" + (f" -n {meta.get('namespace')}" if all_ns else "")
            for c in conditions_needing_attention(obj):
                line = f"  {who}: {c.get('type')}={c.get('status')} {c.get('reason') or ''}"
                if c.get("message"):
                    line += f": {c['message']}"
                attention.append(line)
    if attention:
        parts.append("Conditions that are not OK:\n" + "\n".join(attention))
    return "\n\n".join(parts)


def progress_line(status: Mapping[str, Any]) -> str:
    """One line of a job's progress: bar, percent, done/total, failed, ETA and phase."""
    items = status.get("items") or {}
    pct = int(status.get("progressPercent") or 0)
    phase = status.get("phase") or "Pending"
    eta = "-" if phase in TERMINAL_PHASES else format_duration(status.get("etaSeconds"))
    return (
        f"{progress_bar(pct)} {pct:3d}%  {int(items.get('done') or 0)}/{int(items.get('total') or 0)} done"
        f"  {int(items.get('failed') or 0)} failed  ETA {eta}  {phase}"
    )


# ---- pure: Events and conditions ------------------------------------------------------------------------------


def event_time(event: Mapping[str, Any]) -> str:
    """When an Event last happened: lastTimestamp, eventTime, series' last observation, firstTimestamp or creation."""
    series = event.get("series") or {}
    for value in (
        event.get("lastTimestamp"),
        series.get("lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        (event.get("metadata") or {}).get("creationTimestamp"),
    ):
        if value:
            return str(value)
    return ""


def sort_events(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Events oldest first; within one second (Event times have second precision) in the order they were written."""

    def key(event: Mapping[str, Any]) -> tuple[str, int, str]:
        meta = event.get("metadata") or {}
        rv = str(meta.get("resourceVersion") or "")
        return _normal_time(event_time(event)), int(rv) if rv.isdigit() else 0, str(meta.get("name", ""))

    return [dict(e) for e in sorted(events, key=key)]


def _normal_time(value: str) -> str:
    parsed = parse_time(value)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%f") if parsed else value


def event_key(event: Mapping[str, Any]) -> tuple[str, int]:
    """What makes an Event new to a follower: its uid and how many times it has been seen."""
    meta = event.get("metadata") or {}
    count = event.get("count") or (event.get("series") or {}).get("count") or 1
    return str(meta.get("uid") or meta.get("name") or ""), int(count)


def format_event(event: Mapping[str, Any]) -> str:
    count = int(event.get("count") or (event.get("series") or {}).get("count") or 1)
    times = f" (x{count})" if count > 1 else ""
    message = " ".join(str(event.get("message") or "").split())
    type_ = event.get("type") or "Normal"
    return f"{format_timestamp(event_time(event))}  {type_:<7}  {event.get('reason') or '-'}: {message}{times}"


def format_conditions(conditions: Iterable[Mapping[str, Any]]) -> str:
    rows = [
        [
            c.get("type", ""),
            c.get("status", ""),
            c.get("reason") or "-",
            format_timestamp(c.get("lastTransitionTime")),
            " ".join(str(c.get("message") or "").split()) or "-",
        ]
        for c in conditions
    ]
    if not rows:
        return "  (no conditions yet)"
    return "\n".join(
        "  " + line for line in render_table(["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"], rows).splitlines()
    )


def condition_changes(old: Iterable[Mapping[str, Any]], new: Iterable[Mapping[str, Any]]) -> list[str]:
    """Lines for conditions whose status or reason changed between two observations of an object."""
    before = {c.get("type"): c for c in old}
    lines = []
    for c in new:
        prev = before.get(c.get("type"))
        if prev is not None and prev.get("status") == c.get("status") and prev.get("reason") == c.get("reason"):
            continue
        was = f"{prev.get('status')} -> " if prev is not None else ""
        message = " ".join(str(c.get("message") or "").split())
        tail = f": {message}" if message else ""
        lines.append(f"condition {c.get('type')}: {was}{c.get('status')} ({c.get('reason') or '-'}){tail}")
    return lines


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        # microsecond times with more than six digits (Go's RFC3339Nano)
        match = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text)
        if not match:
            return None
        frac = (match.group(2) or "")[:7]
        zone = (match.group(3) or "Z").replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(match.group(1) + frac + zone)
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_timestamp(value: Any) -> str:
    parsed = parse_time(value)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else "-"


def parse_target(text: str) -> tuple[str | None, str]:
    """``tj/NAME``, ``tc/NAME`` (or the full kind names) or a bare NAME -> (kind or None, name)."""
    if "/" not in text:
        return None, text
    kind, name = text.split("/", 1)
    kinds = {
        "tj": "TranslationJob",
        "translationjob": "TranslationJob",
        "translationjobs": "TranslationJob",
        "translationjob.portalis.dev": "TranslationJob",
        "translationjobs.portalis.dev": "TranslationJob",
        "tc": "TranslationCluster",
        "translationcluster": "TranslationCluster",
        "translationclusters": "TranslationCluster",
        "translationcluster.portalis.dev": "TranslationCluster",
        "translationclusters.portalis.dev": "TranslationCluster",
    }
    if kind.lower() not in kinds:
        raise ValueError(f"{kind!r} is not a TranslationJob or TranslationCluster (use tj/NAME or tc/NAME)")
    return kinds[kind.lower()], name


# ---- pure: cost ------------------------------------------------------------------------------------------------


def window_start(window: str, now: datetime) -> datetime:
    """Start of the current day, week (from Monday) or calendar month, in UTC."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "day":
        return day
    if window == "week":
        return day - timedelta(days=day.weekday())
    if window == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown window {window!r}; use day, week or month")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _limit(value: Any) -> str | None:
    return None if value in (None, "") else format_money(value)


def build_cost_report(
    clusters: Sequence[Mapping[str, Any]], jobs: Sequence[Mapping[str, Any]], window: str, now: datetime
) -> dict[str, Any]:
    """Spend by cluster, tenant and job for ``window`` from the clusters' ``status.budget`` and jobs' ``status.cost``.

    Cluster and tenant rows are the window's spend as the operator recorded it (0.00 where it has not yet). Jobs
    are those active in the window (not finished, or finished since it began) with their whole spend so far.
    """
    key = WINDOWS[window]
    since = window_start(window, now)
    starts: dict[tuple[str, str], datetime] = {}
    cluster_rows: list[dict[str, Any]] = []
    tenant_rows: list[dict[str, Any]] = []
    for tc in clusters:
        meta = _meta(tc)
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        budget = _status(tc).get("budget") or {}
        w = budget.get(key) or {}
        start = parse_time(w.get("windowStart")) or since
        starts[(ns, name)] = start
        cluster_rows.append(
            {
                "namespace": ns,
                "cluster": name,
                "spent": format_money(w.get("spent")),
                "limit": _limit(w.get("limit")),
                "percent": int(w.get("percent") or 0),
                "windowStart": _iso(start),
            }
        )
        for tenant in budget.get("tenants") or []:
            tw = tenant.get(key) or {}
            tenant_rows.append(
                {
                    "namespace": ns,
                    "cluster": name,
                    "tenant": str(tenant.get("name", "")),
                    "spent": format_money(tw.get("spent")),
                    "limit": _limit(tw.get("limit")),
                    "percent": int(tw.get("percent") or 0),
                }
            )
    job_rows: list[dict[str, Any]] = []
    for tj in jobs:
        meta, spec, st = _meta(tj), dict(tj.get("spec") or {}), _status(tj)
        ns = str(meta.get("namespace", ""))
        ref = spec.get("clusterRef") or {}
        cluster_key = (str(ref.get("namespace") or ns), str(ref.get("name", "")))
        completed = parse_time(st.get("completionTime"))
        if completed is not None and completed < starts.get(cluster_key, since):
            continue
        cost = st.get("cost") or {}
        job_rows.append(
            {
                "namespace": ns,
                "job": str(meta.get("name", "")),
                "cluster": cluster_key[1],
                "tenant": str(spec.get("tenant") or ns),
                "phase": st.get("phase") or "Pending",
                "spent": format_money(cost.get("spent")),
                "gpuSeconds": int(cost.get("gpuSeconds") or 0),
                "perItem": _limit(cost.get("perItem")),
            }
        )
    total = sum((to_money(r["spent"]) for r in cluster_rows), Decimal(0))
    return {
        "window": window,
        "since": _iso(since),
        "generatedAt": _iso(now),
        "total": format_money(total),
        "clusters": cluster_rows,
        "tenants": tenant_rows,
        "jobs": job_rows,
    }


def render_cost(report: Mapping[str, Any], all_ns: bool) -> str:
    ns = ["NAMESPACE"] if all_ns else []
    parts = [f"Spend this {report['window']} (since {report['since']}): {report['total']}"]

    def pick(row: Mapping[str, Any], *keys: str) -> list[Any]:
        return ([row["namespace"]] if all_ns else []) + [row[k] if row[k] is not None else "-" for k in keys]

    clusters = report["clusters"]
    parts.append(
        render_table(
            [*ns, "CLUSTER", "SPENT", "LIMIT", "PERCENT"],
            [pick(r, "cluster", "spent", "limit", "percent") for r in clusters],
        )
        if clusters
        else "No TranslationClusters."
    )
    if report["tenants"]:
        parts.append(
            render_table(
                [*ns, "CLUSTER", "TENANT", "SPENT", "LIMIT", "PERCENT"],
                [pick(r, "cluster", "tenant", "spent", "limit", "percent") for r in report["tenants"]],
            )
        )
    jobs = report["jobs"]
    parts.append(
        render_table(
            [*ns, "JOB", "CLUSTER", "TENANT", "PHASE", "SPENT", "GPU-SECONDS", "PER ITEM"],
            [pick(r, "job", "cluster", "tenant", "phase", "spent", "gpuSeconds", "perItem") for r in jobs],
        )
        if jobs
        else "No TranslationJobs active in this window."
    )
    return "\n\n".join(parts)


# ---- pure: submit -------------------------------------------------------------------------------------------


def dns_label(text: str, max_length: int = 63) -> str:
    """``text`` as a DNS label: lower case, [a-z0-9-], starting and ending with an alphanumeric."""
    label = _DNS_LABEL.sub("-", text.lower()).strip("-")
    label = re.sub(r"-{2,}", "-", label)[:max_length].strip("-")
    return label or "job"


def default_job_name(directory: Path, suffix: str | None = None) -> str:
    """``<directory name>-<5 random characters>``, like a generateName."""
    tail = suffix if suffix is not None else secrets.token_hex(3)[:5]
    return f"{dns_label(directory.resolve().name, 40)}-{tail}"


def parse_count_or_percent(text: str) -> int | str:
    """``--max-failed-items``: ``3`` -> 3, ``10%`` -> "10%" (0..100%)."""
    match = _COUNT_OR_PERCENT.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a count such as 3 or a percentage such as 10%")
    number, percent = int(match.group(1)), match.group(2)
    if percent:
        if number > 100:
            raise ValueError(f"{text!r}: a percentage must be between 0% and 100%")
        return f"{number}%"
    return number


def normalise_prefix(prefix: str) -> str:
    """An S3 key prefix with one trailing slash and no leading one (empty stays empty)."""
    prefix = prefix.strip().lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def select_files(root: Path, include: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """Relative POSIX paths under ``root`` matching an include glob and no exclude glob, as the job's plan will."""
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        rel = path.relative_to(root).as_posix()
        if match_globs(rel, list(include), list(exclude)):
            found.append(rel)
    return found


def parse_cluster_ref(text: str, namespace: str) -> tuple[str, str]:
    """``--cluster NAME`` or ``NAMESPACE/NAME`` -> (namespace, name)."""
    if "/" in text:
        ns, name = text.split("/", 1)
        return ns, name
    return namespace, text


def build_job_manifest(
    name: str,
    namespace: str,
    cluster: tuple[str, str],
    bucket: str,
    prefix: str,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = (),
    priority: str = "Batch",
    target: str = "rust",
    max_failed_items: int | str | None = None,
) -> dict[str, Any]:
    """The TranslationJob ``submit`` creates for sources uploaded to ``s3://bucket/prefix``."""
    cluster_ns, cluster_name = cluster
    ref: dict[str, Any] = {"name": cluster_name}
    if cluster_ns != namespace:
        ref["namespace"] = cluster_ns
    source: dict[str, Any] = {"bucket": bucket, "prefix": prefix, "include": list(include)}
    if exclude:
        source["exclude"] = list(exclude)
    spec: dict[str, Any] = {
        "clusterRef": ref,
        "source": source,
        "sourceLanguage": "python",
        "targetLanguage": target,
        "priority": priority,
    }
    if max_failed_items is not None:
        spec["maxFailedItems"] = max_failed_items
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TranslationJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/created-by": "kubectl-portalis"},
        },
        "spec": spec,
    }


@dataclass(frozen=True)
class S3Settings:
    """How ``submit`` reaches the cluster's object store, and where each setting came from."""

    endpoint: str | None
    region: str
    access_key: str | None
    secret_key: str | None
    force_path_style: bool
    credentials_from: str


def resolve_s3(
    storage: Mapping[str, Any],
    secret: Mapping[str, str] | None,
    environ: Mapping[str, str],
    endpoint_flag: str | None = None,
    secret_name: str | None = None,
) -> S3Settings:
    """The cluster's ``spec.storage`` and credentials Secret, overridden by ``--s3-endpoint`` and AWS_* variables.

    With AWS_ACCESS_KEY_ID in the environment the keys are left to boto3, which then also honours
    AWS_SESSION_TOKEN; with neither the environment nor a Secret, boto3's usual chain applies.
    """
    endpoint = (
        endpoint_flag
        or environ.get("AWS_ENDPOINT_URL_S3")
        or environ.get("AWS_ENDPOINT_URL")
        or storage.get("endpoint")
    )
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or storage.get("region") or "us-east-1"
    if environ.get("AWS_ACCESS_KEY_ID"):
        access = secret_key = None
        source = "the environment (AWS_ACCESS_KEY_ID)"
    elif secret is not None:
        access, secret_key = secret.get("AWS_ACCESS_KEY_ID"), secret.get("AWS_SECRET_ACCESS_KEY")
        source = f"Secret {secret_name}" if secret_name else "the cluster's Secret"
    else:
        access = secret_key = None
        source = "the default AWS credential chain"
    return S3Settings(
        endpoint=str(endpoint) if endpoint else None,
        region=str(region),
        access_key=access,
        secret_key=secret_key,
        force_path_style=bool(storage.get("forcePathStyle")) or bool(endpoint),
        credentials_from=source,
    )


def unhealthy_taint(node: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``portalis.dev/gpu-unhealthy`` taint of a node, if Portalis quarantined it."""
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("key") == UNHEALTHY_TAINT:
            return dict(taint)
    return None


def portalis_marks(node: Mapping[str, Any]) -> list[str]:
    """The quarantine label and annotations Portalis put on a node, as ``kind key=value`` lines."""
    meta = node.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    out = [f"label {QUARANTINED_LABEL}={labels[QUARANTINED_LABEL]}"] if QUARANTINED_LABEL in labels else []
    out += [f"annotation {k}={annotations[k]}" for k in QUARANTINE_ANNOTATIONS if k in annotations]
    return out


# ---- I/O: the API --------------------------------------------------------------------------------------------


class Api:
    """The few API calls the plugin makes, returning plain dicts; errors become PluginError."""

    def __init__(self, ctx: KubeContext) -> None:
        self.ctx = ctx
        self.custom = kubernetes.client.CustomObjectsApi(ctx.api)
        self.core = kubernetes.client.CoreV1Api(ctx.api)

    def _errors(self, what: str) -> AbstractContextManager[None]:
        return api_errors(what, self.ctx.server)

    def list_objects(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        what = f"list {plural}.{GROUP} " + (f"in namespace {namespace}" if namespace else "in all namespaces")
        with self._errors(what):
            try:
                if namespace:
                    result = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
                else:
                    result = self.custom.list_cluster_custom_object(GROUP, VERSION, plural)
            except ApiException as exc:
                if exc.status == 404:
                    raise PluginError(
                        f"the Portalis CRDs are not installed in this cluster ({plural}.{GROUP} not found); "
                        "install Portalis first (docs/installation.md)"
                    ) from exc
                raise
        items: list[dict[str, Any]] = list(cast(dict[str, Any], result).get("items") or [])
        return sorted(items, key=lambda o: (_meta(o).get("namespace", ""), _meta(o).get("name", "")))

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._errors(f"get {plural}.{GROUP} {name} in namespace {namespace}"):
            try:
                obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
        return dict(cast(dict[str, Any], obj))

    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        with self._errors(f"create {plural}.{GROUP} {name} in namespace {namespace}"):
            try:
                obj = self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
            except ApiException as exc:
                if exc.status == 409:
                    raise PluginError(f"{plural}.{GROUP} {name} already exists in namespace {namespace}") from exc
                if exc.status == 422:
                    raise PluginError(f"the API server rejected {name}: {api_message(exc)}") from exc
                raise
        return dict(cast(dict[str, Any], obj))

    @staticmethod
    def _raw(call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """A core API call's JSON as a dict (the typed models would turn camelCase keys into snake_case)."""
        resp = call(*args, _preload_content=False, **kwargs)
        data: dict[str, Any] = json.loads(resp.data)
        return data

    def events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        with self._errors(f"list events in namespace {namespace}"):
            result = self._raw(self.core.list_namespaced_event, namespace, field_selector=selector)
        return sort_events(result.get("items") or [])

    def secret(self, namespace: str, name: str) -> dict[str, str]:
        with self._errors(f"get Secret {name} in namespace {namespace}"):
            result = self._raw(self.core.read_namespaced_secret, name, namespace)
        return {k: base64.b64decode(v).decode() for k, v in (result.get("data") or {}).items()}

    def node(self, name: str) -> dict[str, Any] | None:
        with self._errors(f"get node {name}"):
            try:
                return self._raw(self.core.read_node, name)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

    def annotate_node(self, name: str, annotations: dict[str, str]) -> None:
        body = {"metadata": {"annotations": annotations}}
        with self._errors(f"annotate node {name}"):
            self.core.patch_node(name, body, _content_type="application/merge-patch+json")


def _connect(args: argparse.Namespace) -> tuple[KubeContext, Api]:
    ctx = load_kubeconfig(
        getattr(args, "kubeconfig", None), getattr(args, "context", None), getattr(args, "namespace", None)
    )
    return ctx, Api(ctx)


def _scope(args: argparse.Namespace, ctx: KubeContext) -> str | None:
    return None if getattr(args, "all_namespaces", False) else str(ctx.namespace)


# ---- commands -------------------------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    ctx, api = _connect(args)
    scope = _scope(args, ctx)
    clusters = api.list_objects(CLUSTERS, scope)
    jobs = api.list_objects(JOBS, scope)
    if scope and not clusters and not jobs:
        print(f"No TranslationClusters or TranslationJobs in namespace {scope}.", file=out)
        return 0
    print(render_status(clusters, jobs, scope is None), file=out)
    return 0


def cmd_cost(args: argparse.Namespace, out: TextIO) -> int:
    ctx, api = _connect(args)
    scope = _scope(args, ctx)
    report = build_cost_report(
        api.list_objects(CLUSTERS, scope), api.list_objects(JOBS, scope), args.window, datetime.now(UTC)
    )
    report["namespace"] = scope
    if args.output == "json":
        print(json.dumps(report, indent=2), file=out)
    else:
        print(render_cost(report, scope is None), file=out)
    return 0


def _find_target(api: Api, namespace: str, text: str) -> tuple[str, str, dict[str, Any]]:
    try:
        kind, name = parse_target(text)
    except ValueError as exc:
        raise PluginError(str(exc)) from exc
    order = [("TranslationJob", JOBS), ("TranslationCluster", CLUSTERS)]
    for k, plural in order:
        if kind not in (None, k):
            continue
        obj = api.get(plural, namespace, name)
        if obj is not None:
            return k, plural, obj
    what = kind or "TranslationJob or TranslationCluster"
    raise PluginError(f"no {what} named {name!r} in namespace {namespace}")


def cmd_logs(args: argparse.Namespace, out: TextIO) -> int:
    ctx, api = _connect(args)
    namespace = str(ctx.namespace)
    kind, plural, obj = _find_target(api, namespace, args.target)
    name = _meta(obj).get("name", "")
    status = _status(obj)
    summary = f"{kind} {namespace}/{name}"
    if kind == "TranslationJob":
        summary += f": {progress_line(status)}"
    else:
        summary += f": {status.get('phase') or 'Pending'}"
    print(summary, file=out)
    print("Conditions:", file=out)
    print(format_conditions(status.get("conditions") or []), file=out)
    events = api.events(namespace, kind, name)
    print("Events:", file=out)
    if not events:
        print("  (none)", file=out)
    for ev in events:
        print("  " + format_event(ev), file=out)
    out.flush()
    if not args.follow:
        return 0
    if kind == "TranslationJob" and status.get("phase") in TERMINAL_PHASES:
        print(f"job {status.get('phase')}; nothing more to follow", file=out)
        return 0
    seen = {event_key(e) for e in events}
    conditions = list(status.get("conditions") or [])
    deadline = time.monotonic() + args.timeout if args.timeout else None
    print("following (Ctrl-C to stop) ...", file=out, flush=True)
    while True:
        if deadline is not None and time.monotonic() > deadline:
            print(f"stopped following after {args.timeout:.0f}s", file=out)
            return 0
        time.sleep(args.interval)
        current = api.get(plural, namespace, name)
        for ev in api.events(namespace, kind, name):
            if event_key(ev) not in seen:
                seen.add(event_key(ev))
                print("  " + format_event(ev), file=out)
        if current is None:
            print(f"{kind} {namespace}/{name} was deleted", file=out)
            return 0
        st = _status(current)
        new_conditions = list(st.get("conditions") or [])
        for line in condition_changes(conditions, new_conditions):
            print("  " + line, file=out)
        conditions = new_conditions
        out.flush()
        if kind == "TranslationJob" and st.get("phase") in TERMINAL_PHASES:
            print(f"job {st.get('phase')}: {progress_line(st)}", file=out)
            return 0


def _storage_settings(api: Api, cluster: dict[str, Any], cluster_ns: str, endpoint_flag: str | None) -> S3Settings:
    storage = dict((cluster.get("spec") or {}).get("storage") or {})
    secret_name = (storage.get("credentialsSecretRef") or {}).get("name")
    secret: dict[str, str] | None = None
    if secret_name and not os.environ.get("AWS_ACCESS_KEY_ID"):
        try:
            secret = api.secret(cluster_ns, secret_name)
        except PluginError as exc:
            raise PluginError(
                f"{exc}\nthe S3 credentials are in that Secret; ask for `get` on it, or set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY"
            ) from exc
        missing = [k for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not secret.get(k)]
        if missing:
            raise PluginError(f"Secret {cluster_ns}/{secret_name} has no {' or '.join(missing)}")
    return resolve_s3(storage, secret, os.environ, endpoint_flag, f"{cluster_ns}/{secret_name}")


def _upload(store: Any, bucket: str, prefix: str, root: Path, files: Sequence[str]) -> int:
    def put(rel: str) -> int:
        data = (root / rel).read_bytes()
        store.put_bytes(bucket, prefix + rel, data)
        return len(data)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return sum(pool.map(put, files))


def cmd_submit(args: argparse.Namespace, out: TextIO) -> int:
    from portalis.clients.store import Store, StoreError  # boto3 loads only when needed

    root = Path(args.directory)
    if not root.is_dir():
        raise PluginError(f"{args.directory} is not a directory")
    try:
        max_failed = parse_count_or_percent(args.max_failed_items) if args.max_failed_items is not None else None
    except ValueError as exc:
        raise PluginError(f"--max-failed-items: {exc}") from exc
    include = args.include or list(DEFAULT_INCLUDE)
    files = select_files(root, include, args.exclude or [])
    if not files:
        raise PluginError(f"no files under {root} match {', '.join(include)}")

    ctx, api = _connect(args)
    namespace = str(ctx.namespace)
    cluster_ns, cluster_name = parse_cluster_ref(args.cluster, namespace)
    cluster = api.get(CLUSTERS, cluster_ns, cluster_name)
    if cluster is None:
        raise PluginError(f"no TranslationCluster named {cluster_name!r} in namespace {cluster_ns}")
    name = args.name or default_job_name(root)
    if api.get(JOBS, namespace, name) is not None:
        raise PluginError(f"a TranslationJob named {name!r} already exists in namespace {namespace}; pass --name")

    s3 = _storage_settings(api, cluster, cluster_ns, args.s3_endpoint)
    bucket = args.bucket or (cluster.get("spec") or {}).get("storage", {}).get("bucket")
    if not bucket:
        raise PluginError(f"TranslationCluster {cluster_ns}/{cluster_name} names no storage bucket; pass --bucket")
    prefix = normalise_prefix(args.prefix if args.prefix is not None else f"sources/{name}/")
    store = Store(s3.endpoint, s3.region, s3.access_key, s3.secret_key, s3.force_path_style)
    where = f"s3://{bucket}/{prefix}"
    print(
        f"uploading {len(files)} files from {root} to {where} ({s3.endpoint or 'AWS S3'}, credentials from "
        f"{s3.credentials_from})",
        file=out,
        flush=True,
    )
    try:
        size = _upload(store, bucket, prefix, root, files)
    except StoreError as exc:
        hint = " (create the bucket or pass --bucket)" if exc.reason == "NoSuchBucket" else ""
        raise PluginError(f"upload failed: {exc}{hint}") from exc
    print(f"uploaded {len(files)} files ({size / 1024:.1f} KiB)", file=out)

    manifest = build_job_manifest(
        name,
        namespace,
        (cluster_ns, cluster_name),
        bucket,
        prefix,
        include=include,
        exclude=args.exclude or (),
        priority=args.priority,
        target=args.target,
        max_failed_items=max_failed,
    )
    api.create(JOBS, namespace, manifest)
    print(f"translationjob.{GROUP}/{name} created in namespace {namespace}", file=out, flush=True)
    if args.no_follow:
        print(f"follow it with: kubectl portalis logs tj/{name} -n {namespace} --follow", file=out)
        return 0
    return follow_job(api, namespace, name, out, timeout=args.timeout, interval=args.interval)


def follow_job(api: Api, namespace: str, name: str, out: TextIO, timeout: float = 0, interval: float = 1.0) -> int:
    """Print a job's progress until it ends; 0 when it Succeeded, 1 when it Failed, was deleted or time ran out."""
    tty = out.isatty()
    nl = "\n" if tty else ""  # ends the progress line a terminal keeps rewriting
    deadline = time.monotonic() + timeout if timeout else None
    seen: set[tuple[str, int]] = set()
    last_line = ""
    status: dict[str, Any] = {}
    try:
        while True:
            job = api.get(JOBS, namespace, name)
            if job is None:
                print(f"{nl}translationjob {namespace}/{name} was deleted", file=out)
                return 1
            status = _status(job)
            for ev in api.events(namespace, "TranslationJob", name):
                if event_key(ev) in seen:
                    continue
                seen.add(event_key(ev))
                if ev.get("type") == "Warning" or ev.get("reason") in ("Planned", "Queued", "Completed", "Failed"):
                    prefix = "\n" if tty and last_line else ""
                    print(f"{prefix}  {format_event(ev)}", file=out)
                    last_line = ""
            line = progress_line(status)
            if line != last_line:
                if tty:
                    print(f"\r{line}   ", end="", file=out)
                else:
                    print(line, file=out)
                last_line = line
            out.flush()
            if status.get("phase") in TERMINAL_PHASES:
                break
            if deadline is not None and time.monotonic() > deadline:
                print(
                    f"{nl}timed out after {timeout:.0f}s; the job keeps running: "
                    f"kubectl portalis logs tj/{name} -n {namespace} --follow",
                    file=out,
                )
                return 1
            time.sleep(interval)
    except KeyboardInterrupt:
        print(
            f"{nl}stopped following; the job keeps running: kubectl portalis logs tj/{name} -n {namespace} --follow",
            file=out,
        )
        return 130
    if tty:
        print(file=out)
    print(final_summary(namespace, name, status), file=out)
    return 0 if status.get("phase") == "Succeeded" else 1


def final_summary(namespace: str, name: str, status: Mapping[str, Any]) -> str:
    """What a finished job did: outcome, counts, cost, where the output is, and the files that failed."""
    items = status.get("items") or {}
    cost = status.get("cost") or {}
    lines = [
        f"job {namespace}/{name} {status.get('phase')}: {int(items.get('done') or 0)} of "
        f"{int(items.get('total') or 0)} files translated ({int(items.get('cached') or 0)} from the cache), "
        f"{int(items.get('failed') or 0)} failed; cost {format_money(cost.get('spent'))} "
        f"({int(cost.get('gpuSeconds') or 0)} GPU-seconds)",
        f"output: {status.get('outputLocation') or '-'}",
    ]
    if status.get("reportLocation"):
        lines.append(f"report: {status['reportLocation']}")
    failed = list(status.get("failedItems") or [])
    if failed:
        lines.append(f"failed files ({len(failed)}{' shown; the report lists all' if len(failed) >= 100 else ''}):")
        lines.extend(f"  {item}" for item in failed)
    if status.get("phase") == "Failed":
        for c in status.get("conditions") or []:
            if c.get("type") == "Failed" and c.get("status") == "True":
                lines.append(f"why: {c.get('reason')}: {c.get('message')}")
    return "\n".join(lines)


def cmd_release_node(args: argparse.Namespace, out: TextIO) -> int:
    _, api = _connect(args)
    node = api.node(args.node)
    if node is None:
        raise PluginError(f"no node named {args.node!r}")
    taint = unhealthy_taint(node)
    if taint is None:
        raise PluginError(
            f"node {args.node} has no {UNHEALTHY_TAINT} taint: Portalis did not quarantine it, so there is nothing "
            f"to release (a node cordoned by hand is uncordoned with `kubectl uncordon {args.node}`)"
        )
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    taint_text = f"{taint.get('key')}={taint.get('value', '')}:{taint.get('effect', '')}"
    print(f"node {args.node} is quarantined by Portalis:", file=out)
    print(f"  taint {taint_text}", file=out)
    if (node.get("spec") or {}).get("unschedulable"):
        print("  cordoned (unschedulable)", file=out)
    for mark in portalis_marks(node):
        print(f"  {mark}", file=out)
    if annotations.get(RELEASE_ANNOTATION) == "true":
        print(f"node {args.node} already has {RELEASE_ANNOTATION}=true; the operator is releasing it", file=out)
        print(f"watch it: kubectl get node {args.node} -w", file=out)
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise PluginError("not confirmed: pass --yes to release the node without a prompt")
        answer = input(f"Release node {args.node} back to the scheduler? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not released", file=out)
            return 1
    api.annotate_node(args.node, {RELEASE_ANNOTATION: "true"})
    print(f"node/{args.node} annotated {RELEASE_ANNOTATION}=true", file=out)
    print(
        f"the operator now removes the {UNHEALTHY_TAINT} taint and the Portalis labels and annotations, and "
        "uncordons the node",
        file=out,
    )
    print(f"watch it: kubectl get node {args.node} -w", file=out)
    return 0


# ---- the command line --------------------------------------------------------------------------------------


def _common(suppress: bool) -> argparse.ArgumentParser:
    """kubectl's connection flags, accepted before or after the subcommand."""
    default: Any = argparse.SUPPRESS if suppress else None
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("cluster connection (as kubectl)")
    g.add_argument("--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    g.add_argument("--context", default=default, help="kubeconfig context (default: the current context)")
    g.add_argument("-n", "--namespace", default=default, help="namespace (default: the context's namespace)")
    return p


def _all_namespaces(p: argparse.ArgumentParser) -> None:
    p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")


def _positive(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl portalis",
        description="Portalis TranslationClusters and TranslationJobs from the command line.",
        parents=[_common(suppress=False)],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  kubectl portalis status -A\n"
            "  kubectl portalis submit ./src --cluster h100 -n ml-platform --max-failed-items 10%\n"
            "  kubectl portalis logs tj/batch-monorepo -n ml-platform --follow\n"
            "  kubectl portalis cost --window week -o json\n"
            "  kubectl portalis release-node gpu-h100-3"
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common(suppress=True)

    st = sub.add_parser(
        "status",
        parents=[common],
        help="clusters and jobs at a glance",
        description="Clusters (workers ready/desired, GPUs, queue depth, today's spend vs limit, Ready) and jobs "
        "(priority, progress, done/total, cost, ETA, phase), then every condition that is not OK with its message.",
    )
    _all_namespaces(st)
    st.set_defaults(func=cmd_status)

    sm = sub.add_parser(
        "submit",
        parents=[common],
        help="upload a source tree and translate it",
        description="Upload the files of DIR that match the include globs to the cluster's S3 store, create a "
        "TranslationJob for them and follow it to the end. The S3 endpoint, bucket and credentials come from the "
        "TranslationCluster's spec.storage and its credentials Secret; --s3-endpoint and AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL override them. Exits 0 when the job Succeeded, "
        "1 when it Failed or the timeout passed.",
    )
    sm.add_argument("directory", metavar="DIR", help="local source tree")
    sm.add_argument("--cluster", required=True, help="TranslationCluster, NAME or NAMESPACE/NAME")
    sm.add_argument("--name", help="job name (default: the directory's name and a random suffix)")
    sm.add_argument(
        "--priority",
        default="Batch",
        type=_choice(PRIORITIES),
        help="Interactive, Batch (default), Training or LowPriority",
    )
    sm.add_argument(
        "--target", default="rust", type=_choice(TARGETS), help="language to translate into: rust (default), go or cpp"
    )
    sm.add_argument("--bucket", help="bucket for the sources (default: the cluster's storage bucket)")
    sm.add_argument("--prefix", help="key prefix for the sources (default: sources/<job name>/)")
    sm.add_argument(
        "--include", action="append", metavar="GLOB", help="files to upload and translate (repeatable; default **/*.py)"
    )
    sm.add_argument("--exclude", action="append", metavar="GLOB", help="files to leave out (repeatable)")
    sm.add_argument("--max-failed-items", metavar="N|P%", help="files that may fail while the job still succeeds")
    sm.add_argument("--s3-endpoint", help="S3 endpoint to upload to (default: the cluster's spec.storage.endpoint)")
    sm.add_argument("--no-follow", action="store_true", help="create the job and exit")
    sm.add_argument(
        "--timeout",
        type=_positive,
        default=0,
        metavar="S",
        help="stop following after S seconds, exit 1 (default: no limit)",
    )
    sm.add_argument("--interval", type=_positive, default=DEFAULT_POLL_SECONDS, help=argparse.SUPPRESS)
    sm.set_defaults(func=cmd_submit)

    lg = sub.add_parser(
        "logs",
        parents=[common],
        help="a job's or cluster's Events and conditions",
        description="The operator's account of a TranslationJob or TranslationCluster: its conditions and its Events, "
        "oldest first. With --follow, new Events and condition changes are printed as they happen, until the job "
        "ends (or Ctrl-C).",
    )
    lg.add_argument("target", metavar="JOB_OR_CLUSTER", help="NAME (a job, else a cluster), tj/NAME or tc/NAME")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing new Events until the job ends")
    lg.add_argument("--timeout", type=_positive, default=0, metavar="S", help="stop following after S seconds")
    lg.add_argument("--interval", type=_positive, default=DEFAULT_POLL_SECONDS, help=argparse.SUPPRESS)
    lg.set_defaults(func=cmd_logs)

    co = sub.add_parser(
        "cost",
        parents=[common],
        help="spend by cluster, tenant and job",
        description="Spend in the current day, week or month: per cluster and tenant from the clusters' "
        "status.budget, and per job (jobs active in the window, with their whole spend) from status.cost. "
        "Spend the operator has not recorded yet shows as 0.00, a missing limit as -.",
    )
    _all_namespaces(co)
    co.add_argument("--window", choices=list(WINDOWS), default="day", help="day (default), week or month")
    co.add_argument("-o", "--output", choices=["table", "json"], default="table", help="table (default) or json")
    co.set_defaults(func=cmd_cost)

    rn = sub.add_parser(
        "release-node",
        parents=[common],
        help="release a GPU node Portalis quarantined",
        description=f"Release a node Portalis quarantined for GPU errors, once it is repaired: sets the annotation "
        f"{RELEASE_ANNOTATION}=true on it, and the operator then removes its {UNHEALTHY_TAINT} taint, labels and "
        "annotations and uncordons it. Refuses a node without that taint.",
    )
    rn.add_argument("node", metavar="NODE")
    rn.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    rn.set_defaults(func=cmd_release_node)
    return parser


def _choice(options: Sequence[str]) -> Callable[[str], str]:
    """Case-insensitive choice that returns the canonical spelling."""
    by_lower = {o.lower(): o for o in options}

    def parse(text: str) -> str:
        try:
            return by_lower[text.lower()]
        except KeyError:
            raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(options)}") from None

    return parse


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    stream = out or sys.stdout
    try:
        rc: int = args.func(args, stream)
    except PluginError as exc:
        stream.flush()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
