"""TranslationJob handlers: observe the CR, compute its status, patch status only when it changed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from portalis import GROUP, VERSION
from portalis.desired.status import compute_initial_job_status


@kopf.on.resume(GROUP, VERSION, "translationjobs")
@kopf.on.create(GROUP, VERSION, "translationjobs")
@kopf.on.update(GROUP, VERSION, "translationjobs")
def tj_reconcile(meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    desired = compute_initial_job_status(dict(status), int(meta.get("generation") or 0), datetime.now(UTC))
    if desired != {k: status.get(k) for k in desired}:
        patch.status.update(desired)
        logger.info(
            "TranslationJob %s/%s: status observed generation %s",
            meta.namespace,
            meta.name,
            desired["observedGeneration"],
        )
