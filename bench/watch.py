"""Watch-based timing: record when objects appear or change, as seen by a client of the API server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import kubernetes

from portalis_devcluster.cluster import DevCluster


def api_client(kube: DevCluster) -> kubernetes.client.ApiClient:
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kube.kubeconfig), client_configuration=config)  # type: ignore[no-untyped-call]
    config.connection_pool_maxsize = 16
    return kubernetes.client.ApiClient(config)


SERIALIZER = kubernetes.client.ApiClient()


class Watcher(threading.Thread):
    """Streams events of one list call into ``on_event(type, obj, monotonic_time)`` until stopped."""

    def __init__(
        self,
        list_fn: Callable[..., Any],
        on_event: Callable[[str, dict[str, Any], float], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(daemon=True)
        self.list_fn = list_fn
        self.kwargs = kwargs
        self.on_event = on_event
        self.stopped = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        resource_version = None
        while not self.stopped.is_set():
            w = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
            try:
                if resource_version is None:
                    listing = self.list_fn(**self.kwargs)
                    meta = listing["metadata"] if isinstance(listing, dict) else listing.metadata
                    resource_version = meta["resourceVersion"] if isinstance(meta, dict) else meta.resource_version
                    self.ready.set()
                for event in w.stream(  # type: ignore[no-untyped-call]
                    self.list_fn, resource_version=resource_version, timeout_seconds=5, **self.kwargs
                ):
                    now = time.monotonic()
                    obj = event["object"]
                    raw = (
                        obj if isinstance(obj, dict) else kubernetes.client.ApiClient().sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
                    )
                    resource_version = raw["metadata"]["resourceVersion"]
                    self.on_event(event["type"], raw, now)
                    if self.stopped.is_set():
                        break
            except kubernetes.client.exceptions.ApiException as exc:
                if exc.status == 410:
                    resource_version = None
                    continue
                raise
            finally:
                w.stop()  # type: ignore[no-untyped-call]

    def stop(self) -> None:
        self.stopped.set()
