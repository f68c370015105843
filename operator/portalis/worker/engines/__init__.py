"""Translation engines of the worker, chosen by name: ``py2many`` (the default) and ``openai``.

Where it sits: the worker builds its engine once at start-up with ``load_engine_from_env`` (the operator puts
the cluster's ``spec.engine`` into the worker pods' environment) and calls ``translate`` per batch of items.
"""

from __future__ import annotations

import os

from portalis.desired.job_paths import OUTPUT_EXTENSIONS
from portalis.worker.engines.base import (
    Engine,
    EngineError,
    EngineSettings,
    Repairer,
    Source,
    Translation,
    output_extension,
)

ENGINE_NAMES = ("py2many", "openai")
DEFAULT_ENGINE = "py2many"

# Environment variable of each setting; PORTALIS_ENGINE names the engine.
ENV_SETTINGS: dict[str, str] = {
    "model": "PORTALIS_ENGINE_MODEL",
    "endpoint": "PORTALIS_ENGINE_ENDPOINT",
    "api_key": "PORTALIS_ENGINE_API_KEY",
    "timeout_seconds": "PORTALIS_ENGINE_TIMEOUT_SECONDS",
    "max_batch_size": "PORTALIS_ENGINE_MAX_BATCH_SIZE",
    "repair_attempts": "PORTALIS_ENGINE_REPAIR_ATTEMPTS",
    "options": "PORTALIS_ENGINE_OPTIONS",
}

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINE_NAMES",
    "ENV_SETTINGS",
    "OUTPUT_EXTENSIONS",
    "Engine",
    "EngineError",
    "EngineSettings",
    "Repairer",
    "Source",
    "Translation",
    "load_engine",
    "load_engine_from_env",
    "output_extension",
]


def load_engine(name: str, **settings: str) -> Engine:
    """Build the engine ``name`` from string settings (model, endpoint, api_key, timeout_seconds,
    max_batch_size, repair_attempts, options as a JSON object). Raises EngineError when it cannot work as configured."""
    parsed = EngineSettings.parse(settings)
    engine = name.strip().lower()
    if engine == "py2many":
        from portalis.worker.engines.py2many_engine import Py2ManyEngine

        return Py2ManyEngine(timeout_seconds=parsed.timeout_seconds, options=parsed.options)
    if engine == "openai":
        from portalis.worker.engines.openai_engine import OpenAIEngine

        return OpenAIEngine(
            endpoint=parsed.endpoint,
            model=parsed.model,
            api_key=parsed.api_key,
            timeout_seconds=parsed.timeout_seconds,
            max_batch_size=parsed.max_batch_size,
            repair_attempts=parsed.repair_attempts,
            options=parsed.options,
        )
    raise EngineError(f"unknown engine {name!r} (known: {', '.join(ENGINE_NAMES)})")


def load_engine_from_env() -> Engine:
    """The engine the environment names in PORTALIS_ENGINE (py2many when unset) with its PORTALIS_ENGINE_*
    settings."""
    name = os.environ.get("PORTALIS_ENGINE", "").strip() or DEFAULT_ENGINE
    settings = {key: os.environ[var] for key, var in ENV_SETTINGS.items() if var in os.environ}
    return load_engine(name, **settings)
