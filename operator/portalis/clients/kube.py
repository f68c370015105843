"""The Kubernetes API: server-side apply, status patches, deletes and Events, tolerant of 404 and 409.

Synchronous calls on the official client, run in worker threads by the async controllers
(``await asyncio.to_thread(...)``). Every write names Portalis' field manager, so ``kubectl get -o yaml
--show-managed-fields`` shows which fields Portalis owns.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from portalis import metrics
from portalis.clients import IO_THREADS

log = logging.getLogger("portalis.kube")

FIELD_MANAGER = "portalis-operator"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"


@dataclass(frozen=True)
class Ref:
    """What an Event is about, and what a status patch targets."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str = ""

    @property
    def group(self) -> str:
        return self.api_version.split("/")[0] if "/" in self.api_version else ""

    @property
    def version(self) -> str:
        return self.api_version.split("/")[-1]


PLURALS = {
    "TranslationCluster": "translationclusters",
    "TranslationJob": "translationjobs",
    "RayCluster": "rayclusters",
    "RayJob": "rayjobs",
    "DaskCluster": "daskclusters",
    "DaskWorkerGroup": "daskworkergroups",
}


# Characters the apiserver's YAML decoder refuses to read raw (DEL, the C1 controls, U+FFFE, U+FFFF, lone
# surrogates), or reads as line breaks and folds into a space inside a quoted string (NEL, U+2028, U+2029), and the
# byte order mark. json.dumps escapes the controls below U+0020 itself.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")


def apply_body(obj: dict[str, Any]) -> bytes:
    """The body of a server-side apply: JSON, which is YAML, in UTF-8.

    The client's own encoding escapes characters beyond U+FFFF as surrogate pairs, which the apiserver's YAML
    decoder rejects, so every other character is written as itself, except those YAML does not read back as
    themselves, which keep their JSON escape.
    """
    text = json.dumps(obj, ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m[0]):04x}", text).encode()


# A server-side apply whose object has fields its schema does not declare fails as an internal error (500)
# with this message, every time, rather than as an invalid object.
TYPED_PATCH_ERROR = "failed to create typed patch object"


def rejection(exc: BaseException) -> str | None:
    """The apiserver's message when it refused a write as invalid (400, 422, or the 500 of a server-side apply
    that does not fit the schema); None for any other failure, which may pass on a retry."""
    if not isinstance(exc, ApiException) or exc.status not in (400, 422, 500):
        return None
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    if exc.status == 500 and TYPED_PATCH_ERROR not in str(message or ""):
        return None
    return str(message or exc.reason or f"HTTP {exc.status}")


def not_found(exc: BaseException) -> bool:
    return isinstance(exc, ApiException) and exc.status == 404


def conflict(exc: BaseException) -> bool:
    return isinstance(exc, ApiException) and exc.status == 409


