"""The operator process: optional leader election, metrics, then kopf with the controllers and /healthz."""

from __future__ import annotations

import asyncio
import logging
import os

import kopf


def run_operator(
    namespaces: list[str] | None,
    health: str,
    metrics_port: int = 0,
    verbose: bool = False,
    leader_elect: bool = False,
    leader_namespace: str | None = None,
    log_format: str = "text",
) -> int:
    # Importing the controllers registers their handlers with kopf's default registry.
    from portalis import metrics
    from portalis.clients.kube import Kube
    from portalis.clients.leader import LeaderElector
    from portalis.controllers import cluster, job, settings  # noqa: F401

    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL)
    logging.getLogger().setLevel(logging.DEBUG if verbose else logging.INFO)
    # kopf reports every event handler call at INFO; the controllers log what happened to which object instead
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
    if metrics_port:
        metrics.serve(metrics_port)
    if leader_elect:
        namespace = leader_namespace or os.environ.get("POD_NAMESPACE") or "default"
        LeaderElector(Kube.shared(), namespace).acquire()
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces or (),
            standalone=True,
            liveness_endpoint=health,
        )
    )
    return 0
