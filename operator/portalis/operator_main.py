"""The operator process: optional leader election, metrics, then kopf with the controllers and /healthz, and the
GPU alert inputs (the Alertmanager webhook receiver, the dcgm-exporter poller) on kopf's event loop."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Coroutine
from typing import Any

import kopf

# The cyclic garbage collector's thresholds (generation 0 allocations, then collections of the younger generation
# per collection of the next). Python's default (700, 10, 10) runs a young collection every 700 container
# allocations; an operator parsing thousands of watch events a second into dicts ran one hundreds of times a
# second and spent about a fifth of its CPU there, most of it promoting short-lived bodies. The object graph is
# small in count but large in size (cached bodies), so fewer, larger young collections cost far less.
GC_THRESHOLDS = "50000,20,20"


def _tune_gc(thresholds: str) -> None:
    try:
        values = [int(v) for v in thresholds.split(",")]
    except ValueError:
        logging.getLogger("portalis").warning("PORTALIS_GC_THRESHOLDS=%r is not three integers; ignored", thresholds)
        return
    gc.set_threshold(*values[:3])
    gc.freeze()  # what start-up made (modules, classes, settings) lives as long as the process: never scanned


def run_operator(
    namespaces: list[str] | None,
    health: str,
    metrics_port: int = 0,
    verbose: bool = False,
    leader_elect: bool = False,
    leader_namespace: str | None = None,
    log_format: str = "text",
    webhook_port: int = 0,
    webhook_host: str = "0.0.0.0",
    webhook_token_file: str | None = None,
) -> int:
    # Importing the controllers registers their handlers with kopf's default registry.
    from portalis import metrics
    from portalis.clients.kube import Kube
    from portalis.clients.leader import LeaderElector
    from portalis.controllers import cluster, job, settings  # noqa: F401
    from portalis.controllers import health as health_controller  # noqa: F401

    _tune_gc(os.environ.get("PORTALIS_GC_THRESHOLDS", GC_THRESHOLDS))
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL)
    logging.getLogger().setLevel(logging.DEBUG if verbose else logging.INFO)
    # kopf reports every event handler call at INFO; the controllers log what happened to which object instead
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
    if metrics_port:
        metrics.serve(metrics_port)
    if leader_elect:
        namespace = leader_namespace or os.environ.get("POD_NAMESPACE") or "default"
        LeaderElector(Kube.shared(), namespace).acquire()
    operator = kopf.operator(
        clusterwide=not namespaces,
        namespaces=namespaces or (),
        standalone=True,
        liveness_endpoint=health,
    )
    asyncio.run(_with_alert_inputs(operator, webhook_port, webhook_host, webhook_token_file))
    return 0


async def _with_alert_inputs(
    operator: Coroutine[Any, Any, None], webhook_port: int, webhook_host: str, webhook_token_file: str | None
) -> None:
    """Run kopf with the GPU alert inputs on the same event loop: the Alertmanager webhook receiver
    (``--webhook-port``) and, with ``PORTALIS_DCGM_ENDPOINTS``, the dcgm-exporter poller."""
    from portalis import metrics
    from portalis.clients.alerts import AlertReceiver
    from portalis.clients.dcgm import DcgmPoller
    from portalis.controllers import health

    receiver = None
    if webhook_port:
        receiver = AlertReceiver(
            health.submit_alerts,
            webhook_token_file,
            webhook_host,
            webhook_port,
            on_rejected=lambda reason: metrics.ALERTS_RECEIVED.labels("", reason).inc(),
        )
        await receiver.start()
    endpoints = [e.strip() for e in os.environ.get("PORTALIS_DCGM_ENDPOINTS", "").split(",") if e.strip()]
    poller = None
    if endpoints:
        interval = float(os.environ.get("PORTALIS_DCGM_POLL_SECONDS", "10"))
        poller = asyncio.create_task(DcgmPoller(endpoints, health.submit_alerts, interval).run(), name="dcgm-poll")
    try:
        await operator
    finally:
        if poller is not None:
            poller.cancel()
        if receiver is not None:
            await receiver.stop()
