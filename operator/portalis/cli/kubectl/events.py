"""Events and conditions as the ``logs`` command and ``submit``'s follower print them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from portalis.api.meta import parse_time
from portalis.cli.kubectl.output import format_timestamp, render_table


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
