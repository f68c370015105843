"""The circuit breaker that stops an alert storm from emptying the fleet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from portalis.api.meta import format_time


@dataclass(frozen=True)
class Breaker:
    """Closed (``tripped`` False) or tripped since ``since``; one per cluster and one for the fleet.

    It trips when an alert is held by a limit (an alert storm, or a broken exporter, reaching
    maxUnavailableNodes) and stays tripped, holding every further quarantine it covers, until a person releases
    nodes and the count falls back under the limit.
    """

    tripped: bool = False
    since: str | None = None
    reason: str | None = None

    def trip(self, now: datetime, reason: str) -> Breaker:
        if self.tripped:
            return replace(self, reason=reason)
        return Breaker(True, format_time(now), reason)

    def settle(self, quarantined: int, limit: int) -> Breaker:
        """Reset once fewer nodes than the limit are quarantined."""
        if self.tripped and quarantined < limit:
            return Breaker()
        return self

    def to_status(self) -> dict[str, Any]:
        """As merge-patched into status: a reset breaker clears ``since`` and ``reason`` (null removes them)."""
        if not self.tripped:
            return {"tripped": False, "since": None, "reason": None}
        return {"tripped": True, "since": self.since, "reason": (self.reason or "")[:1024]}

    @classmethod
    def from_status(cls, raw: Mapping[str, Any] | None) -> Breaker:
        if not raw or not raw.get("tripped"):
            return cls()
        return cls(True, raw.get("since"), raw.get("reason"))
