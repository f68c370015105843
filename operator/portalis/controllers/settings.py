"""Operator start-up: kopf settings that keep Portalis' bookkeeping out of the CRs' status."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from portalis import GROUP


@kopf.on.startup()
def operator_startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Status is structural and owned by the controllers; kopf keeps its progress in annotations instead.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # Events are posted deliberately by the controllers; kopf's own per-handler chatter is kept to warnings.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    settings.batching.worker_limit = 50
