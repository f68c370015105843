"""A job's status and report from its files' outcomes: compiles, translated (does not compile) and failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from portalis.api.v1alpha1.job import TranslationJobSpec
from portalis.desired.job_status import JobObservation, compute_job_status, counted_failures, report

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def spec(**extra: Any) -> TranslationJobSpec:
    return TranslationJobSpec.model_validate({"clusterRef": {"name": "c"}, "source": {"bucket": "src-bucket"}, **extra})


def finished(done: int, compiles: int, failed: int, total: int = 10, **kw: Any) -> JobObservation:
    return JobObservation(planned=True, total=total, done=done, compiles=compiles, failed=failed, finished=True, **kw)


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_status_counts_each_outcome_and_the_share_that_compiles() -> None:
    status = compute_job_status(spec(), 1, {}, finished(done=9, compiles=6, failed=1, tokens=5000), NOW)
    assert status["phase"] == "Failed"  # maxFailedItems is 0 by default
    items = status["items"]
    assert (items["done"], items["compiles"], items["translated"], items["failed"]) == (9, 6, 3, 1)
    assert status["verifiedPercent"] == 60
    assert status["cost"]["tokens"] == 5000


def test_by_default_only_failed_files_count_against_max_failed_items() -> None:
    status = compute_job_status(spec(maxFailedItems=1), 1, {}, finished(done=9, compiles=2, failed=1), NOW)
    assert status["phase"] == "Succeeded"
    message = condition(status, "Succeeded")["message"]
    assert message.startswith("2 of 10 files compile, 7 written do not") and "1 failed" in message


def test_not_compiling_files_count_against_max_failed_items_when_the_job_says_so() -> None:
    strict = spec(maxFailedItems=1, verify={"countAsFailed": "NotCompiling"})
    status = compute_job_status(strict, 1, {}, finished(done=9, compiles=8, failed=1), NOW)
    assert status["phase"] == "Failed"
    message = condition(status, "Failed")["message"]
    assert message.startswith("2 of 10 files failed or do not compile") and "maxFailedItems allows 1" in message
    assert compute_job_status(strict, 1, {}, finished(done=10, compiles=9, failed=0), NOW)["phase"] == "Succeeded"


def test_without_verification_nothing_is_said_to_compile() -> None:
    unchecked = spec(verify={"enabled": False, "countAsFailed": "NotCompiling"})
    status = compute_job_status(unchecked, 1, {}, finished(done=10, compiles=0, failed=0), NOW)
    assert (status["phase"], status["verifiedPercent"], status["items"]["translated"]) == ("Succeeded", 0, 10)
    assert "not checked" in condition(status, "Succeeded")["message"]


@given(done=st.integers(0, 50), compiles=st.integers(0, 50), failed=st.integers(0, 50), strict=st.booleans())
def test_counted_failures_lie_between_the_failed_and_everything_that_does_not_compile(
    done: int, compiles: int, failed: int, strict: bool
) -> None:
    compiles = min(compiles, done)
    job = spec(verify={"countAsFailed": "NotCompiling" if strict else "Failed"})
    counted = counted_failures(job, JobObservation(done=done, compiles=compiles, failed=failed))
    assert counted == (failed + done - compiles if strict else failed)


@dataclass(frozen=True)
class Item:
    item_id: str
    relative_path: str
    output_key: str


def test_the_report_lists_each_file_with_its_outcome_and_diagnostics() -> None:
    plan = [Item(f"{i:06d}", f"pkg/m{i}.py", f"out/pkg/m{i}.rs") for i in range(4)]
    body = report(
        plan,
        done_ids={"000000", "000001"},
        failed={"000002": "py2many could not translate pkg/m2.py: line 3: try_dummy not implemented"},
        totals={"compiles": 1},
        compiled_ids={"000000"},
        diagnostics={"000001": ["pkg/m1.rs:4:9: error[E0308]: mismatched types"]},
    )
    assert body["files"] == [
        {"path": "pkg/m0.py", "outcome": "compiles", "output": "out/pkg/m0.rs"},
        {
            "path": "pkg/m1.py",
            "outcome": "translated",
            "output": "out/pkg/m1.rs",
            "diagnostics": ["pkg/m1.rs:4:9: error[E0308]: mismatched types"],
        },
        {
            "path": "pkg/m2.py",
            "outcome": "failed",
            "reason": "py2many could not translate pkg/m2.py: line 3: try_dummy not implemented",
        },
        {"path": "pkg/m3.py", "outcome": "missing"},
    ]
