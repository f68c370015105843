"""The engine interface: what the worker hands an engine (sources) and what it gets back (translations).

Where it sits: the worker's consumer pulls a batch of items from the queue, reads each source from S3, calls
``Engine.translate`` once for the batch and writes every successful translation to S3 under the name
``output_extension`` gives it. Engines never raise for a problem with one item; they answer it with a failed
``Translation`` whose ``permanent`` flag tells the consumer whether another attempt could help.

An engine that can correct its own output (a ``Repairer``, such as the openai engine) is shown the compiler's
diagnostics on a translation that does not compile and asked for a corrected one, up to ``repair_attempts``
rounds; the worker checks each answer and meters every round.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from portalis.desired import job_paths

DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_MAX_BATCH_SIZE = 16
DEFAULT_REPAIR_ATTEMPTS = 2
SETTING_NAMES = ("model", "endpoint", "api_key", "timeout_seconds", "max_batch_size", "repair_attempts", "options")
ERROR_LIMIT = 300


@dataclass(frozen=True)
class Source:
    """One source file of a job."""

    path: str  # relative path inside the job source, such as "pkg/util.py"
    text: str  # UTF-8 decoded source
    source_language: str  # "python"
    target_language: str  # "rust", "go" or "cpp"


@dataclass(frozen=True)
class Translation:
    """What an engine made of one source: the translated text, or why there is none."""

    ok: bool
    text: str = ""
    error: str = ""
    permanent: bool = False  # True: another attempt gives the same answer; False: transient (timeout, 5xx, ...)
    tokens: int = 0  # model tokens the answer cost (prompt and completion), 0 for engines without a model

    @classmethod
    def success(cls, text: str, tokens: int = 0) -> Translation:
        return cls(ok=True, text=text, tokens=tokens)

    @classmethod
    def failure(cls, error: str, *, permanent: bool, tokens: int = 0) -> Translation:
        return cls(ok=False, error=one_line(error), permanent=permanent, tokens=tokens)


class Engine(Protocol):
    """A translation engine. ``translate`` answers every source, in order, and never raises for one of them."""

    name: str
    version: str

    def translate(self, sources: list[Source]) -> list[Translation]: ...


@runtime_checkable
class Repairer(Protocol):
    """An engine that corrects a translation from the compiler's diagnostics on it."""

    repair_attempts: int  # most rounds per file; 0: none

    def repair(self, source: Source, previous: str, diagnostics: Sequence[str]) -> Translation: ...


class EngineError(Exception):
    """The engine is misconfigured (unknown name, missing endpoint, malformed setting); no item can succeed."""


def output_extension(target_language: str) -> str:
    """The file extension of translated outputs, such as ".rs" for rust (``desired.job_paths`` names them)."""
    try:
        return job_paths.output_extension(target_language)
    except ValueError as exc:
        raise EngineError(str(exc)) from None


def one_line(text: str, limit: int = ERROR_LIMIT) -> str:
    """``text`` on one line with runs of whitespace collapsed, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


@dataclass(frozen=True)
class EngineSettings:
    """The settings every engine is built from, parsed from strings (the worker reads them from env)."""

    model: str = ""
    endpoint: str = ""
    api_key: str = field(default="", repr=False)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    repair_attempts: int = DEFAULT_REPAIR_ATTEMPTS
    options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, settings: Mapping[str, str]) -> EngineSettings:
        """Parse string settings; empty strings count as unset. Raises EngineError on a bad value."""
        unknown = sorted(set(settings) - set(SETTING_NAMES))
        if unknown:
            raise EngineError(f"unknown engine settings {', '.join(unknown)} (known: {', '.join(SETTING_NAMES)})")
        values = {key: value.strip() for key, value in settings.items() if value.strip()}
        return cls(
            model=values.get("model", ""),
            endpoint=values.get("endpoint", ""),
            api_key=values.get("api_key", ""),
            timeout_seconds=_parse_timeout(values.get("timeout_seconds")),
            max_batch_size=_parse_whole("max_batch_size", values.get("max_batch_size"), DEFAULT_MAX_BATCH_SIZE, 1),
            repair_attempts=_parse_whole("repair_attempts", values.get("repair_attempts"), DEFAULT_REPAIR_ATTEMPTS, 0),
            options=parse_options(values.get("options", "")),
        )


def _parse_timeout(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise EngineError(f"timeout_seconds must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise EngineError(f"timeout_seconds must be positive, got {raw!r}")
    return value


def _parse_whole(name: str, raw: str | None, default: int, least: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise EngineError(f"{name} must be a whole number, got {raw!r}") from None
    if value < least:
        bound = "0 or more" if least == 0 else f"at least {least}"
        raise EngineError(f"{name} must be {bound}, got {raw!r}")
    return value


def parse_options(raw: str) -> dict[str, str]:
    """Engine options from their JSON form: an object of names to strings (numbers and booleans are accepted)."""
    if not raw.strip():
        return {}
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError as err:
        raise EngineError(f"options must be a JSON object: {err}") from None
    if not isinstance(decoded, dict):
        raise EngineError(f"options must be a JSON object, got {type(decoded).__name__}")
    options: dict[str, str] = {}
    for key, value in decoded.items():
        if isinstance(value, bool):
            options[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            options[key] = str(value)
        else:
            raise EngineError(f"option {key!r} must be a string, number or boolean, got {type(value).__name__}")
    return options


def option_bool(options: Mapping[str, str], name: str, default: bool) -> bool:
    raw = options.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise EngineError(f"option {name!r} must be true or false, got {options[name]!r}")


def option_float(options: Mapping[str, str], name: str, default: float | None) -> float | None:
    raw = options.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise EngineError(f"option {name!r} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise EngineError(f"option {name!r} must be a finite number, got {raw!r}")
    return value


def option_int(options: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = options.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise EngineError(f"option {name!r} must be a whole number, got {raw!r}") from None
