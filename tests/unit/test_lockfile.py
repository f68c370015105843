"""requirements.lock: it parses, pins exact versions in a stable order, and pins every runtime dependency that
pyproject.toml declares (and the `ray` extra) at a version the declared floor allows.

The lock is what `make audit` checks for known vulnerabilities; `make lock` regenerates it from the venv.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
RUNTIME_EXTRAS = ("ray",)
DEV_ONLY = ("pytest", "ruff", "mypy", "hypothesis", "import-linter", "pip-audit")


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads(PYPROJECT.read_text())["project"]
    return project


def _lines() -> list[tuple[int, str]]:
    return [
        (n, line.strip())
        for n, line in enumerate(LOCK.read_text().splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for n, line in _lines():
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"line {n}: {line!r} is not an exact pin (name==version)"
        assert not req.extras and req.marker is None and req.url is None, f"line {n}: {line!r} is more than a pin"
        name = canonicalize_name(req.name)
        assert name not in pins, f"line {n}: {req.name} is pinned twice"
        pins[name] = Version(specs[0].version)
    return pins


def _runtime_requirements() -> list[Requirement]:
    project = _project()
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in RUNTIME_EXTRAS:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def test_the_lock_parses_into_exact_pins_in_a_stable_order() -> None:
    pins = _pins()
    assert len(pins) >= len(_runtime_requirements())
    names = [canonicalize_name(Requirement(line).name) for _, line in _lines()]
    assert names == sorted(names), "requirements.lock is not sorted by name; regenerate it with `make lock`"
    header = LOCK.read_text().splitlines()[0:5]
    assert any("make lock" in line for line in header if line.startswith("#")), "the header must say how to regenerate"


def test_every_runtime_dependency_is_pinned_at_a_version_its_floor_allows() -> None:
    pins = _pins()
    for req in _runtime_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} (pyproject.toml) is not pinned in requirements.lock; run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name]}, which {req} in pyproject.toml does not allow"
        )


def test_the_lock_holds_runtime_dependencies_only() -> None:
    pins = _pins()
    dev = [name for name in DEV_ONLY if canonicalize_name(name) in pins]
    assert not dev, f"development tools in requirements.lock (it pins the runtime closure only): {dev}"
    assert "portalis" not in pins, "requirements.lock pins Portalis itself"
