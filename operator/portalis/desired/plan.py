"""A TranslationJob's source listing -> its plan: one work item per matching file (pure).

The job controller lists ``spec.source`` in S3, builds the plan here, stores it in S3 (``plan_to_json``) so a lost
queue can be rebuilt, and enqueues the items. Planning costs no more than the listing: nothing is downloaded,
so an item's line count, and with it its size class, is estimated from the object's size in bytes; the worker
records the real count when it translates the file.

Item ids are the zero-padded plan indexes of the items sorted by key, so planning the same listing twice gives
the same ids, and each source key maps to one deterministic output key: a redelivered item overwrites its output
instead of writing a second one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

# Size classes by line count, smallest first: (name, most lines in the class); xlarge has no upper bound.
SIZE_CLASSES: tuple[tuple[str, int | None], ...] = (
    ("tiny", 100),
    ("small", 1_000),
    ("medium", 10_000),
    ("large", 100_000),
    ("xlarge", None),
)

# Typical Python source averages 30-45 bytes a line (indentation included); 40 keeps the estimate on the
# conservative side for the size class. Only the listing is read when planning, so this is an estimate.
BYTES_PER_LINE = 40

DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024
PLAN_FORMAT_VERSION = 1
SOURCE_SUFFIX = ".py"


def estimate_lines(size_bytes: int) -> int:
    """Lines in a source file of ``size_bytes``, assuming ``BYTES_PER_LINE`` bytes a line (rounded up)."""
    if size_bytes <= 0:
        return 0
    return math.ceil(size_bytes / BYTES_PER_LINE)


def size_class(lines: int) -> str:
    """The size class of a file with ``lines`` lines."""
    for name, most in SIZE_CLASSES:
        if most is None or lines <= most:
            return name
    return SIZE_CLASSES[-1][0]


# --- globs -------------------------------------------------------------------------------------------------


def _glob_to_regex(glob: str) -> str:
    """One glob as a regex: ``**`` spans directories (``**/`` also matches none), ``*`` and ``?`` stay in one."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if glob.startswith("**", i):
                at_start = i == 0 or glob[i - 1] == "/"
                j = i + 2
                if at_start and j < n and glob[j] == "/":
                    out.append("(?:.*/)?")  # "**/" : any number of directories, none included
                    i = j + 1
                    continue
                if at_start and j == n and out and out[-1] == "/":
                    out.pop()  # "dir/**" : the directory itself or anything below it
                    out.append("(?:/.*)?")
                    i = j
                    continue
                out.append(".*")
                i = j
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            negated = glob.startswith("[!", i) or glob.startswith("[^", i)
            end = glob.find("]", i + (3 if negated else 2))  # a "]" first in the set is a member
            if end == -1:
                out.append(re.escape(c))
            else:
                body = glob[i + (2 if negated else 1) : end]
                body = body.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
                out.append(f"[^/{body}]" if negated else f"[{body}]")
                i = end + 1
                continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@lru_cache(maxsize=256)
def _compile(globs: tuple[str, ...]) -> re.Pattern[str] | None:
    """All globs as one anchored alternation, compiled once per distinct list."""
    if not globs:
        return None
    return re.compile("|".join(f"(?:{_glob_to_regex(g.lstrip('/'))})" for g in globs), re.DOTALL)


def match_globs(key_relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether a key, relative to the source prefix, matches an include glob and no exclude glob."""
    inc = _compile(tuple(include))
    if inc is None or inc.fullmatch(key_relative) is None:
        return False
    exc = _compile(tuple(exclude))
    return exc is None or exc.fullmatch(key_relative) is None


# --- keys --------------------------------------------------------------------------------------------------


def relative_key(source_prefix: str, key: str) -> str | None:
    """The key relative to the source prefix, or None when it is outside the prefix or a folder marker."""
    if not key.startswith(source_prefix) or key.endswith("/"):
        return None
    rel = key[len(source_prefix) :].lstrip("/")
    return rel or None


def output_key(output_prefix: str, relative_path: str, extension: str) -> str:
    """The output key of a source file: the prefix, the relative path, ``.py`` replaced by ``extension``."""
    stem = relative_path[: -len(SOURCE_SUFFIX)] if relative_path.endswith(SOURCE_SUFFIX) else relative_path
    if not extension.startswith("."):
        extension = "." + extension
    if output_prefix and not output_prefix.endswith("/"):
        output_prefix += "/"
    return f"{output_prefix}{stem.lstrip('/')}{extension}"


# --- the plan ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanItem:
    """One source file of the job and where its translation goes."""

    index: int
    item_id: str
    source_key: str
    relative_path: str
    size_bytes: int
    size_class: str
    output_key: str
    too_large: bool


def item_id(index: int) -> str:
    return f"{index:06d}"


def build_plan(
    objects: Iterable[tuple[str, int]],
    source_prefix: str,
    include: Sequence[str],
    exclude: Sequence[str],
    output_prefix: str,
    extension: str,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> list[PlanItem]:
    """The job's items from a listing of (key, size): matching keys sorted, ids their indexes.

    Files over ``max_file_bytes`` stay in the plan with ``too_large=True`` so the job can report them by name;
    they are not queued.
    """
    inc = _compile(tuple(include))
    if inc is None:
        return []
    exc = _compile(tuple(exclude))
    selected: dict[str, tuple[str, int]] = {}
    for key, size in objects:
        rel = relative_key(source_prefix, key)
        if rel is None or inc.fullmatch(rel) is None:
            continue
        if exc is not None and exc.fullmatch(rel) is not None:
            continue
        selected[key] = (rel, int(size))
    items: list[PlanItem] = []
    for index, key in enumerate(sorted(selected)):
        rel, size = selected[key]
        items.append(
            PlanItem(
                index=index,
                item_id=item_id(index),
                source_key=key,
                relative_path=rel,
                size_bytes=size,
                size_class=size_class(estimate_lines(size)),
                output_key=output_key(output_prefix, rel, extension),
                too_large=size > max_file_bytes,
            )
        )
    return items


def plan_to_json(items: Sequence[PlanItem]) -> dict[str, Any]:
    """The plan as a JSON-ready object, for storing it in S3 beside the outputs."""
    return {"version": PLAN_FORMAT_VERSION, "count": len(items), "items": [asdict(it) for it in items]}


def plan_from_json(obj: Any) -> list[PlanItem]:
    """The plan stored by ``plan_to_json``; ValueError when it is not one."""
    if not isinstance(obj, dict) or obj.get("version") != PLAN_FORMAT_VERSION or not isinstance(obj.get("items"), list):
        raise ValueError(f"not a version {PLAN_FORMAT_VERSION} Portalis plan")
    items = []
    for raw in obj["items"]:
        items.append(
            PlanItem(
                index=int(raw["index"]),
                item_id=str(raw["item_id"]),
                source_key=str(raw["source_key"]),
                relative_path=str(raw["relative_path"]),
                size_bytes=int(raw["size_bytes"]),
                size_class=str(raw["size_class"]),
                output_key=str(raw["output_key"]),
                too_large=bool(raw["too_large"]),
            )
        )
    if "count" in obj and obj["count"] != len(items):
        raise ValueError(f"plan says it has {obj['count']} items but holds {len(items)}")
    return items
