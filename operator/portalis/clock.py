"""The metering clock: real UTC time plus an offset that tests and drills can set.

Budgets are tested by making time pass through this clock rather than by sleeping: when
PORTALIS_CLOCK_OFFSET_FILE names a file holding a number of seconds, that many seconds are added to the
current time wherever Portalis meters GPU time or finds a budget window. Nothing else reads it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

_cache: tuple[str, float, float] | None = None  # path, mtime, offset


def offset_seconds() -> float:
    global _cache
    path = os.environ.get("PORTALIS_CLOCK_OFFSET_FILE")
    if not path:
        return 0.0
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return 0.0
    if _cache is not None and _cache[0] == path and _cache[1] == mtime:
        return _cache[2]
    try:
        with open(path) as f:
            value = float(f.read().strip() or 0)
    except (OSError, ValueError):
        value = 0.0
    _cache = (path, mtime, value)
    return value


def now() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=offset_seconds())
