"""How ``kubectl portalis`` finds its cluster: the kubeconfig, read the way kubectl reads it.

``--kubeconfig`` (or ``$KUBECONFIG``, a list of files merged in order, or ``~/.kube/config``), ``--context``
(default: the current context), and the namespace from ``-n``, else the context's namespace, else ``default``.
Inside a pod without a kubeconfig, the pod's service account is used. API errors become ``PluginError`` with a
message a person can act on; the plugin prints it and exits 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class PluginError(Exception):
    """A failure the user can act on: printed as ``error: <message>``, exit code 1."""


@dataclass
class KubeContext:
    """An API client for one context of the kubeconfig, and the namespace commands default to."""

    api: Any  # kubernetes.client.ApiClient
    namespace: str
    context: str | None
    server: str


def kubeconfig_paths(explicit: str | None, environ: dict[str, str] | None = None) -> list[Path]:
    """The kubeconfig files kubectl reads: ``--kubeconfig``, else every file in $KUBECONFIG, else ~/.kube/config."""
    env = os.environ if environ is None else environ
    if explicit:
        return [Path(explicit).expanduser()]
    listed = env.get("KUBECONFIG", "")
    if listed:
        return [Path(p).expanduser() for p in listed.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def context_namespace(contexts: list[dict[str, Any]], name: str | None) -> str | None:
    """The namespace set on the named context (the current one when ``name`` is the current context's name)."""
    for ctx in contexts:
        if ctx.get("name") == name:
            ns = (ctx.get("context") or {}).get("namespace")
            return str(ns) if ns else None
    return None


def load(kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None) -> KubeContext:
    """An API client for the kubeconfig's context, or the in-cluster service account when there is no kubeconfig."""
    config = kubernetes.client.Configuration()
    paths = kubeconfig_paths(kubeconfig)
    existing = [p for p in paths if p.is_file()]
    if kubeconfig and not existing:
        raise PluginError(f"kubeconfig {kubeconfig} does not exist")
    if not existing:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            try:
                kubernetes.config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
            except kubernetes.config.ConfigException as exc:
                raise PluginError(f"cannot use the pod's service account: {exc}") from exc
            own = IN_CLUSTER_NAMESPACE_FILE.read_text().strip() if IN_CLUSTER_NAMESPACE_FILE.is_file() else ""
            return _context(config, namespace or own or "default", None)
        where = ", ".join(str(p) for p in paths)
        raise PluginError(f"no kubeconfig found (looked at {where}); set KUBECONFIG or pass --kubeconfig")
    config_file = os.pathsep.join(str(p) for p in existing)
    try:
        contexts, current = kubernetes.config.list_kube_config_contexts(config_file=config_file)  # type: ignore[no-untyped-call]
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=config_file, context=context, client_configuration=config
        )
    except kubernetes.config.ConfigException as exc:
        raise PluginError(f"cannot use kubeconfig {config_file}: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise PluginError(f"cannot read kubeconfig {config_file}: {exc}") from exc
    name = context or (current or {}).get("name")
    ns = namespace or context_namespace(list(contexts or []), name) or "default"
    return _context(config, ns, name)


def _context(config: Any, namespace: str, name: str | None) -> KubeContext:
    config.retries = 1  # fail fast, as kubectl does, when the API server cannot be reached
    if not config.verify_ssl:
        # the kubeconfig asked for it (insecure-skip-tls-verify); kubectl does not warn on every request either
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return KubeContext(kubernetes.client.ApiClient(config), namespace, name, str(config.host))


def api_message(exc: ApiException) -> str:
    """The API server's own message from an error response (its Status object), else the HTTP reason."""
    body = getattr(exc, "body", None)
    if body:
        try:
            status = json.loads(body)
        except (TypeError, ValueError):
            status = None
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    return str(exc.reason or f"HTTP {exc.status}")


def describe_api_error(exc: ApiException, what: str) -> str:
    """One line for an API error while doing ``what``: forbidden, unauthorized, not found or the server's message."""
    message = api_message(exc)
    if exc.status == 403:
        return f"forbidden: cannot {what}: {message}"
    if exc.status == 401:
        return f"unauthorized: cannot {what}: the credentials in your kubeconfig were rejected ({message})"
    if exc.status == 404:
        return f"cannot {what}: not found ({message})"
    return f"cannot {what}: {message}"


@contextmanager
def api_errors(what: str, server: str = "") -> Iterator[None]:
    """Turn API and connection errors inside the block into a PluginError that says what failed."""
    try:
        yield
    except ApiException as exc:
        raise PluginError(describe_api_error(exc, what)) from exc
    except urllib3.exceptions.HTTPError as exc:
        where = f" at {server}" if server else ""
        raise PluginError(f"cannot {what}: the API server{where} cannot be reached ({exc})") from exc
