"""What the queue carries: the work item schema, a delivery of it, and the figures read back.

Stream entries are flat string maps (``WorkItem.to_fields``); Redis hands back bytes, turned into text here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

PRIORITIES: tuple[str, ...] = ("Interactive", "Batch", "Training", "LowPriority")
PRIOR_ATTEMPTS_FIELD = "prior_attempts"  # attempts used before a release, carried by the re-added copy


def as_str(value: Any) -> str:
    """A Redis reply (bytes or not) as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def as_int(value: Any, default: int = 0) -> int:
    """A Redis reply as an integer; ``default`` when the key was missing."""
    if value is None:
        return default
    return int(as_str(value))


@dataclass(frozen=True)
class WorkItem:
    """One source file of a job to translate, as carried by a stream entry."""

    job_namespace: str
    job_name: str
    job_uid: str
    item_id: str
    source_bucket: str
    source_key: str
    output_bucket: str
    output_key: str
    size_bytes: int
    size_class: str
    priority: str
    max_attempts: int
    source_language: str = "python"
    target_language: str = "rust"
    relative_path: str = ""  # path inside the job's source prefix, as the engine sees it; "" means source_key
    verify: bool = True  # check the output with the target's compiler (the job's spec.verify.enabled)

    def to_fields(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_fields(cls, raw: dict[Any, Any]) -> WorkItem:
        data = {as_str(k): as_str(v) for k, v in raw.items()}
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in data:
                if f.name in ("size_bytes", "max_attempts"):
                    kwargs[f.name] = int(data[f.name])
                elif f.name == "verify":
                    kwargs[f.name] = data[f.name].lower() in ("true", "1")
                else:
                    kwargs[f.name] = data[f.name]
        return cls(**kwargs)

    @property
    def path(self) -> str:
        return self.relative_path or self.source_key


@dataclass(frozen=True)
class Delivery:
    """An item handed to a worker: the stream entry it came from and how many times it was delivered."""

    item: WorkItem
    stream: str
    entry_id: str
    attempt: int
    consumer: str = ""


@dataclass(frozen=True)
class QueueDepth:
    priority: str
    waiting: int
    in_flight: int
    oldest_age_seconds: float


@dataclass(frozen=True)
class JobStats:
    done: int
    failed: int
    cached: int
    gpu_seconds: float
    lines: int
    failed_items: dict[str, str]
    enqueued: int
    epoch_present: bool
    compiles: int = 0  # of done: outputs the target's compiler accepted
    tokens: int = 0
    diagnostics: dict[str, list[str]] = field(default_factory=dict)  # item id -> the compiler's first errors
