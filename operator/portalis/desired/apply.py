"""Whether an observed object already holds every field of the desired one (pure).

The controller server-side applies only when this is false, so a steady state costs no API writes, and an
edit or deletion of a field Portalis owns is noticed and restored on the next reconcile.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from portalis import GROUP

GENERATION_ANNOTATION = f"{GROUP}/cluster-generation"
DESIRED_HASH_ANNOTATION = f"{GROUP}/desired-hash"
WORKERS_ANNOTATION = f"{GROUP}/workers"  # the worker count Portalis chose, on the backend object it applied


def is_subset(desired: Any, observed: Any) -> bool:
    """True when ``observed`` contains ``desired``: maps by key, lists element-wise, scalars equal."""
    if isinstance(desired, dict):
        if not isinstance(observed, dict):
            return False
        return all(k in observed and is_subset(v, observed[k]) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(observed, list) or len(desired) != len(observed):
            return False
        return all(is_subset(d, o) for d, o in zip(desired, observed, strict=True))
    if isinstance(desired, bool) or isinstance(observed, bool):
        return desired is observed
    if isinstance(desired, int | float) and isinstance(observed, int | float):
        return desired == observed
    return bool(desired == observed)


def drifted_paths(desired: Any, observed: Any, path: str = "") -> list[str]:
    """The paths where ``observed`` lacks or differs from ``desired``, for Events and logs."""
    if isinstance(desired, dict) and isinstance(observed, dict):
        out: list[str] = []
        for k, v in desired.items():
            sub = f"{path}.{k}" if path else str(k)
            if k not in observed:
                out.append(sub)
            else:
                out.extend(drifted_paths(v, observed[k], sub))
        return out
    if isinstance(desired, list) and isinstance(observed, list) and len(desired) == len(observed):
        out = []
        for i, (d, o) in enumerate(zip(desired, observed, strict=True)):
            out.extend(drifted_paths(d, o, f"{path}[{i}]"))
        return out
    return [] if is_subset(desired, observed) else [path or "."]


def desired_hash(desired: dict[str, Any]) -> str:
    """A short stable hash of what Portalis wants, ignoring annotations (where the hash itself is kept)."""
    body = {k: v for k, v in desired.items() if k != "metadata"}
    body["metadata"] = {k: v for k, v in desired.get("metadata", {}).items() if k != "annotations"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


def annotate(desired: dict[str, Any], generation: int, replicas: int) -> dict[str, Any]:
    """``desired`` with the annotations Portalis keeps on a backend object: the TranslationCluster generation it
    was built from, the hash of what Portalis wants (to tell its own changes from someone else's), and the
    worker count the scaler chose."""
    desired["metadata"]["annotations"] = {
        GENERATION_ANNOTATION: str(generation),
        DESIRED_HASH_ANNOTATION: desired_hash(desired),
        WORKERS_ANNOTATION: str(replicas),
    }
    return desired


def applied_replicas(observed: Mapping[str, Any] | None) -> int | None:
    """The worker count Portalis chose last, as the backend object it applied records it; None before the first
    apply (or on an object applied without it)."""
    annotations = ((observed or {}).get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(WORKERS_ANNOTATION)
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None
