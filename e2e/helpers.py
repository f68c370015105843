"""Small helpers for end-to-end tests: kubectl in one namespace, waiting, conditions and Events."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from portalis_devcluster.cluster import DevCluster

T = TypeVar("T")


def wait_for(fn: Callable[[], T | None], timeout: float = 30, interval: float = 0.2) -> T:
    """Poll ``fn`` until it returns something truthy; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = fn()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s (last value {last!r})")
        time.sleep(interval)
        last = fn()
    assert last is not None
    return last


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Cluster:
    """kubectl bound to one test namespace."""

    def __init__(self, kube: DevCluster, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.kube.kubectl("-n", self.namespace, *args, input=input, check=check)

    def apply_example(self, path: Path, patch: dict[str, Any] | None = None) -> dict[str, Any]:
        manifest: dict[str, Any] = yaml.safe_load(path.read_text())
        if patch:
            manifest = merge(manifest, patch)
        self.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        return manifest

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def get_or_none(self, kind: str, name: str) -> dict[str, Any] | None:
        proc = self.kubectl("get", kind, name, "-o", "json", check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr:
                return None
            raise AssertionError(proc.stderr)
        obj: dict[str, Any] = json.loads(proc.stdout)
        return obj

    def get_cluster_scoped(self, kind: str, name: str) -> Any:
        return json.loads(self.kube.kubectl("get", kind, name, "-o", "json").stdout)

    def condition_obj(self, kind: str, name: str, type_: str) -> dict[str, Any] | None:
        obj = self.get_or_none(kind, name)
        for c in ((obj or {}).get("status") or {}).get("conditions") or []:
            if c.get("type") == type_:
                return dict(c)
        return None

    def condition(self, kind: str, name: str, type_: str) -> str | None:
        c = self.condition_obj(kind, name, type_)
        return None if c is None else str(c.get("status"))

    def events(self, kind: str, name: str) -> list[dict[str, Any]]:
        items = self.get("events", "--field-selector", f"involvedObject.kind={kind},involvedObject.name={name}")[
            "items"
        ]
        return list(items)
