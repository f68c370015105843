"""Label selectors, as Kubernetes writes them: the managed-node selector."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if self.op in ("=", "in"):
            return has and value in self.values
        return not has or value not in self.values  # "!=" and "notin", as Kubernetes defines them


_SET_RE = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


_KEY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9./_-]*[A-Za-z0-9])?$")


def _split_selector(text: str) -> list[str]:
    """Split at commas outside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """A Kubernetes label selector string (``a=b,c!=d,e in (f,g),h,!i``); an empty one matches every node."""
    out: list[Requirement] = []
    for part in _split_selector(text):
        m = _SET_RE.match(part)
        if m:
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            out.append(Requirement(m.group(1), m.group(2), values))
            continue
        for op, name in (("!=", "!="), ("==", "="), ("=", "=")):
            if op in part:
                key, value = (s.strip() for s in part.split(op, 1))
                if not _KEY_RE.match(key):
                    raise ValueError(f"label selector {text!r}: bad key {key!r}")
                out.append(Requirement(key, name, (value,)))
                break
        else:
            negated = part.startswith("!")
            key = part[1:].strip() if negated else part
            if not _KEY_RE.match(key):
                raise ValueError(f"label selector {text!r}: cannot parse {part!r}")
            out.append(Requirement(key, "!exists" if negated else "exists"))
    return tuple(out)


def selector_matches(selector: Sequence[Requirement], labels: Mapping[str, str]) -> bool:
    return all(r.matches(labels) for r in selector)
