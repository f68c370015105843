"""The operator process: registers the controllers and runs kopf with a /healthz endpoint."""

from __future__ import annotations

import asyncio
import logging

import kopf


def run_operator(namespaces: list[str] | None, health: str, verbose: bool = False) -> int:
    # Importing the controllers registers their handlers with kopf's default registry.
    from portalis.controllers import cluster, job, settings  # noqa: F401

    logging.getLogger().setLevel(logging.DEBUG if verbose else logging.INFO)
    kopf.configure(verbose=verbose)
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces or (),
            standalone=True,
            liveness_endpoint=health,
        )
    )
    return 0
