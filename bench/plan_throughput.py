"""plan-throughput: planning a job from an S3 listing, against the listing alone.

Puts N small objects (default 100000, env PORTALIS_BENCH_PLAN_OBJECTS) once on the S3 server (versitygw), written
straight into its POSIX backend's bucket directory with their ETags (setup, not timed): Python modules in
packages, some under tests/ and migrations/, and one non-Python file in ten. Then, in
alternating trials (default 5, env PORTALIS_BENCH_PLAN_TRIALS), times the operator's planning path, as the job
controller runs it: ``Store.list`` of the prefix, ``build_plan`` with include and exclude globs, and
``plan_to_json`` serialized to bytes as ``Store.put_json`` does (the upload of the plan is not timed). The
baseline is a raw boto3 ``list_objects_v2`` paginator over the same bucket and prefix with the same page size,
collecting each object's key and size. Goal: ours/baseline <= 1.5 on p95.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from bench.common import Result, percentile, report, summary
from portalis.clients.store import LIST_PAGE_SIZE, Store
from portalis.desired.plan import build_plan, plan_to_json
from portalis.worker.engines.base import output_extension
from portalis_devcluster.servers import S3Server

OBJECTS = int(os.environ.get("PORTALIS_BENCH_PLAN_OBJECTS", "100000"))
TRIALS = int(os.environ.get("PORTALIS_BENCH_PLAN_TRIALS", "5"))
BUCKET = "portalis-bench-plan"
PREFIX = "repos/acme/"
INCLUDE = ["**/*.py"]
EXCLUDE = ["**/tests/**", "**/migrations/*.py"]
OUTPUT_PREFIX = "translations/plan-bench/"
GOAL_RATIO = 1.5


def object_key(i: int) -> str:
    package = f"pkg{i // 200:03d}/sub{(i // 20) % 10}"
    if i % 10 == 9:
        return f"{PREFIX}{package}/README_{i}.md"
    if i % 25 == 3:
        return f"{PREFIX}{package}/tests/test_mod_{i}.py"
    if i % 50 == 7:
        return f"{PREFIX}{package}/migrations/m{i:06d}.py"
    return f"{PREFIX}{package}/mod_{i}.py"


def body(i: int) -> bytes:
    return f"# module {i}\n".encode() + b"x = 1\n" * (1 + i % 40)


def upload(server: S3Server, n: int) -> float:
    """Put ``n`` objects in the bucket's directory on the server; returns the seconds it took.

    Setup only, never timed: the server lists files put there as it lists objects PUT through its API.
    """
    started = time.monotonic()
    server.populate(BUCKET, ((object_key(i), body(i)) for i in range(n)))
    return time.monotonic() - started


def plan_once(store: Store) -> tuple[int, int, dict[str, float]]:
    """The job controller's planning path; returns (items planned, plan bytes, seconds per step)."""
    t0 = time.perf_counter()
    listing = [(o.key, o.size) for o in store.list(BUCKET, PREFIX)]
    t1 = time.perf_counter()
    plan = build_plan(listing, PREFIX, INCLUDE, EXCLUDE, OUTPUT_PREFIX, output_extension("rust"))
    t2 = time.perf_counter()
    data = json.dumps(plan_to_json(plan), separators=(",", ":"), sort_keys=True).encode("utf-8")
    t3 = time.perf_counter()
    return len(plan), len(data), {"list": t1 - t0, "build_plan": t2 - t1, "serialize": t3 - t2}


def raw_list(s3: Any) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=PREFIX, PaginationConfig={"PageSize": LIST_PAGE_SIZE}
    )
    listing = [(obj["Key"], obj["Size"]) for page in pages for obj in page.get("Contents", [])]
    return len(listing)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    server = S3Server().start()
    try:
        store = Store(server.endpoint, access_key=server.access_key, secret_key=server.secret_key)
        store.ensure_bucket(BUCKET)
        print(f"putting {OBJECTS} objects on the S3 server...", flush=True)
        upload_s = upload(server, OBJECTS)
        print(f"put {OBJECTS} objects in {upload_s:.1f}s ({OBJECTS / upload_s:.0f}/s)", flush=True)
        s3 = boto3.session.Session().client(
            "s3",
            endpoint_url=server.endpoint,
            region_name=server.region,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            config=Config(s3={"addressing_style": "path"}),
        )
        expected = sum(1 for i in range(OBJECTS) if object_key(i).endswith(".py"))
        expected -= sum(1 for i in range(OBJECTS) if "/tests/" in object_key(i) or "/migrations/" in object_key(i))
        ours: list[float] = []
        raw: list[float] = []
        steps: dict[str, list[float]] = {"list": [], "build_plan": [], "serialize": []}
        planned = plan_bytes = 0
        for i in range(TRIALS):
            sides = ["ours", "raw"] if i % 2 == 0 else ["raw", "ours"]
            for side in sides:
                if side == "ours":
                    seconds, (planned, plan_bytes, parts) = timed(lambda: plan_once(store))
                    if planned != expected:
                        raise RuntimeError(f"planned {planned} items, expected {expected}")
                    ours.append(seconds)
                    for k, v in parts.items():
                        steps[k].append(v)
                else:
                    seconds, listed = timed(lambda: raw_list(s3))
                    if listed != OBJECTS:
                        raise RuntimeError(f"listed {listed} objects, expected {OBJECTS}")
                    raw.append(seconds)
                print(f"trial {i + 1} {side}: {seconds:.2f}s", flush=True)
    finally:
        server.stop()

    print(summary(f"Portalis: list + build_plan + plan_to_json, {OBJECTS} objects -> {planned} items", ours))
    print(summary("boto3 list_objects_v2 paginator, same bucket and prefix", raw))
    print("Portalis steps (p50): " + ", ".join(f"{k} {percentile(v, 50):.3f}s" for k, v in steps.items()))
    ratio = percentile(ours, 95) / percentile(raw, 95)
    report(
        Result(
            bench="plan-throughput",
            metric=f"plan a job from {OBJECTS} S3 objects: list + build_plan + plan_to_json",
            unit="s",
            values=ours,
            baseline_name="boto3 list_objects_v2 paginator (1000 keys a page), same bucket and prefix",
            baseline_values=raw,
            goal=f"p95 ratio ours/baseline <= {GOAL_RATIO}",
            met=ratio <= GOAL_RATIO,
            extra={
                "objects": OBJECTS,
                "planned_items": planned,
                "plan_json_bytes": plan_bytes,
                "objects_per_second_p50": round(OBJECTS / percentile(ours, 50), 1),
                "upload_seconds": round(upload_s, 1),
                **{f"{k}_p50_s": round(percentile(v, 50), 4) for k, v in steps.items()},
            },
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
