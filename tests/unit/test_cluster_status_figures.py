"""Which TranslationCluster status changes are written at once and which can wait (pure functions)."""

from __future__ import annotations

from typing import Any

from portalis.desired.cluster_status import only_figures_changed


def test_queue_figures_alone_are_told_apart_from_changes_worth_writing_at_once() -> None:
    base: dict[str, Any] = {
        "phase": "Ready",
        "workers": {"desired": 2, "ready": 2, "busy": 1},
        "queue": {"depth": 40, "inFlight": 2, "oldestItemAgeSeconds": 3},
    }
    moved = {**base, "workers": {**base["workers"], "busy": 2}, "queue": {**base["queue"], "depth": 38}}
    assert only_figures_changed(base, moved)
    assert not only_figures_changed(base, dict(base))  # nothing changed at all
    scaled = {**moved, "workers": {**moved["workers"], "desired": 3}}
    assert not only_figures_changed(base, scaled)
    assert not only_figures_changed(base, {**moved, "phase": "Degraded"})
