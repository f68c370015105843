"""Nodes and pods for GPU health: guarded node patches, pods on a node, evictions and Events on nodes.

Synchronous calls on the official client, run in worker threads by the health controller. The controller builds
every patch with the pure functions of ``portalis.desired.health``; this module only sends them:

- ``patch_guarded`` sends a JSON merge patch that carries the node's ``resourceVersion``, so the API server
  refuses it (409) when the node changed since it was read; it then re-reads the node and builds the patch
  again, a few times.
- ``evict`` posts a ``policy/v1`` Eviction, which the API server refuses with 429 while a PodDisruptionBudget
  would be violated ("Cannot evict pod as it would violate the pod's disruption budget"); the drain retries
  those until its timeout.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import kubernetes
from kubernetes.client.exceptions import ApiException

from portalis.clients.kube import FIELD_MANAGER, MERGE, Kube

log = logging.getLogger("portalis.nodes")

NODE_EVENT_NAMESPACE = "default"  # where Events about cluster-scoped objects live, as the kubelet records them


@dataclass(frozen=True)
class Eviction:
    """The answer to one eviction: evicted, gone (the pod no longer exists), blocked (429) or error."""

    outcome: str
    message: str = ""

    @property
    def done(self) -> bool:
        return self.outcome in ("evicted", "gone")


def _api_message(exc: ApiException) -> str:
    """The API server's message, with the causes it gives (the disruption budget that blocks an eviction)."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return str(exc.reason or exc.status)
    parts = [str(body.get("message") or exc.reason or exc.status)]
    for cause in (body.get("details") or {}).get("causes") or []:
        if cause.get("message"):
            parts.append(str(cause["message"]))
    return " ".join(parts)


class NodeClient:
    """Node and pod operations of the health controller; thread-safe (the client pools connections)."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.core = kube.core
        self.policy = kubernetes.client.PolicyV1Api(kube.api)

    # ---- nodes -------------------------------------------------------------------------------------------
    def get(self, name: str) -> dict[str, Any] | None:
        try:
            resp: Any = self.core.read_node(name, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return cast(dict[str, Any], json.loads(resp.data))

    def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the node; raises ApiException (409 when a resourceVersion in it is stale)."""
        resp: Any = self.core.patch_node(
            name, body, field_manager=FIELD_MANAGER, _content_type=MERGE, _preload_content=False
        )
        return cast(dict[str, Any], json.loads(resp.data))

    def patch_guarded(
        self,
        name: str,
        build: Callable[[dict[str, Any]], dict[str, Any] | None],
        first: dict[str, Any] | None = None,
        attempts: int = 5,
    ) -> dict[str, Any] | None:
        """Patch the node with ``build(node)``, re-reading and rebuilding on a resourceVersion conflict.

        ``first`` is the node as last seen (the watch cache), tried before reading it afresh. ``build`` returns
        None when there is nothing to do any more (the node changed so that the patch no longer applies); the
        result is then None, as it is when the node does not exist.
        """
        node = first
        for attempt in range(attempts):
            if node is None:
                node = self.get(name)
                if node is None:
                    return None
            body = build(node)
            if body is None:
                return None
            try:
                return self.patch(name, body)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                if exc.status != 409 or attempt == attempts - 1:
                    raise
                log.debug("node %s changed while being patched; reading it again", name)
                node = None
        return None

    def annotate(self, name: str, patch: dict[str, Any]) -> bool:
        """A merge patch without a resourceVersion (annotations only); False when the node is gone."""
        try:
            self.patch(name, patch)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # ---- pods --------------------------------------------------------------------------------------------
    def pods_on_node(self, name: str) -> list[dict[str, Any]]:
        resp: Any = self.core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={name}", _preload_content=False
        )
        return list(json.loads(resp.data).get("items") or [])

    def evict(self, namespace: str, name: str) -> Eviction:
        body: Any = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}}
        try:
            self.core.create_namespaced_pod_eviction(name, namespace, body, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return Eviction("gone")
            if exc.status == 429:
                return Eviction("blocked", _api_message(exc))
            return Eviction("error", _api_message(exc))
        return Eviction("evicted")

    def blocking_budgets(self, namespace: str, pod_labels: dict[str, str]) -> list[str]:
        """Names of the namespace's PodDisruptionBudgets that select the pod and allow no disruption now."""
        try:
            resp: Any = self.policy.list_namespaced_pod_disruption_budget(namespace, _preload_content=False)
        except ApiException:
            return []
        out = []
        for pdb in json.loads(resp.data).get("items") or []:
            selector = (pdb.get("spec") or {}).get("selector") or {}
            if _selects(selector, pod_labels) and int((pdb.get("status") or {}).get("disruptionsAllowed", 0)) < 1:
                out.append(str(pdb["metadata"]["name"]))
        return sorted(out)

    # ---- events ------------------------------------------------------------------------------------------
    def node_event(self, node: str, uid: str, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about the node (``kubectl describe node`` shows it); best effort, never raises."""
        involved = {"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid or node}
        self.kube.record_event(NODE_EVENT_NAMESPACE, involved, type_, reason, message)


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a pod's labels; an empty one selects all."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        has = key in labels
        if op == "In" and (not has or labels[key] not in values):
            return False
        if op == "NotIn" and has and labels[key] in values:
            return False
        if op == "Exists" and not has:
            return False
        if op == "DoesNotExist" and has:
            return False
    return True
