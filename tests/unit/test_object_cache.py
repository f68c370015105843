"""The job watch cache: bodies by key and keys by the cluster each job names."""

from __future__ import annotations

from typing import Any

from portalis.controllers.caches import ObjectCache, cluster_of_job, slim


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
    body = {"metadata": {"name": "j", "uid": "u", "managedFields": [{"manager": "kubectl"}]}, "spec": {"a": 1}}
    kept = slim(body)
    assert kept == {"metadata": {"name": "j", "uid": "u"}, "spec": {"a": 1}}
    assert body["metadata"]["managedFields"] == [{"manager": "kubectl"}]
