"""Planning a job from a listing: globs, size classes, output keys, ordering and stable item ids."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portalis.desired.plan import (
    BYTES_PER_LINE,
    build_plan,
    estimate_lines,
    match_globs,
    output_key,
    plan_from_json,
    plan_to_json,
    size_class,
)


@pytest.mark.parametrize(
    ("key", "include", "exclude", "expected"),
    [
        ("a.py", ["**/*.py"], [], True),
        ("a/b/c.py", ["**/*.py"], [], True),
        ("a/b/c.pyc", ["**/*.py"], [], False),
        ("a.py", ["*.py"], [], True),
        ("a/b.py", ["*.py"], [], False),  # * does not cross a /
        ("pkg/mod.py", ["pkg/*.py"], [], True),
        ("pkg/sub/mod.py", ["pkg/*.py"], [], False),
        ("pkg/sub/mod.py", ["pkg/**"], [], True),
        ("pkg", ["pkg/**"], [], True),
        ("pkgx/a.py", ["pkg/**"], [], False),
        ("tests/test_a.py", ["**/*.py"], ["**/tests/**"], False),  # exclude wins
        ("src/tests/test_a.py", ["**/*.py"], ["**/tests/**"], False),
        ("src/testsuite/a.py", ["**/*.py"], ["**/tests/**"], True),
        ("a1.py", ["a?.py"], [], True),
        ("a/.py", ["a?.py"], [], False),  # ? does not match a /
        ("b.py", ["[ab].py"], [], True),
        ("c.py", ["[!ab].py"], [], True),
        ("a.py", ["[!ab].py"], [], False),
        ("x.py", ["a.py", "x.py"], [], True),
        ("a+b(1).py", ["a+b(1).py"], [], True),  # regex characters are literal
        ("a.py", [], [], False),  # no include matches nothing
        ("src/a.py", ["src/**/*.py"], [], True),
        ("src/x/y/a.py", ["src/**/*.py"], ["src/x/**"], False),
    ],
)
def test_match_globs(key: str, include: list[str], exclude: list[str], expected: bool) -> None:
    assert match_globs(key, include, exclude) is expected


def test_size_classes_by_estimated_lines() -> None:
    assert estimate_lines(0) == 0
    assert estimate_lines(1) == 1
    assert estimate_lines(BYTES_PER_LINE) == 1
    assert estimate_lines(BYTES_PER_LINE + 1) == 2
    assert [size_class(n) for n in (0, 100, 101, 1000, 1001, 10_000, 10_001, 100_000, 100_001)] == [
        "tiny",
        "tiny",
        "small",
        "small",
        "medium",
        "medium",
        "large",
        "large",
        "xlarge",
    ]
    plan = build_plan(
        [("s/a.py", 4000), ("s/b.py", 4001), ("s/c.py", 400_001), ("s/d.py", 4_000_001)],
        "s/",
        ["**/*.py"],
        [],
        "",
        ".rs",
    )
    assert [i.size_class for i in plan] == ["tiny", "small", "large", "xlarge"]


def test_output_keys_are_deterministic() -> None:
    assert output_key("out/", "pkg/util.py", ".rs") == "out/pkg/util.rs"
    assert output_key("out", "pkg/util.py", ".rs") == "out/pkg/util.rs"
    assert output_key("", "util.py", "go") == "util.go"
    assert output_key("out/", "scripts/run", ".rs") == "out/scripts/run.rs"
    assert output_key("out/", "a.py.py", ".rs") == "out/a.py.rs"
    objects = [("src/pkg/b.py", 10), ("src/a.py", 20)]
    first = build_plan(objects, "src/", ["**/*.py"], [], "translations/ns/job/", ".rs")
    second = build_plan(list(reversed(objects)), "src/", ["**/*.py"], [], "translations/ns/job/", ".rs")
    assert first == second
    assert [i.output_key for i in first] == ["translations/ns/job/a.rs", "translations/ns/job/pkg/b.rs"]


def test_plan_is_sorted_and_filtered_with_padded_ids() -> None:
    objects = [
        ("repo/z.py", 5),
        ("repo/", 0),  # folder marker
        ("repo/a/b.py", 7),
        ("other/x.py", 1),  # outside the prefix
        ("repo/README.md", 3),
        ("repo/tests/test_z.py", 9),
        ("repo/a/a.py", 2),
    ]
    plan = build_plan(objects, "repo/", ["**/*.py"], ["tests/**"], "out/", ".rs")
    assert [i.source_key for i in plan] == ["repo/a/a.py", "repo/a/b.py", "repo/z.py"]
    assert [i.relative_path for i in plan] == ["a/a.py", "a/b.py", "z.py"]
    assert [i.item_id for i in plan] == ["000000", "000001", "000002"]
    assert [i.index for i in plan] == [0, 1, 2]
    assert [i.size_bytes for i in plan] == [2, 7, 5]


def test_too_large_files_stay_in_the_plan() -> None:
    plan = build_plan([("a.py", 100), ("b.py", 101), ("c.py", 99)], "", ["*.py"], [], "", ".rs", max_file_bytes=100)
    assert [(i.source_key, i.too_large) for i in plan] == [("a.py", False), ("b.py", True), ("c.py", False)]


def test_plan_json_round_trip_and_rejects_other_objects() -> None:
    plan = build_plan([("s/a.py", 1), ("s/b/c.py", 99_999_999)], "s/", ["**/*.py"], [], "o/", ".rs")
    assert plan_from_json(plan_to_json(plan)) == plan
    with pytest.raises(ValueError, match="plan"):
        plan_from_json({"items": []})
    broken = plan_to_json(plan)
    broken["count"] = 5
    with pytest.raises(ValueError, match="5 items"):
        plan_from_json(broken)


def test_planning_a_hundred_thousand_keys_is_fast() -> None:
    objects = [(f"repo/pkg{i % 100}/sub{i % 7}/mod{i}.py", 1000 + i) for i in range(100_000)]
    objects += [(f"repo/pkg{i}/tests/test_{i}.py", 10) for i in range(1000)]
    started = time.perf_counter()
    plan = build_plan(objects, "repo/", ["**/*.py"], ["**/tests/**"], "out/", ".rs")
    elapsed = time.perf_counter() - started
    assert len(plan) == 100_000
    assert elapsed < 5.0, f"planning 101k keys took {elapsed:.2f}s"


keys = st.lists(
    st.tuples(
        st.from_regex(r"src/[a-z]{1,3}(/[a-z]{1,3}){0,2}\.py", fullmatch=True),
        st.integers(min_value=0, max_value=20_000_000),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(objects=keys, seed=st.randoms())
def test_item_ids_are_unique_and_stable(objects: list[tuple[str, int]], seed: random.Random) -> None:
    plan = build_plan(objects, "src/", ["**/*.py"], [], "out/", ".rs")
    shuffled = list(objects)
    seed.shuffle(shuffled)
    again = build_plan(shuffled, "src/", ["**/*.py"], [], "out/", ".rs")
    # Every distinct key is planned once; ids and output keys are unique; the same listing in any order gives
    # the same plan.
    assert len(plan) == len({k for k, _ in objects})
    assert len({i.item_id for i in plan}) == len(plan)
    assert len({i.output_key for i in plan}) == len(plan)
    assert [i.item_id for i in plan] == [f"{n:06d}" for n in range(len(plan))]
    assert [(i.item_id, i.source_key, i.output_key) for i in plan] == [
        (i.item_id, i.source_key, i.output_key) for i in again
    ]
    assert [i.source_key for i in plan] == sorted(i.source_key for i in plan)
