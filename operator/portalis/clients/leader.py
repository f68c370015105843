"""Leader election on a coordination.k8s.io Lease, like controller-runtime's: one active operator replica.

``acquire`` blocks until this process holds the Lease; a daemon thread renews it, and if renewal fails for
longer than the lease duration the process exits so that Kubernetes restarts it and another replica takes
over. Every write carries the Lease's resourceVersion, so two candidates can never both win.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from portalis.api.meta import parse_time
from portalis.clients.kube import Kube

log = logging.getLogger("portalis.leader")


def _now() -> datetime:
    return datetime.now(UTC)


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: Any) -> datetime | None:
    return parse_time(value)


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str = "portalis-operator",
        identity: str | None = None,
        lease_seconds: int = 15,
        renew_seconds: float = 5.0,
    ) -> None:
        self.api = kubernetes.client.CoordinationV1Api(kube.api)
        self.namespace = namespace
        self.name = name
        self.identity = identity or os.environ.get("POD_NAME") or f"{os.uname().nodename}-{os.getpid()}"
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self._stop = threading.Event()

    def _body(self, now: datetime, acquire: datetime, transitions: int, rv: str | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if rv is not None:
            meta["resourceVersion"] = rv
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.lease_seconds,
                "acquireTime": _fmt(acquire),
                "renewTime": _fmt(now),
                "leaseTransitions": transitions,
            },
        }

    def try_acquire_or_renew(self) -> bool:
        now = _now()
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            try:
                self.api.create_namespaced_lease(self.namespace, self._body(now, now, 0, None))  # type: ignore[arg-type]
            except ApiException as create_exc:
                if create_exc.status == 409:
                    return False
                raise
            return True
        spec, meta = lease.spec, lease.metadata
        if spec is None or meta is None:  # a Lease without spec is nobody's: take it
            spec = kubernetes.client.V1LeaseSpec()
            meta = meta or kubernetes.client.V1ObjectMeta()
        holder = spec.holder_identity
        renewed = _parse(spec.renew_time) or datetime.min.replace(tzinfo=UTC)
        duration = timedelta(seconds=spec.lease_duration_seconds or self.lease_seconds)
        if holder not in (None, "", self.identity) and renewed + duration > now:
            return False
        transitions = int(spec.lease_transitions or 0) + (0 if holder == self.identity else 1)
        acquired = _parse(spec.acquire_time) if holder == self.identity else now
        body = self._body(now, acquired or now, transitions, meta.resource_version)
        try:
            self.api.replace_namespaced_lease(self.name, self.namespace, body)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def acquire(self, poll_seconds: float = 2.0) -> None:
        log.info("waiting to lead: Lease %s/%s as %s", self.namespace, self.name, self.identity)
        while not self.try_acquire_or_renew():
            time.sleep(poll_seconds)
        log.info("leading: Lease %s/%s held by %s", self.namespace, self.name, self.identity)
        threading.Thread(target=self._renew_loop, name="lease-renewal", daemon=True).start()

    def _renew_loop(self) -> None:
        last_ok = time.monotonic()
        while not self._stop.wait(self.renew_seconds):
            try:
                if self.try_acquire_or_renew():
                    last_ok = time.monotonic()
                    continue
                log.error("lost the Lease %s/%s to another replica; exiting", self.namespace, self.name)
            except Exception as exc:  # the API server may be briefly away; keep trying within the lease
                log.warning("could not renew the Lease %s/%s: %s", self.namespace, self.name, exc)
                if time.monotonic() - last_ok < self.lease_seconds:
                    continue
                log.error("could not renew the Lease for %ss; exiting so another replica can lead", self.lease_seconds)
            os._exit(1)

    def stop(self) -> None:
        self._stop.set()

    def release(self) -> None:
        """Stop renewing and give the Lease up (an empty holder), so that a waiting replica takes it at once; a
        Lease another replica took meanwhile is left alone."""
        self.stop()
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec is None or lease.spec.holder_identity != self.identity or lease.metadata is None:
                return
            now = _now()
            body = self._body(now, now, int(lease.spec.lease_transitions or 0), lease.metadata.resource_version)
            body["spec"].update({"holderIdentity": "", "leaseDurationSeconds": 1})
            self.api.replace_namespaced_lease(self.name, self.namespace, body)  # type: ignore[arg-type]
            log.info("released the Lease %s/%s", self.namespace, self.name)
        except Exception as exc:  # the next replica then waits out the Lease as before
            log.warning("could not release the Lease %s/%s: %s", self.namespace, self.name, exc)
