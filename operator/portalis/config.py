"""Operator-wide settings, read once from the environment (the chart sets them) or the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env_list(name: str) -> list[str]:
    raw = os.environ.get(name, "")
    return [part.strip() for part in raw.split(",") if part.strip()]


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: list[str] = field(default_factory=list)  # empty: all namespaces
    health_host: str = "0.0.0.0"
    health_port: int = 8080
    metrics_port: int = 9090
    field_manager: str = "portalis-operator"
    leader_election: bool = False

    @classmethod
    def from_env(cls) -> OperatorConfig:
        return cls(
            namespaces=_env_list("PORTALIS_WATCH_NAMESPACES"),
            health_host=os.environ.get("PORTALIS_HEALTH_HOST", "0.0.0.0"),
            health_port=int(os.environ.get("PORTALIS_HEALTH_PORT", "8080")),
            metrics_port=int(os.environ.get("PORTALIS_METRICS_PORT", "9090")),
            leader_election=os.environ.get("PORTALIS_LEADER_ELECTION", "false").lower() == "true",
        )
