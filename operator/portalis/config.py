"""The operator's settings, read from the environment once at start-up (the chart sets them); flags override
some of them. Nothing else in the operator reads a ``PORTALIS_*`` variable: every part is handed what it needs
from here. (The data plane's worker processes read their own settings: ``portalis.worker.local``.)"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from portalis.desired.budget import Prices
from portalis.desired.health import HealthSettings

# The cyclic garbage collector's thresholds (generation 0 allocations, then collections of the younger generation
# per collection of the next). Python's default (700, 10, 10) runs a young collection every 700 container
# allocations; an operator parsing thousands of watch events a second into dicts ran one hundreds of times a
# second and spent about a fifth of its CPU there, most of it promoting short-lived bodies. The object graph is
# small in count but large in size (cached bodies), so fewer, larger young collections cost far less.
DEFAULT_GC_THRESHOLDS = "50000,20,20"
DEFAULT_JOB_SWEEP_SECONDS = 60.0
DEFAULT_DCGM_POLL_SECONDS = 10.0


def _list(env: Mapping[str, str], name: str) -> list[str]:
    return [part.strip() for part in env.get(name, "").split(",") if part.strip()]


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: {raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ValueError(f"{name}: {raw!r} is not a positive number of seconds")
    return value


def _price(env: Mapping[str, str], name: str) -> Decimal:
    raw = env.get(name, "").strip() or "0"
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{name}: {raw!r} is not a price such as 3.60") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name}: {raw!r} is not a price such as 3.60")
    return value


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: list[str] = field(default_factory=list)  # PORTALIS_WATCH_NAMESPACES; empty: all namespaces
    # PORTALIS_DEFAULT_ON_DEMAND_GPU_HOUR and PORTALIS_DEFAULT_SPOT_GPU_HOUR: prices of clusters without spec.pricing
    default_prices: Prices = field(default_factory=lambda: Prices(Decimal(0), Decimal(0)))
    default_prices_set: bool = False  # PORTALIS_DEFAULT_ON_DEMAND_GPU_HOUR is set: clusters are metered without it
    job_sweep_seconds: float = DEFAULT_JOB_SWEEP_SECONDS  # PORTALIS_JOB_SWEEP_SECONDS
    health: HealthSettings = field(default_factory=HealthSettings)  # PORTALIS_MANAGED_NODE_SELECTOR and the like
    gc_thresholds: str = DEFAULT_GC_THRESHOLDS  # PORTALIS_GC_THRESHOLDS
    dcgm_endpoints: list[str] = field(default_factory=list)  # PORTALIS_DCGM_ENDPOINTS
    dcgm_poll_seconds: float = DEFAULT_DCGM_POLL_SECONDS  # PORTALIS_DCGM_POLL_SECONDS
    clock_offset_file: str | None = None  # PORTALIS_CLOCK_OFFSET_FILE (tests and drills move the metering clock)
    log_format: str = "text"  # PORTALIS_LOG_FORMAT (default of --log-format)
    webhook_token_file: str | None = None  # PORTALIS_WEBHOOK_TOKEN_FILE (default of --webhook-token-file)
    webhook_port: int = 0  # --webhook-port: POST /alerts, the Alertmanager webhook receiver (0: off)
    webhook_host: str = "0.0.0.0"  # --webhook-host

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        """The settings in ``env`` (the process environment by default); ValueError names a malformed one."""
        env = os.environ if env is None else env
        on_demand = _price(env, "PORTALIS_DEFAULT_ON_DEMAND_GPU_HOUR")
        spot = _price(env, "PORTALIS_DEFAULT_SPOT_GPU_HOUR")
        return cls(
            namespaces=_list(env, "PORTALIS_WATCH_NAMESPACES"),
            default_prices=Prices(on_demand, spot),
            default_prices_set=bool(env.get("PORTALIS_DEFAULT_ON_DEMAND_GPU_HOUR")),
            job_sweep_seconds=_seconds(env, "PORTALIS_JOB_SWEEP_SECONDS", DEFAULT_JOB_SWEEP_SECONDS),
            health=HealthSettings.from_env(env),
            gc_thresholds=env.get("PORTALIS_GC_THRESHOLDS", DEFAULT_GC_THRESHOLDS),
            dcgm_endpoints=_list(env, "PORTALIS_DCGM_ENDPOINTS"),
            dcgm_poll_seconds=_seconds(env, "PORTALIS_DCGM_POLL_SECONDS", DEFAULT_DCGM_POLL_SECONDS),
            clock_offset_file=env.get("PORTALIS_CLOCK_OFFSET_FILE") or None,
            log_format=env.get("PORTALIS_LOG_FORMAT", "text"),
            webhook_token_file=env.get("PORTALIS_WEBHOOK_TOKEN_FILE") or None,
        )
