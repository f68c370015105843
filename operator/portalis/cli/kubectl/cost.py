"""``kubectl portalis cost``: spend by cluster, tenant and job for a day, week or month."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO

from portalis.api.meta import parse_time
from portalis.cli.kubectl.api import CLUSTERS, JOBS, connect, namespace_scope
from portalis.cli.kubectl.output import format_money, meta_of, render_table, status_of, to_money

WINDOWS = {"day": "daily", "week": "weekly", "month": "monthly"}


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
        meta = meta_of(tc)
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        budget = status_of(tc).get("budget") or {}
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
        meta, spec, st = meta_of(tj), dict(tj.get("spec") or {}), status_of(tj)
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


def cmd_cost(args: argparse.Namespace, out: TextIO) -> int:
    ctx, api = connect(args)
    scope = namespace_scope(args, ctx)
    report = build_cost_report(
        api.list_objects(CLUSTERS, scope), api.list_objects(JOBS, scope), args.window, datetime.now(UTC)
    )
    report["namespace"] = scope
    if args.output == "json":
        print(json.dumps(report, indent=2), file=out)
    else:
        print(render_cost(report, scope is None), file=out)
    return 0
