"""The Events of one look at a job, posted in order while the look goes on."""

from __future__ import annotations

import asyncio
from typing import Any

from portalis.controllers.job.context import Job, JobContext, log


async def post_event(ctx: JobContext, job: Job, type_: str, reason: str, message: str) -> None:
    """Record an Event without waiting for the API server: the reconcile goes on while it is posted, after
    the job's earlier Events of this reconcile (``reconcile`` waits for them all before it returns)."""
    log.info("%s/%s: %s: %s", job.key[0], job.key[1], reason, message)
    previous = job.events[-1] if job.events else None

    async def post() -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await asyncio.to_thread(ctx.kube.event, job.ref, type_, reason, message)

    job.events.append(asyncio.create_task(post()))


async def record_transitions(ctx: JobContext, job: Job, old: dict[str, Any], new: dict[str, Any]) -> None:
    before = {c.get("type"): (c.get("status"), c.get("reason")) for c in old.get("conditions") or []}
    for c in new.get("conditions") or []:
        if before.get(c["type"]) == (c["status"], c["reason"]):
            continue
        if c["status"] != "True" and c["type"] != "Planned":
            continue
        if c["type"] == "Planned" and c["status"] == "True":
            continue  # the Planned Event is raised when the plan is written
        warning = c["type"] in {"Failed", "AtRisk", "BudgetHeld"} or (c["type"] == "Planned" and c["status"] == "False")
        if c["type"] == "Running" or not c.get("message"):
            continue
        await post_event(ctx, job, "Warning" if warning else "Normal", c["reason"], c["message"])
