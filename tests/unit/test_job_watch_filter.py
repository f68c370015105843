"""Which changes to a job or its cluster make the controllers look again (pure functions, no cluster)."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any, cast

from portalis.controllers.caches import ObjectCache, cluster_of_job
from portalis.controllers.job import JobController
from portalis.controllers.runtime import changed
from portalis.desired.cluster_status import reconcile_fingerprint
from portalis.desired.job_status import (
    MAX_RESYNC_SECONDS,
    RUNNING_RESYNC_SECONDS,
    WAITING_RESYNC_SECONDS,
    WAITING_TURN_RESYNC_SECONDS,
    cluster_fingerprint,
    job_fingerprint,
    orphaned_jobs,
    resync_seconds,
    tenants_over_budget,
)

OWN = "portalis.dev/queue-cleanup"


def job(**meta: Any) -> dict[str, Any]:
    base = {"metadata": {"uid": "u1", "generation": 1, "finalizers": []}, "spec": {}, "status": {}}
    base["metadata"].update(meta)
    return base


def test_a_status_write_or_the_own_finalizer_does_not_change_a_jobs_fingerprint() -> None:
    before = job()
    after = copy.deepcopy(before)
    after["status"] = {"phase": "Running", "items": {"done": 3}}
    after["metadata"]["resourceVersion"] = "99"
    after["metadata"]["finalizers"] = [OWN]
    assert job_fingerprint(before, OWN) == job_fingerprint(after, OWN)


def test_spec_deletion_and_foreign_finalizers_change_a_jobs_fingerprint() -> None:
    base = job_fingerprint(job(), OWN)
    assert job_fingerprint(job(generation=2), OWN) != base
    assert job_fingerprint(job(deletionTimestamp="2026-11-22T10:00:00Z"), OWN) != base
    assert job_fingerprint(job(finalizers=["example.com/hold"]), OWN) != base
    assert job_fingerprint(job(uid="u2"), OWN) != base  # deleted and re-created under the same name


def cluster(
    conditions: list[dict[str, Any]] | None = None, tenants: list[dict[str, Any]] | None = None, **status: Any
) -> dict[str, Any]:
    return {
        "metadata": {"uid": "c1", "generation": 4},
        "status": {"conditions": conditions or [], "budget": {"tenants": tenants or []}, **status},
    }


def test_a_clusters_scaling_and_queue_figures_do_not_concern_its_jobs() -> None:
    quiet = cluster(desiredWorkers=1, queue={"waiting": 0})
    busy = cluster(desiredWorkers=8, queue={"waiting": 4000}, conditions=[{"type": "Ready", "status": "True"}])
    assert cluster_fingerprint(quiet) == cluster_fingerprint(busy)


def test_a_clusters_budget_holding_work_concerns_its_jobs() -> None:
    base = cluster_fingerprint(cluster())
    exceeded = [{"type": "BudgetExceeded", "status": "True", "reason": "DailyLimit"}]
    assert cluster_fingerprint(cluster(conditions=exceeded)) != base
    tenant_over = [{"name": "team-a", "daily": {"limit": "10.00", "percent": 100}}]
    tenant_under = [{"name": "team-a", "daily": {"limit": "10.00", "percent": 40}}]
    assert cluster_fingerprint(cluster(tenants=tenant_over)) != base
    assert cluster_fingerprint(cluster(tenants=tenant_under)) == base
    spec_changed = cluster()
    spec_changed["metadata"]["generation"] = 5
    assert cluster_fingerprint(spec_changed) != base


def test_a_tenant_is_over_budget_only_against_a_limit_it_has() -> None:
    status = {
        "budget": {
            "tenants": [
                {"name": "team-a", "daily": {"limit": "10.00", "percent": 100}},
                {"name": "team-b", "weekly": {"limit": "10.00", "percent": 40}, "monthly": {"percent": 120}},
            ]
        }
    }
    assert tenants_over_budget(status) == {"team-a"}
    assert tenants_over_budget({}) == frozenset()


def test_a_queued_job_is_removed_only_after_two_looks_found_it_gone() -> None:
    held = {"a", "b", "c"}
    remove, suspects = orphaned_jobs(held, live={"a"}, suspects=set())
    assert remove == set() and suspects == {"b", "c"}
    remove, suspects = orphaned_jobs(held, live={"a", "c"}, suspects=suspects)  # c was only late in the cache
    assert remove == {"b"} and suspects == set()
    assert orphaned_jobs(set(), live={"a"}, suspects={"b"}) == (set(), set())


def test_a_clusters_own_status_writes_do_not_call_for_another_look_but_its_spec_and_metadata_do() -> None:
    seen: dict[tuple[str, str], tuple[Any, ...]] = {}
    key = ("ml", "gpu")
    base = cluster()
    assert changed(seen, key, reconcile_fingerprint(base))  # its first event
    figures = copy.deepcopy(base)
    figures["status"]["queue"] = {"depth": 40}
    figures["metadata"]["resourceVersion"] = "7"
    assert not changed(seen, key, reconcile_fingerprint(figures))
    for edit in (
        {"generation": 5},
        {"deletionTimestamp": "2026-11-22T10:00:00Z"},
        {"finalizers": ["x/y"]},
        {"labels": {"team": "a"}},
        {"annotations": {"note": "b"}},
        {"uid": "c2"},
    ):
        edited = copy.deepcopy(base)
        edited["metadata"].update(edit)
        assert reconcile_fingerprint(edited) != reconcile_fingerprint(base), edit
    assert changed(seen, key, None) and key not in seen  # deleted
    assert changed(seen, key, reconcile_fingerprint(base))  # created again


def test_a_running_job_is_looked_at_soon_after_a_change_and_less_often_while_nothing_changes() -> None:
    interval = resync_seconds("Running", True, None, False)
    assert interval == RUNNING_RESYNC_SECONDS
    seen = [RUNNING_RESYNC_SECONDS]
    for _ in range(6):
        interval = resync_seconds("Running", False, interval, False)
        assert interval is not None
        seen.append(interval)
    assert seen == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0] and max(seen) == MAX_RESYNC_SECONDS
    assert resync_seconds("Running", False, None, False) == RUNNING_RESYNC_SECONDS  # first look unchanged
    assert resync_seconds("Planning", False, 40.0, False) == MAX_RESYNC_SECONDS


def test_a_job_waiting_its_turn_is_left_to_the_queue_signals_and_finished_jobs_are_not_looked_at() -> None:
    # a worker beginning or finishing one of its items, or the queue emptying, brings it back before then
    assert resync_seconds("Running", True, None, True) == WAITING_TURN_RESYNC_SECONDS
    assert resync_seconds("Running", False, 5.0, True) == WAITING_TURN_RESYNC_SECONDS
    # its turn came (an item in flight): looked at soon again
    assert resync_seconds("Running", True, WAITING_TURN_RESYNC_SECONDS, False) == RUNNING_RESYNC_SECONDS
    for phase in ("Pending", "Suspended"):
        assert resync_seconds(phase, True, None, True) == WAITING_RESYNC_SECONDS
    for phase in ("Succeeded", "Failed"):
        assert resync_seconds(phase, True, 5.0, False) is None


def test_an_emptied_queue_brings_back_the_running_jobs_of_its_cluster() -> None:
    jobs = ObjectCache(cluster_of_job)
    for name, cluster_name, phase in [
        ("j1", "gpu", "Running"),
        ("j2", "gpu", "Succeeded"),
        ("j3", "other", "Running"),
        ("j4", "gpu", "Pending"),
    ]:
        body = {"metadata": {"uid": name}, "spec": {"clusterRef": {"name": cluster_name}}, "status": {"phase": phase}}
        jobs.put(("ml", name), body)
    queued: list[tuple[str, str]] = []
    unused = cast(Any, None)  # what the controller reads only in a reconcile
    controller = JobController(
        jobs=jobs,
        clusters={},
        pods={},
        nodes=unused,
        kube=unused,
        connections=unused,
        gate=unused,
        observer=unused,
        specs=unused,
        config=unused,
    )
    controller.ctx.loop = cast(Any, SimpleNamespace(enqueue=queued.append))
    controller.on_emptied(("ml", "gpu"))
    assert queued == [("ml", "j1")]
