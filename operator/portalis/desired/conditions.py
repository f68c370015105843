"""Status conditions as pure functions, following the Kubernetes ``metav1.Condition`` conventions.

A condition's ``lastTransitionTime`` changes only when its status changes, so recomputing status from
the same observations yields the same object and the controller can skip a no-op status patch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portalis.api.meta import format_time

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"


@dataclass(frozen=True)
class ConditionUpdate:
    type: str
    status: str
    reason: str
    message: str = ""


def compute_conditions(
    existing: list[dict[str, Any]] | None,
    updates: list[ConditionUpdate],
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Merge ``updates`` into ``existing`` conditions; untouched conditions are kept as they are."""
    by_type = {c.get("type"): dict(c) for c in (existing or []) if c.get("type")}
    for u in updates:
        old = by_type.get(u.type)
        changed = old is None or old.get("status") != u.status
        by_type[u.type] = {
            "type": u.type,
            "status": u.status,
            "reason": u.reason,
            "message": u.message,
            "lastTransitionTime": format_time(now) if changed or old is None else old.get("lastTransitionTime"),
            "observedGeneration": generation,
        }
    order = [u.type for u in updates]
    rest = [t for t in by_type if t not in order]
    return [by_type[t] for t in order + sorted(str(t) for t in rest)]


def condition(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    for c in conditions or []:
        if c.get("type") == type_:
            return c
    return None


def is_true(conditions: list[dict[str, Any]] | None, type_: str) -> bool:
    c = condition(conditions, type_)
    return c is not None and c.get("status") == TRUE
