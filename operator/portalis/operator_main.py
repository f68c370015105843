"""The operator process: optional leader election, metrics, then kopf with the controllers and /healthz, and the
GPU alert inputs (the Alertmanager webhook receiver, the dcgm-exporter poller) on kopf's event loop."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import kopf

from portalis.config import OperatorConfig

if TYPE_CHECKING:
    from portalis.controllers.root import Portalis


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
    webhook_port: int = 0,
    webhook_host: str = "0.0.0.0",
    webhook_token_file: str | None = None,
) -> int:
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
        asyncio.run(_with_alert_inputs(operator, root, webhook_port, webhook_host, webhook_token_file))
    finally:
        if elector is not None:
            elector.release()  # a stopped leader hands over at once instead of after the Lease's 15 s
    return 0


async def _with_alert_inputs(
    operator: Coroutine[Any, Any, None],
    root: Portalis,
    webhook_port: int,
    webhook_host: str,
    webhook_token_file: str | None,
) -> None:
    """Run kopf with the GPU alert inputs on the same event loop: the Alertmanager webhook receiver
    (``--webhook-port``) and, with ``PORTALIS_DCGM_ENDPOINTS``, the dcgm-exporter poller."""
    from portalis import metrics
    from portalis.clients.alerts import AlertReceiver
    from portalis.clients.dcgm import DcgmPoller

    receiver = None
    if webhook_port:
        receiver = AlertReceiver(
            root.submit_alerts,
            webhook_token_file,
            webhook_host,
            webhook_port,
            on_rejected=lambda reason: metrics.ALERTS_RECEIVED.labels("", reason).inc(),
        )
        await receiver.start()
    poller = None
    if root.config.dcgm_endpoints:
        poller = asyncio.create_task(
            DcgmPoller(root.config.dcgm_endpoints, root.submit_alerts, root.config.dcgm_poll_seconds).run(),
            name="dcgm-poll",
        )
    try:
        await operator
    finally:
        if poller is not None:
            poller.cancel()
        if receiver is not None:
            await receiver.stop()