class Kube:
    """A thread-safe handle on the API server for the operator process."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.api = api_client
        self.custom = kubernetes.client.CustomObjectsApi(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.field_manager = FIELD_MANAGER

    @classmethod
    def from_kubeconfig(cls) -> Kube:
        """A handle on the API server the pod's service account or the kubeconfig names."""
        return cls(_load_client())

    # ---- custom objects ----------------------------------------------------------------------------------
    def apply(self, obj: dict[str, Any], force: bool = True) -> dict[str, Any]:
        """Server-side apply of a namespaced custom object; creates it when missing."""
        group, version = obj["apiVersion"].split("/")
        meta = obj["metadata"]
        method, url, headers, _, post = self.custom._patch_namespaced_custom_object_serialize(
            group=group,
            version=version,
            namespace=meta["namespace"],
            plural=PLURALS[obj["kind"]],
            name=meta["name"],
            body=obj,
            dry_run=None,
            field_manager=self.field_manager,
            field_validation=None,
            force=force,
            _request_auth=None,
            _content_type=APPLY,
            _headers=None,
            _host_index=0,
        )
        response = self.api.call_api(method, url, headers, apply_body(obj), post)
        response.read()  # type: ignore[no-untyped-call]
        result = self.api.response_deserialize(
            response_data=response, response_types_map={"200": "object", "201": "object"}
        ).data
        return cast(dict[str, Any], result)

    def get(self, ref: Ref) -> dict[str, Any] | None:
        try:
            obj = self.custom.get_namespaced_custom_object(
                ref.group, ref.version, ref.namespace, PLURALS[ref.kind], ref.name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return cast(dict[str, Any], obj)

    def patch_status(self, ref: Ref, status: dict[str, Any]) -> None:
        """Merge-patch the status subresource; a deleted object is not an error."""
        try:
            self._send("PATCH", _object_path(ref) + "/status", MERGE, {"status": status})
        except ApiException as exc:
            if exc.status != 404:
                raise

    def patch(self, ref: Ref, body: dict[str, Any]) -> None:
        try:
            self._send("PATCH", _object_path(ref), MERGE, body)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _send(self, method: str, path: str, content_type: str, body: dict[str, Any]) -> None:
        """One request whose answer Portalis does not read, made without the generated API methods: their
        argument validation and the walk that serializes the body cost more CPU than the rest of the request
        (a status patch or an Event is made for every job). Raises ApiException as those do."""
        method, url, headers, _, post = self.api.param_serialize(
            method=method,
            resource_path=path,
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(method, url, headers, body, post)
        response.read()  # type: ignore[no-untyped-call]
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=None, data=None)

    def delete(self, ref: Ref) -> bool:
        try:
            self.custom.delete_namespaced_custom_object(
                ref.group,
                ref.version,
                ref.namespace,
                PLURALS[ref.kind],
                ref.name,
                propagation_policy="Background",
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # ---- events ------------------------------------------------------------------------------------------
    def event(self, ref: Ref, type_: str, reason: str, message: str) -> None:
        """Record a core/v1 Event on ``ref``; failures are logged, never raised (Events are best effort)."""
        involved = {
            "apiVersion": ref.api_version,
            "kind": ref.kind,
            "name": ref.name,
            "namespace": ref.namespace,
            "uid": ref.uid,
        }
        self.record_event(ref.namespace, involved, type_, reason, message)

    def record_event(self, namespace: str, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Record a core/v1 Event in ``namespace`` about ``involved`` (an object reference); best effort."""
        now = datetime.now(UTC).isoformat()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{involved['name']}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
            "involvedObject": involved,
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": os.environ.get("POD_NAME", FIELD_MANAGER),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._send("POST", f"/api/v1/namespaces/{quote(namespace, safe='')}/events", "application/json", body)
        except ApiException as exc:
            log.warning(
                "could not record Event %s on %s %s: %s", reason, involved["kind"], involved["name"], exc.reason
            )


def _object_path(ref: Ref) -> str:
    """The API path of a namespaced custom object."""
    names = (ref.group, ref.version, ref.namespace, PLURALS[ref.kind], ref.name)
    group, version, namespace, plural, name = (quote(n, safe="") for n in names)
    return f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}"


def resource_of(url: str) -> str:
    """The resource a request is about, for the request counter: ``translationjobs``, ``rayclusters/status``,
    ``events`` (the plural, and the subresource when there is one)."""
    path = url.split("://", 1)[-1].split("?", 1)[0]
    parts = [p for p in path.split("/")[1:] if p]
    # /api/v1/... or /apis/<group>/<version>/...; then namespaces/<ns>/ when namespaced
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    if not rest:
        return "other"
    return rest[0] if len(rest) < 3 else f"{rest[0]}/{rest[2]}"


class CountingApiClient(kubernetes.client.ApiClient):
    """Counts every request Portalis makes to the API server, by HTTP method and resource (kopf's watches are
    its own)."""

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        metrics.API_REQUESTS.labels(method.upper(), resource_of(url)).inc()
        return super().call_api(method, url, *args, **kwargs)


def _load_client() -> kubernetes.client.ApiClient:
    config = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        # KUBECONFIG as it is now (the client library reads it once, when it is imported)
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG") or None, client_configuration=config
        )
    config.connection_pool_maxsize = IO_THREADS
    if not config.verify_ssl:
        # the kubeconfig itself asked to skip verification (the local cluster); say so once, not per request
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        log.warning("TLS verification of the API server is off, as the kubeconfig asks")
    return CountingApiClient(config)
