"""What every layer says about objects the same way: their keys, the API version of Portalis' kinds, and
Kubernetes timestamps (RFC 3339, ``Z`` for UTC).

The one home of these helpers: the controllers, the pure policies, the clients and ``kubectl portalis`` all
import them from here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from portalis import GROUP, VERSION

API_VERSION = f"{GROUP}/{VERSION}"

Key = tuple[str, str]  # (namespace, name) of a namespaced object

# a timestamp with more fractional digits than Python reads (Go's RFC3339Nano), or none, and a zone or none
_TIMESTAMP = re.compile(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def parse_time(value: object) -> datetime | None:
    """A Kubernetes timestamp as an aware UTC datetime; None when unset or malformed. A time without a zone
    is taken as UTC; fractions past microseconds are cut (Go writes nanoseconds)."""
    if not value:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            match = _TIMESTAMP.match(text)
            if not match:
                return None
            fraction = (match.group(2) or "")[:7]
            zone = (match.group(3) or "Z").replace("Z", "+00:00")
            try:
                parsed = datetime.fromisoformat(match.group(1) + fraction + zone)
            except ValueError:
                return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def format_time(moment: datetime) -> str:
    """A timestamp as Kubernetes writes one: UTC, whole seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
