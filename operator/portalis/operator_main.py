"""The operator process: registers the controllers and runs kopf with a /healthz endpoint."""

from __future__ import annotations

import asyncio
import logging

import kopf


def run_operator(namespaces: list[str] | None, health: str, metrics_port: int = 0, verbose: bool = False) -> int:
    # Importing the controllers registers their handlers with kopf's default registry.
    from portalis import metrics
    from portalis.controllers import cluster, job, settings  # noqa: F401

    logging.getLogger().setLevel(logging.DEBUG if verbose else logging.INFO)
    if metrics_port:
        metrics.serve(metrics_port)
    kopf.configure(verbose=verbose)
    # kopf reports every event handler call at INFO; the controllers log what happened to which object instead
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces or (),
            standalone=True,
            liveness_endpoint=health,
        )
    )
    return 0
