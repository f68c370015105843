"""The few API calls the commands make, returning plain dicts; errors become PluginError."""

from __future__ import annotations

import argparse
import base64
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, cast

import kubernetes
from kubernetes.client.exceptions import ApiException

from portalis.cli.kubeconfig import KubeContext, PluginError, api_errors, api_message
from portalis.cli.kubeconfig import load as load_kubeconfig
from portalis.cli.kubectl.events import sort_events
from portalis.cli.kubectl.output import meta_of

GROUP = "portalis.dev"
VERSION = "v1alpha1"
CLUSTERS = "translationclusters"
JOBS = "translationjobs"


class Api:
    """The API calls of the commands."""

    def __init__(self, ctx: KubeContext) -> None:
        self.ctx = ctx
        self.custom = kubernetes.client.CustomObjectsApi(ctx.api)
        self.core = kubernetes.client.CoreV1Api(ctx.api)

    def _errors(self, what: str) -> AbstractContextManager[None]:
        return api_errors(what, self.ctx.server)

    def list_objects(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        what = f"list {plural}.{GROUP} " + (f"in namespace {namespace}" if namespace else "in all namespaces")
        with self._errors(what):
            try:
                if namespace:
                    result = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
                else:
                    result = self.custom.list_cluster_custom_object(GROUP, VERSION, plural)
            except ApiException as exc:
                if exc.status == 404:
                    raise PluginError(
                        f"the Portalis CRDs are not installed in this cluster ({plural}.{GROUP} not found); "
                        "install Portalis first (docs/installation.md)"
                    ) from exc
                raise
        items: list[dict[str, Any]] = list(cast(dict[str, Any], result).get("items") or [])
        return sorted(items, key=lambda o: (meta_of(o).get("namespace", ""), meta_of(o).get("name", "")))

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._errors(f"get {plural}.{GROUP} {name} in namespace {namespace}"):
            try:
                obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
        return dict(cast(dict[str, Any], obj))

    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        with self._errors(f"create {plural}.{GROUP} {name} in namespace {namespace}"):
            try:
                obj = self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
            except ApiException as exc:
                if exc.status == 409:
                    raise PluginError(f"{plural}.{GROUP} {name} already exists in namespace {namespace}") from exc
                if exc.status == 422:
                    raise PluginError(f"the API server rejected {name}: {api_message(exc)}") from exc
                raise
        return dict(cast(dict[str, Any], obj))

    @staticmethod
    def _raw(call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """A core API call's JSON as a dict (the typed models would turn camelCase keys into snake_case)."""
        resp = call(*args, _preload_content=False, **kwargs)
        data: dict[str, Any] = json.loads(resp.data)
        return data

    def events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        with self._errors(f"list events in namespace {namespace}"):
            result = self._raw(self.core.list_namespaced_event, namespace, field_selector=selector)
        return sort_events(result.get("items") or [])

    def secret(self, namespace: str, name: str) -> dict[str, str]:
        with self._errors(f"get Secret {name} in namespace {namespace}"):
            result = self._raw(self.core.read_namespaced_secret, name, namespace)
        return {k: base64.b64decode(v).decode() for k, v in (result.get("data") or {}).items()}

    def node(self, name: str) -> dict[str, Any] | None:
        with self._errors(f"get node {name}"):
            try:
                return self._raw(self.core.read_node, name)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

    def annotate_node(self, name: str, annotations: dict[str, str]) -> None:
        body = {"metadata": {"annotations": annotations}}
        with self._errors(f"annotate node {name}"):
            self.core.patch_node(name, body, _content_type="application/merge-patch+json")


def connect(args: argparse.Namespace) -> tuple[KubeContext, Api]:
    ctx = load_kubeconfig(
        getattr(args, "kubeconfig", None), getattr(args, "context", None), getattr(args, "namespace", None)
    )
    return ctx, Api(ctx)


def namespace_scope(args: argparse.Namespace, ctx: KubeContext) -> str | None:
    return None if getattr(args, "all_namespaces", False) else str(ctx.namespace)
