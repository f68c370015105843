"""``kubectl portalis status``: clusters and jobs at a glance, and the conditions that need attention."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from portalis.cli.kubectl.api import CLUSTERS, JOBS, connect, namespace_scope
from portalis.cli.kubectl.output import (
    TERMINAL_PHASES,
    condition_status,
    conditions_needing_attention,
    format_duration,
    format_money,
    meta_of,
    progress_bar,
    render_table,
    spend_vs_limit,
    status_of,
)


def cluster_row(tc: Mapping[str, Any], with_namespace: bool) -> list[str]:
    meta, spec, st = meta_of(tc), dict(tc.get("spec") or {}), status_of(tc)
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
    meta, spec, st = meta_of(tj), dict(tj.get("spec") or {}), status_of(tj)
    items = st.get("items") or {}
    pct = int(st.get("progressPercent") or 0)
    row = [
        meta.get("name", ""),
        (spec.get("clusterRef") or {}).get("name", ""),
        spec.get("priority") or "Batch",
        f"{progress_bar(pct)} {pct}%",
        f"{int(items.get('done') or 0)}/{int(items.get('total') or 0)}",
        f"{int(items.get('compiles') or 0)} ({int(st.get('verifiedPercent') or 0)}%)",
        format_money((st.get("cost") or {}).get("spent")),
        "-" if st.get("phase") in TERMINAL_PHASES else format_duration(st.get("etaSeconds")),
        st.get("phase") or "Pending",
    ]
    return [meta.get("namespace", ""), *row] if with_namespace else row


JOB_HEADERS = ["JOB", "CLUSTER", "PRIORITY", "PROGRESS", "DONE/TOTAL", "COMPILES", "COST", "ETA", "PHASE"]


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
            meta = meta_of(obj)
            who = f"{kind}/{meta.get('name')}" + (f" -n {meta.get('namespace')}" if all_ns else "")
            for c in conditions_needing_attention(obj):
                line = f"  {who}: {c.get('type')}={c.get('status')} {c.get('reason') or ''}"
                if c.get("message"):
                    line += f": {c['message']}"
                attention.append(line)
    if attention:
        parts.append("Conditions that are not OK:\n" + "\n".join(attention))
    return "\n\n".join(parts)


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    ctx, api = connect(args)
    scope = namespace_scope(args, ctx)
    clusters = api.list_objects(CLUSTERS, scope)
    jobs = api.list_objects(JOBS, scope)
    if scope and not clusters and not jobs:
        print(f"No TranslationClusters or TranslationJobs in namespace {scope}.", file=out)
        return 0
    print(render_status(clusters, jobs, scope is None), file=out)
    return 0
