"""The metering clock: real UTC time plus an offset that tests and drills can set.

Budgets are tested by making time pass through this clock rather than by sleeping: when the operator is given
an offset file (``PORTALIS_CLOCK_OFFSET_FILE``, read in ``portalis.config``) holding a number of seconds, that
many seconds are added to the current time wherever Portalis meters GPU time or finds a budget window. The file
is read again whenever it changes. Nothing else reads this clock.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta


class MeteringClock:
    def __init__(self, offset_file: str | None = None) -> None:
        self.offset_file = offset_file
        self._cache: tuple[float, float] | None = None  # (mtime, offset)

    def offset_seconds(self) -> float:
        if not self.offset_file:
            return 0.0
        try:
            mtime = os.stat(self.offset_file).st_mtime
        except OSError:
            return 0.0
        if self._cache is not None and self._cache[0] == mtime:
            return self._cache[1]
        try:
            with open(self.offset_file) as f:
                value = float(f.read().strip() or 0)
        except (OSError, ValueError):
            value = 0.0
        self._cache = (mtime, value)
        return value

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset_seconds())
