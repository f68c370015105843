"""The operator's settings, read once from the environment (portalis.config)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portalis.api.v1alpha1.cluster import EccAction
from portalis.config import DEFAULT_GC_THRESHOLDS, OperatorConfig
from portalis.desired.budget import Prices


def test_defaults_without_any_setting() -> None:
    config = OperatorConfig.from_env({})
    assert config.namespaces == [] and config.default_prices == Prices(Decimal(0), Decimal(0))
    assert not config.default_prices_set and config.job_sweep_seconds == 60.0
    assert config.gc_thresholds == DEFAULT_GC_THRESHOLDS and config.dcgm_endpoints == []
    assert config.health.default_action == EccAction.CORDON and config.clock_offset_file is None


def test_every_setting_is_read() -> None:
    config = OperatorConfig.from_env(
        {
            "PORTALIS_WATCH_NAMESPACES": "a, b,,",
            "PORTALIS_DEFAULT_ON_DEMAND_GPU_HOUR": "3.60",
            "PORTALIS_DEFAULT_SPOT_GPU_HOUR": "1.20",
            "PORTALIS_JOB_SWEEP_SECONDS": "5",
            "PORTALIS_DEFAULT_ECC_ACTION": "CordonAndDrain",
            "PORTALIS_DCGM_ENDPOINTS": "http://a:9400/metrics,http://b:9400/metrics",
            "PORTALIS_DCGM_POLL_SECONDS": "2.5",
            "PORTALIS_CLOCK_OFFSET_FILE": "/tmp/offset",
            "PORTALIS_LOG_FORMAT": "json",
            "PORTALIS_WEBHOOK_TOKEN_FILE": "/run/token",
        }
    )
    assert config.namespaces == ["a", "b"]
    assert config.default_prices == Prices(Decimal("3.60"), Decimal("1.20")) and config.default_prices_set
    assert config.job_sweep_seconds == 5.0 and config.dcgm_poll_seconds == 2.5
    assert config.health.default_action == EccAction.CORDON_AND_DRAIN
    assert config.dcgm_endpoints == ["http://a:9400/metrics", "http://b:9400/metrics"]
    assert (config.clock_offset_file, config.log_format, config.webhook_token_file) == (
        "/tmp/offset",
        "json",
        "/run/token",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORTALIS_DEFAULT_ON_DEMAND_GPU_HOUR", "three"),
        ("PORTALIS_DEFAULT_SPOT_GPU_HOUR", "-1"),
        ("PORTALIS_JOB_SWEEP_SECONDS", "0"),
        ("PORTALIS_DCGM_POLL_SECONDS", "soon"),
        ("PORTALIS_DEFAULT_ECC_ACTION", "Reboot"),
        ("PORTALIS_FLEET_MAX_UNAVAILABLE", "many"),
    ],
)
def test_a_malformed_setting_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        OperatorConfig.from_env({name: value})
