"""The operator process: optional leader election, metrics, then kopf with the composition root
(``controllers.root``: the controllers and the GPU alert inputs) and /healthz."""

from __future__ import annotations

import asyncio
import gc
import logging
import os

import kopf

from portalis.config import OperatorConfig


def _tune_gc(thresholds: str) -> None:
    """The cyclic garbage collector's thresholds (``PORTALIS_GC_THRESHOLDS``, default
    ``config.DEFAULT_GC_THRESHOLDS``), then everything start-up made frozen out of its scans."""
    try:
        values = [int(v) for v in thresholds.split(",")]
    except ValueError:
        logging.getLogger("portalis").warning("PORTALIS_GC_THRESHOLDS=%r is not three integers; ignored", thresholds)
        return
    gc.set_threshold(*values[:3])
    gc.freeze()  # what start-up made (modules, classes, settings) lives as long as the process: never scanned


def run_operator(
    config: OperatorConfig,
    namespaces: list[str] | None,
    health: str,
    metrics_port: int = 0,
    verbose: bool = False,
    leader_elect: bool = False,
    leader_namespace: str | None = None,
    log_format: str = "text",
) -> int:
    """Run the operator until it is stopped; ``config`` holds the settings the controllers and the GPU alert
    inputs (the Alertmanager webhook receiver, the dcgm-exporter poller) start with."""
    # Importing the composition root registers the handlers and indexes with kopf's default registry.
    from portalis import metrics
    from portalis.clients.leader import LeaderElector
    from portalis.controllers.root import Portalis

    _tune_gc(config.gc_thresholds)
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL)
    logging.getLogger().setLevel(logging.DEBUG if verbose else logging.INFO)
    # kopf reports every event handler call at INFO; the controllers log what happened to which object instead
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
    root = Portalis(config)
    if metrics_port:
        metrics.serve(metrics_port)
    elector = None
    if leader_elect:
        namespace = leader_namespace or os.environ.get("POD_NAMESPACE") or "default"
        elector = LeaderElector(root.kube, namespace)
        elector.acquire()
    operator = kopf.operator(
        clusterwide=not namespaces,
        namespaces=namespaces or (),
        standalone=True,
        liveness_endpoint=health,
        memo=kopf.Memo(portalis=root),
    )
    try:
        asyncio.run(operator)
    finally:
        if elector is not None:
            elector.release()  # a stopped leader hands over at once instead of after the Lease's 15 s
    return 0
