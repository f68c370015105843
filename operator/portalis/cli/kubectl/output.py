"""Formatting shared by the commands: progress bars, durations, money, tables, conditions, timestamps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from portalis.api.meta import parse_time

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})

# Conditions that are fine when True, and conditions that are fine when False (anything else is not shown).
POSITIVE_CONDITIONS = frozenset({"Ready", "Planned"})
NEGATIVE_CONDITIONS = frozenset(
    {"Degraded", "BudgetWarning", "BudgetExceeded", "Suspended", "Failed", "AtRisk", "BudgetHeld"}
)

_CENT = Decimal("0.01")


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


def status_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("status") or {})


def meta_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("metadata") or {})


def condition_status(obj: Mapping[str, Any], type_: str) -> str:
    for c in status_of(obj).get("conditions") or []:
        if c.get("type") == type_:
            return str(c.get("status", "Unknown"))
    return "-"


def conditions_needing_attention(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Conditions that are not OK: Ready or Planned not True; Degraded, Failed, AtRisk, the budget ones... True."""
    out = []
    for c in status_of(obj).get("conditions") or []:
        type_, status = c.get("type"), c.get("status")
        if (type_ in POSITIVE_CONDITIONS and status != "True") or (type_ in NEGATIVE_CONDITIONS and status == "True"):
            out.append(dict(c))
    return out


def progress_line(status: Mapping[str, Any]) -> str:
    """One line of a job's progress: bar, percent, done/total, how many compile, failed, ETA and phase."""
    items = status.get("items") or {}
    pct = int(status.get("progressPercent") or 0)
    phase = status.get("phase") or "Pending"
    eta = "-" if phase in TERMINAL_PHASES else format_duration(status.get("etaSeconds"))
    return (
        f"{progress_bar(pct)} {pct:3d}%  {int(items.get('done') or 0)}/{int(items.get('total') or 0)} done"
        f"  {int(items.get('compiles') or 0)} compile  {int(items.get('failed') or 0)} failed  ETA {eta}  {phase}"
    )


def format_timestamp(value: Any) -> str:
    parsed = parse_time(value)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else "-"
