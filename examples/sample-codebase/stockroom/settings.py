"""Runtime settings read from the environment, with defaults for local development."""

import os
from dataclasses import dataclass


@dataclass
class Settings:
    database_url: str
    listen_host: str
    listen_port: int
    currency: str
    debug: bool


def env_str(name: str, default: str) -> str:
    value = os.environ.get(name, "")
    if value.strip() == "":
        return default
    return value.strip()


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw.strip() == "":
        return default
    return int(raw)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    return raw in ("1", "true", "yes", "on")


def load_settings() -> Settings:
    """Settings for this process; STOCKROOM_* variables override the defaults."""
    return Settings(
        database_url=env_str("STOCKROOM_DATABASE_URL", "sqlite:///stockroom.db"),
        listen_host=env_str("STOCKROOM_HOST", "127.0.0.1"),
        listen_port=env_int("STOCKROOM_PORT", 8080),
        currency=env_str("STOCKROOM_CURRENCY", "EUR"),
        debug=env_bool("STOCKROOM_DEBUG", False),
    )


def describe(settings: Settings) -> str:
    mode = "debug" if settings.debug else "production"
    return f"{settings.listen_host}:{settings.listen_port} ({mode}, {settings.currency})"
