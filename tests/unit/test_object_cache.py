"""The job watch cache (bodies by key and keys by the cluster each job names) and the parsed-spec cache."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import ValidationError

from portalis.api.v1alpha1.job import TranslationJobSpec
from portalis.controllers.caches import (
    INTERN_MAX,
    NodeCache,
    ObjectCache,
    SpecCache,
    Written,
    cluster_of_job,
    compact,
    slim,
)
from portalis.controllers.observer import QueueObserver


def job(cluster: str, namespace: str | None = None, uid: str = "u") -> dict[str, Any]:
    ref: dict[str, str] = {"name": cluster}
    if namespace:
        ref["namespace"] = namespace
    return {"metadata": {"uid": uid}, "spec": {"clusterRef": ref}}


def test_jobs_are_grouped_by_the_cluster_they_name() -> None:
    cache = ObjectCache(cluster_of_job)
    cache.put(("team-a", "j1"), job("gpu"))
    cache.put(("team-a", "j2"), job("gpu"))
    cache.put(("team-b", "j3"), job("gpu", namespace="team-a"))
    cache.put(("team-b", "j4"), job("gpu"))
    assert cache.group(("team-a", "gpu")) == [("team-a", "j1"), ("team-a", "j2"), ("team-b", "j3")]
    assert cache.group(("team-b", "gpu")) == [("team-b", "j4")]
    assert cache.get(("team-a", "j1")) == job("gpu") and len(cache) == 4


def test_a_deleted_or_recreated_job_leaves_its_old_group() -> None:
    cache = ObjectCache(cluster_of_job)
    cache.put(("ns", "j"), job("old", uid="1"))
    cache.put(("ns", "j"), job("new", uid="2"))  # deleted and created again, naming another cluster
    assert cache.group(("ns", "old")) == [] and cache.group(("ns", "new")) == [("ns", "j")]
    cache.delete(("ns", "j"))
    cache.delete(("ns", "j"))
    assert cache.get(("ns", "j")) is None and cache.group(("ns", "new")) == [] and len(cache) == 0


def test_cached_bodies_leave_out_managed_fields_without_touching_the_watched_object() -> None:
    body: dict[str, Any] = {
        "metadata": {"name": "j", "uid": "u", "managedFields": [{"manager": "kubectl"}]},
        "spec": {"a": 1},
    }
    kept = slim(body)
    assert kept == {"metadata": {"name": "j", "uid": "u"}, "spec": {"a": 1}}
    assert body["metadata"]["managedFields"] == [{"manager": "kubectl"}]


def test_compacted_bodies_are_equal_and_share_their_keys_and_short_strings() -> None:
    text = json.dumps(
        {
            "metadata": {"name": "j1", "generation": 2, "labels": {"team": "a"}},
            "status": {"phase": "Queued", "conditions": [{"type": "Planned", "status": "True", "n": 1.5}]},
            "note": "x" * (INTERN_MAX + 1),
            "flags": [True, None, "Queued"],
        }
    )
    first, second = json.loads(text), json.loads(text)
    assert first["status"]["phase"] is not second["status"]["phase"]  # each decode makes its own strings
    a, b = compact(first), compact(second)
    assert a == b == json.loads(text)
    assert a["status"]["phase"] is b["status"]["phase"] is b["flags"][2]
    cond_a, cond_b = a["status"]["conditions"][0], b["status"]["conditions"][0]
    assert next(iter(cond_a)) is next(iter(cond_b)) and cond_a["type"] is cond_b["type"]
    assert a["note"] is not b["note"]  # long strings are kept as decoded
    assert a["metadata"] is not first["metadata"]  # a copy: the watched body is left as it is


def _tj(uid: str, generation: int, cluster: str) -> dict[str, Any]:
    return {
        "metadata": {"uid": uid, "generation": generation},
        "spec": {"clusterRef": {"name": cluster}, "source": {"bucket": "src-bucket", "prefix": "src/"}},
    }


def test_a_parsed_spec_is_reused_until_the_generation_changes() -> None:
    specs = SpecCache()
    first = specs.parse(TranslationJobSpec, _tj("u1", 1, "a"))
    assert specs.parse(TranslationJobSpec, _tj("u1", 1, "a")) is first
    changed = specs.parse(TranslationJobSpec, _tj("u1", 2, "b"))
    assert changed.cluster_ref.name == "b"
    assert specs.parse(TranslationJobSpec, _tj("u2", 1, "c")).cluster_ref.name == "c"  # another object


def test_a_spec_without_uid_or_generation_is_parsed_every_time() -> None:
    specs = SpecCache()
    body = _tj("", 1, "a")
    assert specs.parse(TranslationJobSpec, body) is not specs.parse(TranslationJobSpec, body)


def test_an_invalid_spec_raises_each_time_and_is_not_kept() -> None:
    specs = SpecCache()
    bad = {"metadata": {"uid": "u1", "generation": 1}, "spec": {"clusterRef": {}}}
    for _ in range(2):
        with pytest.raises(ValidationError):
            specs.parse(TranslationJobSpec, bad)
    assert specs.parse(TranslationJobSpec, _tj("u1", 1, "a")).cluster_ref.name == "a"


def test_the_spec_cache_keeps_the_most_recently_used() -> None:
    specs = SpecCache(size=2)
    a = specs.parse(TranslationJobSpec, _tj("a", 1, "x"))
    specs.parse(TranslationJobSpec, _tj("b", 1, "x"))
    assert specs.parse(TranslationJobSpec, _tj("a", 1, "x")) is a  # a is now the most recent
    specs.parse(TranslationJobSpec, _tj("c", 1, "x"))  # evicts b
    assert specs.parse(TranslationJobSpec, _tj("a", 1, "x")) is a
    assert len(specs._specs) == 2


def test_a_status_written_shows_in_the_cache_until_the_watch_brings_the_object_back() -> None:
    cache = ObjectCache(cluster_of_job)
    read = {**job("gpu"), "status": {"phase": "Pending", "etaSeconds": 5, "items": {"total": 3, "done": 0}}}
    cache.put(("ns", "j"), read)
    cache.wrote_status(("ns", "j"), read, {"phase": "Running", "etaSeconds": None, "items": {"done": 1}})
    held = cache.get(("ns", "j"))
    assert held is not None and held["status"] == {"phase": "Running", "items": {"total": 3, "done": 1}}
    assert held["spec"] == read["spec"] and read["status"]["phase"] == "Pending"  # the body read is not changed
    assert cache.group(("ns", "gpu")) == [("ns", "j")]


def test_a_newer_event_is_not_overwritten_by_a_status_written_from_an_older_read() -> None:
    cache = ObjectCache(cluster_of_job)
    read = {**job("gpu"), "status": {"phase": "Pending"}}
    cache.put(("ns", "j"), read)
    newer = {**job("gpu"), "status": {"phase": "Suspended"}}
    cache.put(("ns", "j"), newer)  # the watch delivered another change while the patch was on its way
    cache.wrote_status(("ns", "j"), read, {"phase": "Running"})
    assert cache.get(("ns", "j")) is newer
    cache.delete(("ns", "j"))
    cache.wrote_status(("ns", "j"), newer, {"phase": "Running"})  # deleted meanwhile: not brought back
    assert cache.get(("ns", "j")) is None


class Reading:
    """A cluster's queue that says how many times it was read (``n`` of the reading's heartbeats)."""

    def __init__(self, read: Callable[[], Any]) -> None:
        self._read = read

    def depth(self) -> list[Any]:
        return []

    def workers(self) -> dict[str, dict[str, Any]]:
        return {"reading": {"n": self._read()}}


def observer() -> QueueObserver:
    unused = cast(Any, None)  # what a snapshot read by a job does not need
    return QueueObserver({}, SpecCache(), unused, unused)


def connections(read: Callable[[], Any]) -> Any:
    return SimpleNamespace(queue=Reading(read))


def test_a_recent_reading_serves_every_asker_until_it_is_old_or_forgotten() -> None:
    reads: list[int] = []

    def read() -> int:
        reads.append(len(reads))
        return len(reads)

    async def value(seen: QueueObserver, key: tuple[str, str], max_age: float) -> Any:
        return (await seen.read(key, connections(read), max_age=max_age)).heartbeats["reading"]["n"]

    async def scenario() -> None:
        recent = observer()
        assert [await value(recent, ("ns", "tc"), 60.0) for _ in range(3)] == [1, 1, 1]  # one read for three askers
        assert await value(recent, ("ns", "other"), 60.0) == 2  # per key
        recent.drop(("ns", "tc"))
        assert await value(recent, ("ns", "tc"), 60.0) == 3
        stale = observer()
        assert [await value(stale, ("ns", "tc"), 0.0) for _ in range(2)] == [4, 5]

    asyncio.run(scenario())


def test_a_reading_under_way_when_its_key_is_forgotten_answers_but_is_not_kept() -> None:
    started, go = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow() -> str:
        calls.append("slow")
        started.set()
        go.wait(5)
        return "before the signal"

    async def scenario() -> None:
        recent = observer()
        pending = asyncio.create_task(recent.read(("ns", "tc"), connections(slow), max_age=60.0))
        await asyncio.to_thread(started.wait, 5)
        recent.drop(("ns", "tc"))  # a signal came while it was being read
        go.set()
        assert (await pending).heartbeats["reading"]["n"] == "before the signal"
        after = await recent.read(("ns", "tc"), connections(lambda: "after"), max_age=60.0)
        assert after.heartbeats["reading"]["n"] == "after"  # read again, not the old reading

    asyncio.run(scenario())
    assert calls == ["slow"]


def node_body(name: str, version: str, quarantined: bool = False) -> dict[str, Any]:
    labels = {"portalis.dev/quarantined": "true"} if quarantined else {}
    return {"metadata": {"name": name, "resourceVersion": version, "labels": labels}}


def test_an_object_written_is_seen_as_written_until_the_watch_brings_it_back() -> None:
    now = [0.0]
    written: Written[str] = Written(max_age=30.0, clock=lambda: now[0])
    watched = node_body("n", "10")
    assert written.over("n", watched) is watched  # nothing written
    patched = node_body("n", "11", quarantined=True)
    written.wrote("n", patched)
    assert written.over("n", watched) is patched  # the watch is behind
    assert written.over("n", None) is patched  # or has not seen it yet
    caught_up = node_body("n", "11", quarantined=True)
    assert written.over("n", caught_up) is caught_up and len(written) == 0  # the watch caught up: dropped
    written.wrote("n", patched)
    newer = node_body("n", "12")
    assert written.over("n", newer) is newer  # someone wrote after this process: theirs stands
    written.wrote("n", patched)
    now[0] = 31.0
    assert written.over("n", watched) is watched  # a watch that never delivers pins nothing for long


def test_the_node_cache_overlays_this_process_writes_and_keeps_views_per_body() -> None:
    index = {"n": [node_body("n", "10")]}
    nodes = NodeCache(index)
    first_view = nodes.view("n")
    assert first_view is not None and not first_view.quarantined
    assert nodes.view("n") is first_view  # the same body: the same view
    nodes.wrote("n", node_body("n", "11", quarantined=True))
    written_view = nodes.view("n")
    assert written_view is not None and written_view.quarantined
    index["n"] = [node_body("n", "11")]  # the watch brings the node back, another change since
    assert nodes.view("n") is not written_view and nodes.names() == ["n"]
    del index["n"]
    nodes.gone("n")
    assert nodes.get("n") is None and nodes.view("n") is None
