"""The server-side apply body: any string in a spec reaches the apiserver's YAML decoder intact.

PyYAML reads YAML 1.1 with the same character rules as the apiserver's decoder (go-yaml): which characters may
appear raw, and which count as line breaks inside a quoted string.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from portalis.clients.kube import apply_body, rejection, resource_of

# what a YAML 1.1 reader accepts raw (go-yaml's reader and PyYAML's agree), less the line breaks NEL, LS and PS
READABLE = re.compile("[\x09\x0a\x0d\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*")
NASTY = ["\x7f", "\x85", "\x86", "\x9f", "\u2028", "\u2029", "\ufeff", "\ufffe", "\uffff", "\x00", "\t", "\U0001f600"]


def body_text(obj: dict[str, Any]) -> str:
    return apply_body(obj).decode("utf-8")


@given(st.dictionaries(st.text(), st.text() | st.sampled_from(NASTY), max_size=4))
def test_any_string_survives_the_yaml_decoder(spec: dict[str, str]) -> None:
    obj = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "spec": spec}
    text = body_text(obj)
    assert READABLE.fullmatch(text), [c for c in text if not READABLE.fullmatch(c)]
    assert yaml.safe_load(text) == obj
    assert json.loads(text) == obj


def test_characters_beyond_the_bmp_are_sent_as_themselves() -> None:
    assert "\U0001f600".encode() in apply_body({"image": "ghcr.io/x:1-\U0001f600"})
    assert b"\\u0086" in apply_body({"image": "\x86"})


class _Refused(Exception):
    pass


def test_rejection_reads_the_apiservers_message() -> None:
    exc = ApiException(status=422, reason="Unprocessable Entity")
    exc.body = json.dumps({"kind": "Status", "message": 'RayCluster.ray.io "x" is invalid: metadata.labels: bad'})
    assert rejection(exc) == 'RayCluster.ray.io "x" is invalid: metadata.labels: bad'
    exc = ApiException(status=400, reason="Bad Request")
    exc.body = "not json"
    assert rejection(exc) == "Bad Request"
    exc = ApiException(status=500, reason="Internal Server Error")
    exc.body = json.dumps(
        {
            "message": "failed to create typed patch object (ns/x; ray.io/v1, Kind=RayCluster): errors:\n"
            "  .spec.workerGroupSpecs[0].template.metadata.extra: field not declared in schema"
        }
    )
    assert "field not declared in schema" in (rejection(exc) or "")
    exc.body = json.dumps({"message": "etcdserver: request timed out"})
    assert rejection(exc) is None
    for status in (404, 409, 429, 500, 503):
        assert rejection(ApiException(status=status)) is None
    assert rejection(_Refused("x")) is None


@pytest.mark.parametrize(
    ("url", "resource"),
    [
        ("https://k:6443/apis/portalis.dev/v1alpha1/namespaces/ns/translationjobs/j1/status", "translationjobs/status"),
        ("https://k:6443/apis/ray.io/v1/namespaces/ns/rayclusters/r?fieldManager=portalis", "rayclusters"),
        ("https://k:6443/api/v1/namespaces/ns/events", "events"),
        ("https://k:6443/api/v1/namespaces/ns/pods/p/eviction", "pods/eviction"),
        ("https://k:6443/api/v1/nodes/gpu-1", "nodes"),
        ("https://k:6443/api/v1/namespaces/ns", "namespaces"),
        ("https://k:6443/version", "other"),
    ],
)
def test_requests_are_counted_by_resource(url: str, resource: str) -> None:
    assert resource_of(url) == resource
