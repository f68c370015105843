"""Health policies: a cluster's ``spec.health``, the operator-wide settings, and how limits resolve."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from portalis.api.v1alpha1.cluster import EccAction, HealthSpec
from portalis.api.v1alpha1.common import is_count_or_percent, resolve_count_or_percent
from portalis.desired.health.names import (
    DEFAULT_DRAIN_TIMEOUT_SECONDS,
    DEFAULT_FLEET_MAX_UNAVAILABLE,
    DEFAULT_MANAGED_SELECTOR,
)
from portalis.desired.health.selector import (
    Requirement,
    parse_selector,
)

_STRENGTH = {EccAction.ALERT: 0, EccAction.CORDON: 1, EccAction.CORDON_AND_DRAIN: 2}


def strongest(actions: Iterable[EccAction]) -> EccAction:
    return max(actions, key=lambda a: _STRENGTH[a], default=EccAction.ALERT)


@dataclass(frozen=True)
class HealthPolicy:
    """One TranslationCluster's ``spec.health``, or the operator-wide default."""

    action: EccAction = EccAction.CORDON
    dry_run: bool = False
    max_unavailable: int | str = 1
    drain_timeout_seconds: int = DEFAULT_DRAIN_TIMEOUT_SECONDS


def policy_from_spec(spec: HealthSpec | None) -> HealthPolicy:
    if spec is None:
        return HealthPolicy()
    return HealthPolicy(
        action=spec.ecc_action,
        dry_run=spec.dry_run,
        max_unavailable=spec.max_unavailable_nodes,
        drain_timeout_seconds=spec.drain_timeout_seconds,
    )


@dataclass(frozen=True)
class HealthSettings:
    """Operator-wide settings (environment variables the chart can set through ``extraEnv``)."""

    managed_selector: tuple[Requirement, ...] = field(default_factory=lambda: parse_selector(DEFAULT_MANAGED_SELECTOR))
    managed_selector_text: str = DEFAULT_MANAGED_SELECTOR
    default_action: EccAction = EccAction.CORDON
    fleet_max_unavailable: int | str = DEFAULT_FLEET_MAX_UNAVAILABLE
    drain_timeout_seconds: int = DEFAULT_DRAIN_TIMEOUT_SECONDS
    identity: str = "portalis-operator"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HealthSettings:
        """Read ``PORTALIS_MANAGED_NODE_SELECTOR``, ``PORTALIS_DEFAULT_ECC_ACTION``,
        ``PORTALIS_FLEET_MAX_UNAVAILABLE`` and ``PORTALIS_DEFAULT_DRAIN_TIMEOUT_SECONDS``; raises ValueError with
        the variable's name when one is malformed."""
        selector_text = env.get("PORTALIS_MANAGED_NODE_SELECTOR", DEFAULT_MANAGED_SELECTOR)
        try:
            selector = parse_selector(selector_text)
        except ValueError as exc:
            raise ValueError(f"PORTALIS_MANAGED_NODE_SELECTOR: {exc}") from None
        raw_action = env.get("PORTALIS_DEFAULT_ECC_ACTION", EccAction.CORDON.value)
        try:
            action = EccAction(raw_action)
        except ValueError:
            known = ", ".join(a.value for a in EccAction)
            raise ValueError(f"PORTALIS_DEFAULT_ECC_ACTION: {raw_action!r} is not one of {known}") from None
        limit_raw = env.get("PORTALIS_FLEET_MAX_UNAVAILABLE", DEFAULT_FLEET_MAX_UNAVAILABLE).strip()
        limit: int | str = int(limit_raw) if limit_raw.isdigit() else limit_raw
        if not is_count_or_percent(limit):
            raise ValueError(
                f"PORTALIS_FLEET_MAX_UNAVAILABLE: {limit_raw!r} is neither a count nor a percentage such as 10%"
            )
        timeout_raw = env.get("PORTALIS_DEFAULT_DRAIN_TIMEOUT_SECONDS", str(DEFAULT_DRAIN_TIMEOUT_SECONDS))
        if not timeout_raw.isdigit() or int(timeout_raw) < 1:
            raise ValueError(f"PORTALIS_DEFAULT_DRAIN_TIMEOUT_SECONDS: {timeout_raw!r} is not a positive integer")
        identity = env.get("POD_NAME") or "portalis-operator"
        return cls(selector, selector_text, action, limit, int(timeout_raw), identity)

    def default_policy(self) -> HealthPolicy:
        return HealthPolicy(
            action=self.default_action,
            max_unavailable=self.fleet_max_unavailable,
            drain_timeout_seconds=self.drain_timeout_seconds,
        )


def resolve_limit(value: int | str, total: int) -> int:
    """A count passes through; a percentage of ``total`` rounds up, as a PodDisruptionBudget's maxUnavailable
    does, so any non-zero percentage allows one node. ``0`` and ``"0%"`` allow none."""
    return max(0, resolve_count_or_percent(value, max(0, total), round_up=True))
