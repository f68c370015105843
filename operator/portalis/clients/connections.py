"""The queue and object store of a TranslationCluster, resolved from its spec and Secrets, cached per cluster.

Secrets are read from the cluster's namespace when first needed and again when the spec that names them
changes; their values never reach a log line or a status field.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
import redis

from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.clients.kube import Kube, not_found
from portalis.clients.queue import RedisQueue, redis_client
from portalis.clients.store import Store

log = logging.getLogger("portalis.connections")


class ConnectionError_(RuntimeError):
    """The cluster's queue or store settings cannot be resolved (a Secret or key is missing)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class ClusterConnections:
    queue: RedisQueue
    store: Store
    bucket: str
    fingerprint: str
    # the parsed spec these were made for: the same object again needs no fingerprint
    spec: object = field(default=None, compare=False, repr=False)


class Connections:
    """Per-cluster queue and store clients for the operator process (thread-safe). The operator makes one, so its
    controllers share one connection pool per cluster."""

    def __init__(self, kube: Kube, visibility_timeout_seconds: float | None = None) -> None:
        self.kube = kube
        self._lock = threading.Lock()
        self._by_cluster: dict[tuple[str, str], ClusterConnections] = {}
        self._redis: dict[str, redis.Redis] = {}
        self._stores: dict[tuple[str | None, str, str | None, str | None, bool], Store] = {}
        # one boto3 Session for every store (used under self._lock: a Session is not thread-safe, its clients
        # are): each Session loads the S3 service model again, about 12 MB per distinct endpoint and credentials
        self._session = boto3.session.Session()
        self._visibility = visibility_timeout_seconds

    def _secret(self, namespace: str, name: str, key: str) -> str:
        try:
            secret = self.kube.core.read_namespaced_secret(name, namespace)
        except Exception as exc:
            if not_found(exc):
                raise ConnectionError_(
                    "SecretNotFound", f"Secret {namespace}/{name} does not exist; create it with key {key}"
                ) from exc
            raise
        data: dict[str, Any] = dict(getattr(secret, "data", None) or {})
        if key not in data:
            raise ConnectionError_("SecretKeyNotFound", f"Secret {namespace}/{name} has no key {key}")
        return base64.b64decode(data[key]).decode()

    def known(self, namespace: str, name: str, spec: TranslationClusterSpec) -> ClusterConnections | None:
        """The connections made for this very spec object, if any: a lookup that blocks on nothing, so a caller on
        the event loop needs no thread for it (the operator's specs are parsed once per generation)."""
        with self._lock:
            cached = self._by_cluster.get((namespace, name))
        return cached if cached is not None and cached.spec is spec else None

    async def for_cluster_async(self, namespace: str, name: str, spec: TranslationClusterSpec) -> ClusterConnections:
        """``for_cluster`` from the event loop: in a thread only when Secrets must be read or clients made."""
        known = self.known(namespace, name, spec)
        if known is not None:
            return known
        return await asyncio.to_thread(self.for_cluster, namespace, name, spec)

    def for_cluster(self, namespace: str, name: str, spec: TranslationClusterSpec) -> ClusterConnections:
        known = self.known(namespace, name, spec)
        if known is not None:
            return known
        fingerprint = spec.queue.model_dump_json() + spec.storage.model_dump_json() + spec.engine.model_dump_json()
        key = (namespace, name)
        with self._lock:
            cached = self._by_cluster.get(key)
        if cached is not None and cached.fingerprint == fingerprint:
            cached.spec = spec
            return cached
        if spec.queue.url_secret_ref is not None:
            ref = spec.queue.url_secret_ref
            url = self._secret(namespace, ref.name, ref.key)
        else:
            url = str(spec.queue.url)
        access = secret_key = None
        if spec.storage.credentials_secret_ref is not None:
            secret = spec.storage.credentials_secret_ref.name
            access = self._secret(namespace, secret, "AWS_ACCESS_KEY_ID")
            secret_key = self._secret(namespace, secret, "AWS_SECRET_ACCESS_KEY")
        kwargs: dict[str, Any] = {}
        if self._visibility is not None:
            kwargs["visibility_timeout_seconds"] = self._visibility
        else:
            kwargs["visibility_timeout_seconds"] = float(spec.engine.timeout_seconds + 60)
        # clusters that share a Redis or an S3 endpoint and credentials share one client (and its pool)
        with self._lock:
            client = self._redis.get(url)
            if client is None:
                client = self._redis[url] = redis_client(url, max_connections=64, socket_timeout=5)
            endpoint = str(spec.storage.endpoint) if spec.storage.endpoint else None
            path_style = spec.storage.force_path_style or bool(spec.storage.endpoint)
            store_key = (endpoint, spec.storage.region, access, secret_key, path_style)
            store = self._stores.get(store_key)
            if store is None:
                store = self._stores[store_key] = Store(
                    endpoint,
                    region=spec.storage.region,
                    access_key=access,
                    secret_key=secret_key,
                    force_path_style=path_style,
                    session=self._session,
                )
        queue = RedisQueue(client, namespace, name, **kwargs)
        conns = ClusterConnections(queue, store, spec.storage.bucket, fingerprint, spec)
        with self._lock:
            self._by_cluster[key] = conns
        log.info("connected cluster %s/%s to its queue and object store", namespace, name)
        return conns

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._by_cluster.pop((namespace, name), None)
