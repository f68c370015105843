"""Status of the custom resources as pure functions of what was observed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from portalis.desired.conditions import UNKNOWN, ConditionUpdate, compute_conditions

CLUSTER_CONDITIONS = ("Ready", "Degraded")
JOB_CONDITIONS = ("Planned", "Running", "Succeeded", "Failed")


def _initial(status: dict[str, Any], types: tuple[str, ...], generation: int, now: datetime) -> dict[str, Any]:
    existing = status.get("conditions") or []
    known = {c.get("type") for c in existing}
    updates = [ConditionUpdate(t, UNKNOWN, "Pending", "Not reconciled yet.") for t in types if t not in known]
    return {
        "observedGeneration": generation,
        "conditions": compute_conditions(existing, updates, generation, now) if updates else existing,
    }


def compute_initial_cluster_status(status: dict[str, Any], generation: int, now: datetime) -> dict[str, Any]:
    """observedGeneration and the cluster's conditions, Unknown until they are observed."""
    return _initial(status, CLUSTER_CONDITIONS, generation, now)


def compute_initial_job_status(status: dict[str, Any], generation: int, now: datetime) -> dict[str, Any]:
    """observedGeneration and the job's conditions, Unknown until they are observed."""
    return _initial(status, JOB_CONDITIONS, generation, now)
