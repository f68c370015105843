"""Operator-wide settings read from the environment (the chart sets them); flags override them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env_list(name: str) -> list[str]:
    raw = os.environ.get(name, "")
    return [part.strip() for part in raw.split(",") if part.strip()]


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: list[str] = field(default_factory=list)  # PORTALIS_WATCH_NAMESPACES; empty: all namespaces

    @classmethod
    def from_env(cls) -> OperatorConfig:
        return cls(namespaces=_env_list("PORTALIS_WATCH_NAMESPACES"))
