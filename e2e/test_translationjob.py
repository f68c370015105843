"""TranslationJob end to end: the operator plans from S3, queues to Redis, local workers translate to S3."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator

import pytest

from e2e.helpers import Cluster, wait_for
from e2e.jobs import ARTIFACTS, JobEnv, job_env, simple_module
from portalis_devcluster.operator import OperatorProcess
from portalis_devcluster.servers import RedisServer, S3Server

pytestmark = pytest.mark.cluster

# try/except is a construct py2many does not translate: a permanent failure, every time
POISON = b"def parse(x: str) -> int:\n    try:\n        return int(x)\n    except ValueError:\n        return 0\n"


@pytest.fixture
def jobs(operator: OperatorProcess, namespace: str, redis_server: RedisServer, s3_server: S3Server) -> Iterator[JobEnv]:
    env = job_env(operator.kube, namespace, redis_server, s3_server, ARTIFACTS)
    env.create_cluster()
    yield env
    env.stop_workers()


def test_a_200_file_job_succeeds_with_exactly_200_outputs_and_a_rerun_hits_the_cache(jobs: JobEnv) -> None:
    bucket = f"src-{jobs.namespace}"
    jobs.upload(bucket, "repo/", {f"pkg{i // 20}/mod_{i}.py": simple_module(i, jobs.namespace) for i in range(200)})
    jobs.upload(bucket, "repo/", {"README.md": b"not python\n"})
    jobs.submit("first", bucket, "repo/", output={"prefix": "out/first/"}, priority="Batch")
    planned = jobs.wait_phase("first", {"Running", "Failed", "Succeeded"}, timeout=30)
    assert planned["items"]["total"] == 200
    assert planned["planLocation"].startswith(f"s3://{ARTIFACTS}/portalis/jobs/{jobs.namespace}/first-")
    jobs.start_workers(count=2, concurrency=2)
    status = jobs.wait_phase("first", {"Succeeded", "Failed"}, timeout=180)
    assert status["phase"] == "Succeeded", status
    assert status["items"]["done"] == 200 and status["items"]["failed"] == 0
    assert status["progressPercent"] == 100
    outputs = jobs.outputs(bucket, "out/first/")
    assert len(outputs) == 200 == len(set(outputs))
    assert all(k.endswith(".rs") for k in outputs)
    assert int(status["cost"]["gpuSeconds"]) >= 0 and status["cost"]["spent"]
    assert status["completionTime"] and status["startTime"] and status["reportLocation"]
    report = jobs.store.get_json(ARTIFACTS, status["reportLocation"].split("/", 3)[3])
    assert report["totals"]["done"] == 200
    # written, but rustc rejects py2many's `Vec<_>` in these signatures: each file keeps cargo's diagnostics
    assert {f["outcome"] for f in report["files"]} == {"translated"}
    assert all(f["diagnostics"][0].endswith("not allowed in type signatures") for f in report["files"])
    assert (status["items"]["compiles"], status["verifiedPercent"], report["totals"]["compiles"]) == (0, 0, 0)
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Succeeded"]["status"] == "True" and conds["Planned"]["status"] == "True"
    events = {e["reason"]: e["message"] for e in jobs.cluster.events("TranslationJob", "first")}
    assert {"Planned", "Completed"} <= set(events) and "Queued" not in events  # planning and queueing: one Event
    assert "; queued 200 items at priority" in events["Planned"], events["Planned"]

    jobs.submit("again", bucket, "repo/", output={"prefix": "out/again/"})
    status = jobs.wait_phase("again", {"Succeeded", "Failed"}, timeout=120)
    assert status["phase"] == "Succeeded"
    assert status["items"]["cached"] >= 198, status["items"]  # at least 99% from the result cache
    assert len(jobs.outputs(bucket, "out/again/")) == 200


def test_a_worker_killed_mid_item_leaves_it_to_be_redelivered_and_written_once(jobs: JobEnv) -> None:
    bucket = f"src-{jobs.namespace}"
    jobs.upload(bucket, "kill/", {f"m{i}.py": simple_module(i, salt=jobs.namespace) for i in range(40)})
    jobs.submit("kill", bucket, "kill/", output={"prefix": "out/kill/"})
    jobs.wait_phase("kill", {"Running"}, timeout=30)
    jobs.start_workers(count=1, concurrency=1)
    victim = jobs.workers[0]
    wait_for(lambda: (jobs.job("kill").get("status") or {}).get("items", {}).get("done", 0) >= 3, timeout=60)
    victim.send_signal(signal.SIGKILL)  # no chance to hand back its item
    victim.wait(10)
    jobs.workers.clear()
    jobs.start_workers(count=1, concurrency=2)
    status = jobs.wait_phase("kill", {"Succeeded", "Failed"}, timeout=120)
    assert status["phase"] == "Succeeded", status
    assert status["items"]["done"] == 40
    outputs = jobs.outputs(bucket, "out/kill/")
    assert len(outputs) == 40 == len(set(outputs))


def test_bad_files_are_reported_by_name_and_leave_no_output(jobs: JobEnv) -> None:
    bucket = f"src-{jobs.namespace}"
    files = {f"ok_{i}.py": simple_module(i) for i in range(5)}
    files["poison.py"] = POISON
    files["latin1.py"] = "s = 'caf\xe9'\n".encode("latin-1")
    files["gone.py"] = simple_module(99)
    files["huge.py"] = b"x = 1\n" * (50 * 1024 * 1024 // 6)  # about 50 MB
    jobs.upload(bucket, "bad/", files)
    jobs.submit("bad", bucket, "bad/", output={"prefix": "out/bad/"}, maxAttemptsPerItem=2)
    jobs.wait_phase("bad", {"Running"}, timeout=60)
    jobs.store.s3.delete_object(Bucket=bucket, Key="bad/gone.py")  # unreadable once planned
    jobs.start_workers(count=1, concurrency=2)
    status = jobs.wait_phase("bad", {"Succeeded", "Failed"}, timeout=120)
    assert status["phase"] == "Failed"
    assert status["items"] == {**status["items"], "total": 9, "done": 5, "failed": 4}
    failed = "\n".join(status["failedItems"])
    for name in ("poison.py", "latin1.py", "gone.py", "huge.py"):
        assert name in failed, failed
    assert "not UTF-8" in failed and "too large" in failed
    cond = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert cond["reason"] == "ItemsFailed" and "poison.py" in cond["message"]
    outputs = jobs.outputs(bucket, "out/bad/")
    assert sorted(outputs) == sorted(f"out/bad/ok_{i}.rs" for i in range(5))
    dead = [item.path for item, _ in jobs.queue().dead_letters()]
    assert "poison.py" in dead


def test_max_failed_items_lets_a_job_succeed_with_named_failures(jobs: JobEnv) -> None:
    bucket = f"src-{jobs.namespace}"
    files = {f"ok_{i}.py": simple_module(i) for i in range(9)}
    files["poison.py"] = POISON
    jobs.upload(bucket, "tolerant/", files)
    jobs.submit("tolerant", bucket, "tolerant/", output={"prefix": "out/tolerant/"}, maxFailedItems="10%")
    jobs.start_workers(count=1, concurrency=2)
    status = jobs.wait_phase("tolerant", {"Succeeded", "Failed"}, timeout=120)
    assert status["phase"] == "Succeeded"
    assert status["failedItems"] and status["failedItems"][0].startswith("poison.py")


@pytest.mark.parametrize(
    ("case", "reason", "terminal"),
    [
        ("missing-bucket", "SourceBucketNotFound", True),
        ("empty-prefix", "NoSourceFiles", True),
        ("unknown-cluster", "ClusterNotFound", False),
        ("not-admitted", "NotAdmitted", False),
        ("store-endpoint-boto3-refuses", "StorageOrQueueInvalid", False),
        ("queue-refuses-connections", "QueueUnavailable", False),
    ],
)
def test_bad_input_gives_a_clear_condition_and_event_and_writes_nothing(
    jobs: JobEnv, case: str, reason: str, terminal: bool
) -> None:
    bucket = f"src-{jobs.namespace}"
    jobs.upload(bucket, "real/", {"a.py": simple_module(1)})
    if case == "missing-bucket":
        jobs.submit("j", "no-such-bucket-e2e", "x/")
    elif case == "empty-prefix":
        jobs.submit("j", bucket, "nothing-here/")
    elif case == "unknown-cluster":
        jobs.submit("j", bucket, "real/", clusterRef={"name": "nope"})
    elif case == "store-endpoint-boto3-refuses":  # a URL the CRD accepts and boto3 does not (no "_" in hosts)
        jobs.create_cluster(name="odd", storage={"endpoint": "http://my_host:9000", "bucket": ARTIFACTS})
        jobs.submit("j", bucket, "real/", clusterRef={"name": "odd"})
    elif case == "queue-refuses-connections":  # a Redis that is down
        jobs.create_cluster(name="odd", queue={"url": "redis://127.0.0.1:1/0"})
        jobs.submit("j", bucket, "real/", clusterRef={"name": "odd"})
    else:
        other = f"{jobs.namespace}-other"
        jobs.cluster.kube.kubectl("create", "namespace", other)
        try:
            elsewhere = JobEnv(Cluster(jobs.cluster.kube, other), jobs.redis, jobs.s3, jobs.store)
            elsewhere.create_cluster(name="shared")  # admits only its own namespace by default
            jobs.submit("j", bucket, "real/", clusterRef={"name": "shared", "namespace": other})
        finally:
            pass

    def condition() -> dict[str, str] | None:
        status = jobs.job("j").get("status") or {}
        for c in status.get("conditions") or []:
            if c["type"] == "Planned" and c["status"] == "False" and c["reason"] == reason:
                return dict(c)
        return None

    cond = wait_for(condition, timeout=30)
    assert len(cond["message"]) > 20
    status = jobs.job("j")["status"]
    assert status["phase"] == ("Failed" if terminal else "Pending")
    assert any(e["reason"] == reason for e in jobs.cluster.events("TranslationJob", "j"))
    time.sleep(1)
    assert jobs.queue().job_stats(jobs.job("j")["metadata"]["uid"]).enqueued == 0
    # no output and no report; a job whose queue is unavailable has been planned, and keeps its plan
    assert not [
        k for k in jobs.outputs(ARTIFACTS, f"portalis/jobs/{jobs.namespace}/j-") if not k.endswith("/plan.json")
    ]
    if case == "not-admitted":
        jobs.cluster.kube.kubectl("delete", "namespace", f"{jobs.namespace}-other", "--wait=false")


def test_rejected_s3_credentials_hold_the_job_with_a_clear_reason_and_lose_nothing(jobs: JobEnv) -> None:
    bucket = f"src-{jobs.namespace}"
    files = {f"m{i}.py": simple_module(i, jobs.namespace) for i in range(5)}
    jobs.upload(bucket, "creds/", files)
    wrong = {"url": jobs.redis.url, "AWS_ACCESS_KEY_ID": jobs.s3.access_key, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    jobs.cluster.kubectl(
        "create", "secret", "generic", "wrong-s3", *(f"--from-literal={k}={v}" for k, v in wrong.items())
    )
    jobs.create_cluster(storage={"endpoint": jobs.s3.endpoint, "bucket": ARTIFACTS, "forcePathStyle": True,
                                 "credentialsSecretRef": {"name": "wrong-s3"}})  # fmt: skip
    jobs.submit("j", bucket, "creds/", output={"prefix": "out/creds/"})

    def rejected() -> dict[str, str] | None:
        for c in (jobs.job("j").get("status") or {}).get("conditions") or []:
            if c["type"] == "Planned" and c["status"] == "False" and c["reason"] == "StorageCredentialsRejected":
                return dict(c)
        return None

    cond = wait_for(rejected, timeout=30)
    assert "SignatureDoesNotMatch" in cond["message"] and "credentialsSecretRef" in cond["message"], cond
    assert jobs.job("j")["status"]["phase"] == "Pending"
    assert any(e["reason"] == "StorageCredentialsRejected" for e in jobs.cluster.events("TranslationJob", "j"))
    uid = jobs.job("j")["metadata"]["uid"]
    assert jobs.queue().job_stats(uid).enqueued == 0
    assert jobs.outputs(bucket, "out/creds/") == []
    assert jobs.outputs(ARTIFACTS, f"portalis/jobs/{jobs.namespace}/") == []

    # pointing the cluster at the right Secret is picked up without a restart; the same job then runs to the end
    jobs.create_cluster()
    jobs.start_workers(count=1, concurrency=2)
    status = jobs.wait_phase("j", {"Succeeded", "Failed"}, timeout=120)
    assert status["phase"] == "Succeeded", status
    assert status["items"]["total"] == 5 and status["items"]["done"] == 5
    assert sorted(jobs.outputs(bucket, "out/creds/")) == sorted(f"out/creds/m{i}.rs" for i in range(5))


def queued_job(jobs: JobEnv, name: str, files: int) -> str:
    """A running job of ``files`` files, all waiting in the queue (no workers); returns its uid."""
    bucket = f"src-{jobs.namespace}"
    jobs.upload(bucket, f"{name}/", {f"m{i}.py": simple_module(i) for i in range(files)})
    jobs.submit(name, bucket, f"{name}/")
    jobs.wait_phase(name, {"Running"}, timeout=30)
    wait_for(lambda: jobs.queue().backlog() == files, timeout=10)
    return str(jobs.job(name)["metadata"]["uid"])


def test_deleting_a_job_removes_its_queued_items(jobs: JobEnv) -> None:
    uid = queued_job(jobs, "doomed", 30)
    jobs.cluster.kubectl("delete", "tj", "doomed", "--timeout=30s")
    wait_for(lambda: jobs.queue().backlog() == 0, timeout=10)  # removed when the operator sees the deletion
    assert jobs.queue().job_stats(uid).enqueued == 0
    assert uid not in jobs.queue().job_uids()


def test_a_job_deleted_while_the_operator_is_down_is_swept_from_its_queue(
    jobs: JobEnv, operator: OperatorProcess
) -> None:
    uid = queued_job(jobs, "gone", 12)
    usual = dict(operator.extra_env)
    operator.stop()
    try:
        # no finalizer: the job goes at once, with no operator to wait for
        jobs.cluster.kubectl("delete", "tj", "gone", "--timeout=10s")
        operator.start({**usual, "PORTALIS_JOB_SWEEP_SECONDS": "1"})
        wait_for(lambda: uid not in jobs.queue().job_uids(), timeout=30, interval=0.5)
        assert jobs.queue().backlog() == 0
        assert jobs.queue().job_stats(uid).enqueued == 0
    finally:
        operator.stop()
        operator.start(usual)


def test_suspend_holds_queued_items_and_resume_finishes_the_job(jobs: JobEnv) -> None:
    bucket = f"src-{jobs.namespace}"
    jobs.upload(bucket, "sus/", {f"m{i}.py": simple_module(i) for i in range(20)})
    jobs.submit("paused", bucket, "sus/", output={"prefix": "out/sus/"})
    jobs.wait_phase("paused", {"Running"}, timeout=30)
    jobs.cluster.kubectl("patch", "tj", "paused", "--type=merge", "-p", '{"spec":{"suspend":true}}')
    jobs.wait_phase("paused", {"Suspended"}, timeout=30)
    wait_for(lambda: jobs.queue().backlog() == 0, timeout=10)
    jobs.start_workers(count=1)
    time.sleep(2)
    assert (jobs.job("paused")["status"]["items"]["done"]) == 0
    jobs.cluster.kubectl("patch", "tj", "paused", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    status = jobs.wait_phase("paused", {"Succeeded", "Failed"}, timeout=120)
    assert status["phase"] == "Succeeded" and status["items"]["done"] == 20
    assert len(jobs.outputs(bucket, "out/sus/")) == 20


def test_a_flushed_queue_is_rebuilt_from_the_plan_in_s3(jobs: JobEnv) -> None:
    bucket = f"src-{jobs.namespace}"
    jobs.upload(bucket, "flush/", {f"m{i}.py": simple_module(i, salt=jobs.namespace) for i in range(30)})
    jobs.submit("flushed", bucket, "flush/", output={"prefix": "out/flush/"})
    jobs.wait_phase("flushed", {"Running"}, timeout=30)
    jobs.start_workers(count=1, concurrency=1)
    wait_for(lambda: (jobs.job("flushed").get("status") or {}).get("items", {}).get("done", 0) >= 5, timeout=60)
    jobs.stop_workers()
    jobs.queue().r.flushall()
    jobs.start_workers(count=1, concurrency=2)
    status = jobs.wait_phase("flushed", {"Succeeded", "Failed"}, timeout=120)
    assert status["phase"] == "Succeeded" and status["items"]["done"] == 30
    assert len(jobs.outputs(bucket, "out/flush/")) == 30
    assert any(e["reason"] == "QueueRebuilt" for e in jobs.cluster.events("TranslationJob", "flushed"))


def test_an_operator_restarted_among_hundreds_of_jobs_reconciles_every_one(
    operator: OperatorProcess, namespace: str
) -> None:
    """kopf indexes every pod, node and cluster before any handler runs, and jobs arrive in one listing: the
    operator must not wait forever when more objects exist at start-up than it would run workers for at once."""
    count = 150
    jobs = [
        {
            "apiVersion": "portalis.dev/v1alpha1",
            "kind": "TranslationJob",
            "metadata": {"name": f"many-{i:03d}", "namespace": namespace},
            "spec": {"clusterRef": {"name": "absent"}, "source": {"bucket": "nowhere", "prefix": "src/"}},
        }
        for i in range(count)
    ]
    operator.stop()
    try:
        operator.kube.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": jobs}))
    finally:
        operator.start()

    def reported() -> int:
        listed = json.loads(operator.kube.kubectl("-n", namespace, "get", "translationjobs", "-o", "json").stdout)
        return sum(
            1
            for j in listed["items"]
            for c in (j.get("status") or {}).get("conditions") or []
            if c["type"] == "Planned" and c["reason"] == "ClusterNotFound"
        )

    assert wait_for(lambda: reported() == count, timeout=90, interval=1)
