"""JSON merge patches as the API server applies them, and the test for whether a status patch changes anything."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portalis.desired.cluster_status import status_changed
from portalis.desired.merge import merge_patch, patch_changes


@pytest.mark.parametrize(
    ("target", "patch", "merged"),
    [  # RFC 7386, appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, merged: Any) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == merged
    assert repr(target) == before


def test_a_null_for_a_field_already_gone_is_no_change() -> None:
    # the API server drops perItem: null from the stored status; the next look wants perItem: null again
    stored = merge_patch({}, {"cost": {"spent": "0.00", "gpuSeconds": 0, "perItem": None}, "etaSeconds": None})
    assert stored == {"cost": {"spent": "0.00", "gpuSeconds": 0}}
    again = {"cost": {"spent": "0.00", "gpuSeconds": 0, "perItem": None}, "etaSeconds": None}
    assert not status_changed(stored, again)
    assert status_changed(stored, {"cost": {"spent": "0.01", "gpuSeconds": 1, "perItem": None}})
    assert status_changed({"etaSeconds": 30}, {"etaSeconds": None})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "b"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=500)
@given(json_values, json_values)
def test_a_patch_changes_its_target_exactly_when_merging_it_gives_something_else(target: Any, patch: Any) -> None:
    assert patch_changes(target, patch) == (merge_patch(target, patch) != target)
