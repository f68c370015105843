"""``kubectl portalis logs``: a job's or cluster's conditions and Events, optionally followed."""

from __future__ import annotations

import argparse
import time
from typing import Any, TextIO

from portalis.cli.kubeconfig import PluginError
from portalis.cli.kubectl.api import CLUSTERS, JOBS, Api, connect
from portalis.cli.kubectl.events import condition_changes, event_key, format_conditions, format_event
from portalis.cli.kubectl.output import TERMINAL_PHASES, meta_of, progress_line, status_of


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
    ctx, api = connect(args)
    namespace = str(ctx.namespace)
    kind, plural, obj = _find_target(api, namespace, args.target)
    name = meta_of(obj).get("name", "")
    status = status_of(obj)
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
        st = status_of(current)
        new_conditions = list(st.get("conditions") or [])
        for line in condition_changes(conditions, new_conditions):
            print("  " + line, file=out)
        conditions = new_conditions
        out.flush()
        if kind == "TranslationJob" and st.get("phase") in TERMINAL_PHASES:
            print(f"job {st.get('phase')}: {progress_line(st)}", file=out)
            return 0
