"""``kubectl portalis release-node``: release a GPU node Portalis quarantined, once it is repaired."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from portalis.cli.kubeconfig import PluginError
from portalis.cli.kubectl.api import connect
from portalis.desired.health import QUARANTINE_ANNOTATIONS, QUARANTINED_LABEL, RELEASE_ANNOTATION, TAINT_KEY

UNHEALTHY_TAINT = TAINT_KEY  # what the operator's GPU health controller taints a quarantined node with


def unhealthy_taint(node: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``portalis.dev/gpu-unhealthy`` taint of a node, if Portalis quarantined it."""
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("key") == UNHEALTHY_TAINT:
            return dict(taint)
    return None


def portalis_marks(node: Mapping[str, Any]) -> list[str]:
    """The quarantine label and annotations Portalis put on a node, as ``kind key=value`` lines."""
    meta = node.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    out = [f"label {QUARANTINED_LABEL}={labels[QUARANTINED_LABEL]}"] if QUARANTINED_LABEL in labels else []
    out += [f"annotation {k}={annotations[k]}" for k in QUARANTINE_ANNOTATIONS if k in annotations]
    return out


def cmd_release_node(args: argparse.Namespace, out: TextIO) -> int:
    _, api = connect(args)
    node = api.node(args.node)
    if node is None:
        raise PluginError(f"no node named {args.node!r}")
    taint = unhealthy_taint(node)
    if taint is None:
        raise PluginError(
            f"node {args.node} has no {UNHEALTHY_TAINT} taint: Portalis did not quarantine it, so there is nothing "
            f"to release (a node cordoned by hand is uncordoned with `kubectl uncordon {args.node}`)"
        )
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    taint_text = f"{taint.get('key')}={taint.get('value', '')}:{taint.get('effect', '')}"
    print(f"node {args.node} is quarantined by Portalis:", file=out)
    print(f"  taint {taint_text}", file=out)
    if (node.get("spec") or {}).get("unschedulable"):
        print("  cordoned (unschedulable)", file=out)
    for mark in portalis_marks(node):
        print(f"  {mark}", file=out)
    if annotations.get(RELEASE_ANNOTATION) == "true":
        print(f"node {args.node} already has {RELEASE_ANNOTATION}=true; the operator is releasing it", file=out)
        print(f"watch it: kubectl get node {args.node} -w", file=out)
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise PluginError("not confirmed: pass --yes to release the node without a prompt")
        answer = input(f"Release node {args.node} back to the scheduler? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not released", file=out)
            return 1
    api.annotate_node(args.node, {RELEASE_ANNOTATION: "true"})
    print(f"node/{args.node} annotated {RELEASE_ANNOTATION}=true", file=out)
    print(
        f"the operator now removes the {UNHEALTHY_TAINT} taint and the Portalis labels and annotations, and "
        "uncordons the node",
        file=out,
    )
    print(f"watch it: kubectl get node {args.node} -w", file=out)
    return 0
