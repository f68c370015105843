"""TranslationCluster handlers: observe the CR, compute its status, patch status only when it changed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from portalis import GROUP, VERSION
from portalis.desired.status import compute_initial_cluster_status


@kopf.on.resume(GROUP, VERSION, "translationclusters")
@kopf.on.create(GROUP, VERSION, "translationclusters")
@kopf.on.update(GROUP, VERSION, "translationclusters")
def tc_reconcile(meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    desired = compute_initial_cluster_status(dict(status), int(meta.get("generation") or 0), datetime.now(UTC))
    if desired != {k: status.get(k) for k in desired}:
        patch.status.update(desired)
        logger.info(
            "TranslationCluster %s/%s: status observed generation %s",
            meta.namespace,
            meta.name,
            desired["observedGeneration"],
        )
