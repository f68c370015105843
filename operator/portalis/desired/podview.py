"""One view of a pod for every policy: cluster status, scaling, metering, the GPU health decisions and the drain.

``view_pod`` reads a pod body as the API server returns it; the policies read only the view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portalis.api.meta import Key, parse_time
from portalis.desired.pods import CLUSTER_LABEL, GPU_RESOURCE, ROLE_LABEL

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
RAY_NODE_TYPE_LABEL = "ray.io/node-type"
FAILING_WAITING_REASONS = frozenset(
    {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError"}
)


@dataclass(frozen=True)
class PodView:
    """What the policies need to know about one pod."""

    name: str
    role: str = "other"  # head | worker | other (portalis.dev/role, else ray.io/node-type)
    phase: str = "Pending"
    ready: bool = False
    deleting: bool = False
    gpus: int = 0  # nvidia.com/gpu limits of its containers
    node: str | None = None
    unschedulable_message: str | None = None
    waiting_reason: str | None = None  # a container waiting for a reason that means it fails
    namespace: str = ""
    cluster: str | None = None  # the TranslationCluster it belongs to (portalis.dev/cluster), if any
    daemonset: bool = False
    mirror: bool = False  # a static pod the kubelet owns
    uid: str = ""
    started: datetime | None = None  # status.startTime
    deleted_at: datetime | None = None  # metadata.deletionTimestamp

    @property
    def key(self) -> Key | None:
        """The TranslationCluster's key, for a pod of one."""
        return (self.namespace, self.cluster) if self.cluster else None

    @property
    def finished(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    @property
    def is_worker(self) -> bool:
        return self.role == "worker"


def gpu_limit(pod: Mapping[str, Any]) -> int:
    """The ``nvidia.com/gpu`` limits of a pod's containers; a value that is not a whole number counts as none."""
    total = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        raw = ((c.get("resources") or {}).get("limits") or {}).get(GPU_RESOURCE)
        if raw is not None and str(raw).isdigit():
            total += int(str(raw))
    return total


def view_pod(pod: Mapping[str, Any]) -> PodView:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    labels = meta.get("labels") or {}
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    sched = conds.get("PodScheduled") or {}
    unschedulable = None
    if sched.get("status") == "False" and sched.get("reason") == "Unschedulable":
        unschedulable = str(sched.get("message") or "the scheduler found no node that fits")
    waiting = None
    for cs in status.get("containerStatuses") or []:
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        if reason in FAILING_WAITING_REASONS:
            waiting = str(reason)
    owners = meta.get("ownerReferences") or []
    return PodView(
        name=str(meta.get("name", "")),
        role=str(labels.get(ROLE_LABEL) or labels.get(RAY_NODE_TYPE_LABEL, "other")),
        phase=str(status.get("phase") or "Pending"),
        ready=(conds.get("Ready") or {}).get("status") == "True",
        deleting=bool(meta.get("deletionTimestamp")),
        gpus=gpu_limit(pod),
        node=(pod.get("spec") or {}).get("nodeName") or None,
        unschedulable_message=unschedulable,
        waiting_reason=waiting,
        namespace=str(meta.get("namespace", "")),
        cluster=labels.get(CLUSTER_LABEL),
        daemonset=any(o.get("kind") == "DaemonSet" and o.get("controller") for o in owners),
        mirror=MIRROR_ANNOTATION in (meta.get("annotations") or {}),
        uid=str(meta.get("uid", "")),
        started=parse_time(status.get("startTime")),
        deleted_at=parse_time(meta.get("deletionTimestamp")),
    )
