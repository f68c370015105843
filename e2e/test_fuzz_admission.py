"""Fuzzing admission: generated TranslationClusters and TranslationJobs against the real kube-apiserver, with the
operator running.

Every generated object must either be rejected by admission with a message a person can read (a 4xx answer with a
non-empty message, no CEL evaluation error), or be accepted and then observed by the operator (``status.
observedGeneration``, or a condition, at the object's generation) within ``OBSERVE_SECONDS``, with no ERROR line
and no Traceback about it in the operator's log. Afterwards the operator must not be wedged: a fresh, valid
TranslationCluster is observed within 5 s, by this run's operator (its log names the cluster).

The generators are driven by the CRD schemas in ``crds/`` (types, enums, ranges, patterns, lengths, and the CEL
rules for money, buckets, URLs, quantities and key prefixes), so a field added to the API models is fuzzed without
touching this file. Each object takes one of four shapes:

- ``valid``: valid by the schema, with the cross-field rules mostly repaired (one of url and urlSecretRef,
  minWorkers <= maxWorkers, a budget with pricing and a limit, ...);
- ``mutated``: a valid object changed at one to three random places;
- ``chaos``: about one value in six replaced by junk: a wrong type, an out-of-range number, a bad money string or
  bucket name, an unknown enum value, a huge or unicode string, an extra field, null;
- ``example``: a file from ``manifests/examples/``, mutated the same way.

A mutation replaces a value with junk or another valid value, deletes it (a missing required field), sets it to
null or adds an unknown field next to it. A third of the accepted objects are then replaced with a mutated spec
(``kubectl replace``), which exercises the transition rules (immutable fields). A few objects also carry a top-level
change: no spec, a spec of the wrong type, another apiVersion or kind, an unknown top-level field, or a forged
status (which the apiserver must drop).

Clusters that name the Secret ``portalis-e2e`` reach the test Redis and S3; others name Secrets that do not exist or
Redis and S3 endpoints that refuse connections, which is fine: they are observed and simply not Ready. A
ResourceQuota keeps the namespace to a few pods, so a fuzzed ``minWorkers: 1000`` costs the shared cluster
nothing.

``PORTALIS_FUZZ_EXAMPLES`` sets the number of objects of each kind (60 by default), ``PORTALIS_FUZZ_SEED`` fixes
the seed and ``PORTALIS_FUZZ_OBSERVE_SECONDS`` the time an accepted object gets to be observed (5 s).
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import os
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import urllib3
import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from e2e.jobs import simple_module
from portalis.api.v1alpha1.common import BUCKET_REGEX, HTTP_URL_REGEX, MONEY_REGEX, PERCENT_REGEX
from portalis.clients.store import Store
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.operator import OperatorProcess
from portalis_devcluster.servers import RedisServer, S3Server

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "manifests" / "examples"
GROUP, VERSION = "portalis.dev", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURALS = {"TranslationCluster": "translationclusters", "TranslationJob": "translationjobs"}

FUZZ_EXAMPLES = int(os.environ.get("PORTALIS_FUZZ_EXAMPLES", "60"))
FUZZ_SEED = os.environ.get("PORTALIS_FUZZ_SEED")
OBSERVE_SECONDS = float(os.environ.get("PORTALIS_FUZZ_OBSERVE_SECONDS", "5"))
FRESH_SECONDS = 5.0
WIRED_SECRET = "portalis-e2e"  # the Secret that points at the test Redis and S3 (as e2e/jobs.py names it)
SOURCE_BUCKET = "fuzz-sources"
ARTIFACTS_BUCKET = "portalis-e2e-artifacts"
MAX_POD_COUNT = "4"  # the namespace's ResourceQuota on pods
HUNG_CLUSTERS = 40  # clusters on a Redis that never answers: more than the cluster controller's 32 workers
HUNG_OBSERVE_SECONDS = 15.0  # a Redis call that hangs may take a short timeout before the status says so

# CEL evaluation problems surface in a rejection's message; a rule that errors is a rule a person cannot act on.
CEL_ERROR_MARKERS = ("no such key", "no such overload", "evaluation error", "compilation failed", "Internal error")


def _spec_schema(kind: str) -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / f"{GROUP}_{PLURALS[kind]}.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


SCHEMAS = {kind: _spec_schema(kind) for kind in PLURALS}


def _examples(kind: str) -> list[dict[str, Any]]:
    docs = [yaml.safe_load(p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml"))]
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == kind]


# ---- values -------------------------------------------------------------------------------------------------

HOSTS = st.sampled_from(
    ["127.0.0.1", "localhost", "[::1]", "redis.portalis", "minio.portalis", "no-such-host.invalid", "h\u00fcst"]
)
CLOSED_PORTS = st.sampled_from(["", ":1", ":9", ":65535", ":0", ":99999", ":notaport"])
URL_PATHS = st.sampled_from(["", "/", "/0", "/15", "/v1", "/db?x=1", "/%zz", "/" + "p" * 300])
HUGE = st.builds(
    lambda ch, n: ch * n, st.sampled_from(["a", "\u00e9", "\U0001f600", "\u202e", "\x00"]), st.sampled_from([254, 4097])
)
HUGER = st.builds(lambda n: "z" * n, st.sampled_from([70_000, 300_000]))
ODD_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\t\n",
        "null",
        "true",
        "1e309",
        "0x10",
        "-1",
        "\u202eevil",
        "R\u0430y",  # a Cyrillic "a"
        "\uff52\uff55\uff53\uff54",  # full-width "rust"
        "Ray\u200b",
        "\U0001f600" * 8,
        "'; DROP TABLE x; --",
        "${jndi:ldap://x}",
        "{{ .Values }}",
        "../../etc/passwd",
    ]
)
ANY_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    ODD_STRINGS,
    HUGE,
    st.lists(st.integers(-5, 5), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(-5, 5), max_size=2),
)
JSON_ANY = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=8), ODD_STRINGS),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=10,
)
LABEL_KEYS = st.one_of(
    st.from_regex(r"([a-z0-9]{1,6}\.[a-z]{2,4}/)?[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True),
    st.sampled_from(["cpu", "memory", "ephemeral-storage", "nvidia.com/gpu", "temperature", "node.kubernetes.io/x"]),
    st.text(max_size=10),
)
PLAIN_STRINGS = st.one_of(st.from_regex(r"[a-z0-9][-a-z0-9./:]{0,20}", fullmatch=True), st.text(max_size=30))

MONEY_OK = st.one_of(
    st.from_regex(r"[0-9]{1,7}(\.[0-9]{1,2})?", fullmatch=True),
    st.sampled_from(["0", "0.00", "0.01", "3.60", "500.00", "99999999999999999999", "00007.5"]),
)
MONEY_BAD = st.sampled_from(
    [
        "-1.00",
        "1.234",
        "1e3",
        "\uff11\uff10\uff10",
        "500.00 ",
        " 500",
        "500.",
        ".50",
        "",
        "NaN",
        "Infinity",
        "5,00",
        "$5",
        "0x1F",
        "1" * 21,
        "\u0663.\u0665\u0660",
        "5.0.0",
        "+5",
    ]
)
BUCKET_OK = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]", fullmatch=True).filter(lambda s: ".." not in s),
    st.sampled_from(["abc", "a" * 63, SOURCE_BUCKET, ARTIFACTS_BUCKET, "1.2.3.4", "no-such-bucket"]),
)
BUCKET_BAD = st.sampled_from(
    ["AB", "ab", "a..b", "-abc", "abc-", "a_b", "a" * 64, "ab c", "b\u00fccket", "", ".abc", "Upper", "a/b", "a\nb"]
)
HTTP_OK = st.builds(
    lambda scheme, auth, host, port, path: f"{scheme}://{auth}{host}{port}{path}",
    st.sampled_from(["http", "https"]),
    st.sampled_from(["", "user:pw@"]),
    HOSTS,
    CLOSED_PORTS,
    URL_PATHS,
)
HTTP_BAD = st.sampled_from(
    ["ftp://x", "http//x", "http://", "http:// x", "javascript:alert(1)", "HTTP://X", "", "x" * 3000, "//x", "http:"]
)
REDIS_OK = st.one_of(
    st.builds(
        lambda scheme, auth, host, port, path: f"{scheme}://{auth}{host}{port}{path}",
        st.sampled_from(["redis", "rediss"]),
        st.sampled_from(["", ":pw@", "user:pw@", ":@"]),
        HOSTS,
        CLOSED_PORTS,
        URL_PATHS,
    ),
    st.sampled_from(["redis://", "rediss://", "redis://[::1", "redis://h/notadb", "redis://a b", "redis://\u00fc"]),
)
REDIS_BAD = st.sampled_from(["redis:/x", "http://redis:6379", "REDIS://x", "unix:///tmp/r.sock", "", " redis://x"])
QUANTITY_OK = st.one_of(
    st.integers(0, 10**12),
    st.from_regex(r"[0-9]{1,5}(m|k|M|G|Ki|Mi|Gi)?", fullmatch=True),
    st.sampled_from(["0", "500m", "8Gi", "1e3", "1.5", ".5", "100Ei", "+1", "1E3"]),
)
QUANTITY_BAD = st.one_of(
    st.sampled_from(["-1", "1.5.5", "12Zi", "\u221e", "1e", "", "1 Gi", "0x10", "Gi", "1ki", "\u0661", "-0.5"]),
    st.sampled_from([-1, -(2**40), 1.5, True]),
)
COUNT_OK = st.one_of(st.integers(0, 1000), st.sampled_from(["0%", "10%", "99%", "100%"]))
COUNT_BAD = st.one_of(st.sampled_from(["101%", "-1%", "10", "%", "10 %", "1.5%", "010%", ""]), st.just(-1))
PREFIX_OK = st.one_of(
    st.from_regex(r"([a-z0-9_.-]{1,8}/){0,3}", fullmatch=True), st.sampled_from(["", "repos/", "\u00fc\u00f1/"])
)
PREFIX_BAD = st.sampled_from(["/", "/abs/", "//x"])

# (a substring of the CEL rule, valid values, invalid values)
RULES: list[tuple[str, st.SearchStrategy[Any], st.SearchStrategy[Any]]] = [
    (MONEY_REGEX, MONEY_OK, MONEY_BAD),
    (BUCKET_REGEX, BUCKET_OK, BUCKET_BAD),
    (HTTP_URL_REGEX, HTTP_OK, HTTP_BAD),
    ("redis://", REDIS_OK, REDIS_BAD),
    ("isQuantity", QUANTITY_OK, QUANTITY_BAD),
    (PERCENT_REGEX, COUNT_OK, COUNT_BAD),
    ("startsWith('/')", PREFIX_OK, PREFIX_BAD),
]

POD_TEMPLATES = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "metadata": st.fixed_dictionaries(
                {}, optional={"labels": st.dictionaries(LABEL_KEYS, PLAIN_STRINGS, max_size=2)}
            ),
            "spec": st.fixed_dictionaries(
                {},
                optional={
                    "serviceAccountName": PLAIN_STRINGS,
                    "priorityClassName": PLAIN_STRINGS,
                    "containers": st.lists(
                        st.fixed_dictionaries(
                            {"name": st.one_of(st.sampled_from(["worker", "ray-worker", "x"]), JSON_ANY)},
                            optional={
                                "env": st.lists(
                                    st.fixed_dictionaries({"name": PLAIN_STRINGS, "value": PLAIN_STRINGS}),
                                    max_size=2,
                                ),
                                "image": PLAIN_STRINGS,
                            },
                        ),
                        max_size=2,
                    ),
                    "volumes": st.lists(st.fixed_dictionaries({"name": PLAIN_STRINGS, "emptyDir": st.just({})})),
                },
            ),
        },
    ),
    st.dictionaries(st.sampled_from(["metadata", "spec", "x"]), JSON_ANY, max_size=2),
)


def _rule(schema: dict[str, Any]) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]] | None:
    if schema.get("type") in ("object", "array"):
        return None  # rules on objects are cross-field rules, handled by repair_cluster
    rules = " ".join(str(v.get("rule", "")) for v in schema.get("x-kubernetes-validations") or [])
    for needle, ok, bad in RULES:
        if needle in rules:
            return ok, bad
    return None


def _type(schema: dict[str, Any]) -> str | None:
    if schema.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    t = schema.get("type")
    return str(t) if t else None


def junk(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that should not pass ``schema``: wrong types, out-of-range numbers, unknown enums, bad formats."""
    options: list[st.SearchStrategy[Any]] = [ANY_JUNK]
    t = _type(schema)
    if "enum" in schema:
        variants = [v for e in schema["enum"] for v in (e.lower(), e.upper(), e + " ", e[:-1], "x" + e)]
        options.append(st.sampled_from([*variants, "Unknown", "", "Spark", "Triton"]))
    rule = _rule(schema)
    if rule is not None:
        options += [rule[1], rule[1]]
    if t == "integer":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        edges = [-1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1]
        edges += [lo - 1] if lo is not None else []
        edges += [hi + 1, hi * 10] if hi is not None else []
        options += [st.sampled_from(edges), st.sampled_from([1.5, 1e300, "1", "one", True])]
    elif t == "string":
        limit = int(schema.get("maxLength", 256))
        options += [st.just("x" * (limit + 1)), HUGE, HUGER, ODD_STRINGS, st.sampled_from([1, 1.0, False, ["x"], {}])]
    elif t == "boolean":
        options.append(st.sampled_from(["true", "false", 1, 0, "yes", "", [True]]))
    elif t == "object":
        options.append(st.sampled_from([[], "{}", 1, {"": 1}, {"unknownField": True}]))
        if "maxProperties" in schema:
            n = int(schema["maxProperties"]) + 1
            options.append(st.just({f"k{i}": "1" for i in range(n)}))
    elif t == "array":
        options.append(st.sampled_from([{}, "[]", 1, [None], [[]]]))
        if "maxItems" in schema:
            options.append(
                st.just([copy.deepcopy(schema.get("items", {}).get("default", "x"))] * (schema["maxItems"] + 1))
            )
    return st.one_of(options)


BITS = st.tuples(*[st.booleans()] * 8)


def _uniform(draw: Callable[..., Any]) -> int:
    """0 to 255, about uniformly: hypothesis draws small integers far more often than large ones, but booleans
    about half and half, so a byte of booleans is closer to uniform than ``st.integers(0, 255)``."""
    return sum(bit << i for i, bit in enumerate(draw(BITS)))


def chance(draw: Callable[..., Any], percent: float) -> bool:
    """True about ``percent`` % of the time (never for the all-zero draws hypothesis starts from)."""
    return _uniform(draw) >= 256 - percent * 256 / 100


def pick(draw: Callable[..., Any], options: list[Any]) -> Any:
    """One of ``options``, about uniformly (unlike ``st.sampled_from``, which favours the first ones)."""
    return options[_uniform(draw) % len(options)]


def draw_value(draw: Callable[..., Any], schema: dict[str, Any], junk_pct: int = 0, depth: int = 0) -> Any:
    """A value for ``schema``; with ``junk_pct`` > 0 about that percentage of the values drawn are junk."""
    if junk_pct and chance(draw, junk_pct):
        return draw(junk(schema))
    if "enum" in schema:
        return draw(st.sampled_from(schema["enum"]))
    rule = _rule(schema)
    if rule is not None:
        return draw(rule[0])
    t = _type(schema)
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return draw(POD_TEMPLATES)
    if t == "object":
        if "properties" in schema:
            required = set(schema.get("required") or [])
            out: dict[str, Any] = {}
            for key, sub in schema["properties"].items():
                if key in required or chance(draw, 60 / (depth + 1)):
                    out[key] = draw_value(draw, sub, junk_pct, depth + 1)
            return out
        values = schema.get("additionalProperties")
        if isinstance(values, dict):
            n = draw(st.integers(0, min(int(schema.get("maxProperties", 3)), 3)))
            keys = draw(st.lists(LABEL_KEYS, min_size=n, max_size=n, unique=True))
            return {k: draw_value(draw, values, junk_pct, depth + 1) for k in keys}
        return {}
    if t == "array":
        n = draw(st.integers(0, min(int(schema.get("maxItems", 3)), 3)))
        items = [draw_value(draw, schema.get("items") or {}, junk_pct, depth + 1) for _ in range(n)]
        map_keys = schema.get("x-kubernetes-list-map-keys")
        if map_keys and not chance(draw, 20):  # mostly unique keys; sometimes a duplicate for the apiserver
            by_key = {json.dumps([i.get(m) for m in map_keys] if isinstance(i, dict) else i): i for i in items}
            items = list(by_key.values())
        elif schema.get("x-kubernetes-list-type") == "set" and not chance(draw, 20):
            items = list({json.dumps(i): i for i in items}.values())
        return items
    if t == "integer":
        lo, hi = int(schema.get("minimum", -(2**31))), int(schema.get("maximum", 2**31))
        return draw(st.one_of(st.sampled_from([lo, hi]), st.integers(lo, hi)))
    if t == "boolean":
        return draw(st.booleans())
    if t == "string":
        limit = int(schema.get("maxLength", 64))
        if "pattern" in schema:
            return draw(st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: len(s) <= limit))
        return draw(PLAIN_STRINGS.filter(lambda s: len(s) <= limit))
    if t == "int-or-string":
        return draw(st.one_of(st.integers(0, 100), PLAIN_STRINGS))
    return draw(ANY_JUNK)


# ---- mutations ----------------------------------------------------------------------------------------------

Path_ = tuple[Any, ...]


def _child_schema(schema: dict[str, Any], key: Any) -> dict[str, Any]:
    if isinstance(key, int):
        return dict(schema.get("items") or {})
    props = schema.get("properties") or {}
    if key in props:
        return dict(props[key])
    extra = schema.get("additionalProperties")
    return dict(extra) if isinstance(extra, dict) else {}


def _paths(value: Any, schema: dict[str, Any], prefix: Path_ = ()) -> Iterator[tuple[Path_, dict[str, Any]]]:
    yield prefix, schema
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _paths(sub, _child_schema(schema, key), (*prefix, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _paths(sub, _child_schema(schema, i), (*prefix, i))


UNKNOWN_KEYS = st.sampled_from(["unknownField", "minworkers", "gpu_type", "x-extra", "status", "", "\u00fc", "spec"])


def mutate(draw: Callable[..., Any], spec: Any, schema: dict[str, Any], count: int) -> Any:
    """``spec`` changed at ``count`` random places: junk, another valid value, deleted, null or an extra field."""
    spec = copy.deepcopy(spec)
    for _ in range(count):
        path, sub = pick(draw, list(_paths(spec, schema)))
        op = pick(draw, ["junk", "junk", "valid", "delete", "null", "extra"])
        if op == "extra":
            target = spec
            for key in path:
                target = target[key]
            if isinstance(target, dict):
                target[draw(UNKNOWN_KEYS)] = draw(ANY_JUNK)
                continue
            op = "junk"
        value = None if op in ("delete", "null") else draw(junk(sub)) if op == "junk" else draw_value(draw, sub)
        if not path:
            spec = {} if op == "delete" else value
            continue
        parent = spec
        for key in path[:-1]:
            parent = parent[key]
        if op == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return spec


# ---- repairs of the cross-field rules (valid shape) -----------------------------------------------------------


def _money(value: Any) -> float | None:
    return float(value) if isinstance(value, str) and re.fullmatch(MONEY_REGEX, value) else None


def repair_cluster(draw: Callable[..., Any], spec: dict[str, Any]) -> dict[str, Any]:
    queue = spec.setdefault("queue", {})
    if ("url" in queue) == ("urlSecretRef" in queue):
        queue.pop("url" if draw(st.booleans()) else "urlSecretRef", None)
        if not queue:
            queue["urlSecretRef"] = {"name": "missing-secret", "key": "url"}
    if chance(draw, 33):  # a third reach the test Redis and S3
        spec["queue"] = {"urlSecretRef": {"name": WIRED_SECRET, "key": "url"}}
        spec["storage"]["credentialsSecretRef"] = {"name": WIRED_SECRET}
    workers = spec.get("workers") or {}
    low, high = workers.get("minWorkers", 0), workers.get("maxWorkers", 4)  # the CRD's defaults
    if low > high and "maxWorkers" in workers:
        workers["minWorkers"], workers["maxWorkers"] = high, low
    elif low > high:
        workers["maxWorkers"] = low
    for part in ("requests", "limits"):
        ((workers.get("resources") or {}).get(part) or {}).pop("nvidia.com/gpu", None)
    engine = spec.get("engine") or {}
    if engine.get("name") == "openai":
        engine.setdefault("endpoint", "http://127.0.0.1:9/v1")
        engine.setdefault("model", "some-model")
    budget = spec.get("budget")
    if budget is not None:
        spec.setdefault("pricing", {"onDemandGpuHour": "3.60"})
        windows = [w for w in ("daily", "weekly", "monthly") if w in budget]
        if not windows and not budget.get("tenants"):
            budget["daily"] = "500.00"
        present = [w for w in windows if _money(budget[w]) is not None]  # daily <= weekly <= monthly
        budget.update(zip(present, sorted((budget[w] for w in present), key=lambda v: _money(v) or 0.0), strict=True))
        for tenant in budget.get("tenants") or []:
            if not any(w in tenant for w in ("daily", "weekly", "monthly")):
                tenant["daily"] = "1.00"
            present = [w for w in ("daily", "weekly", "monthly") if _money(tenant.get(w)) is not None]
            tenant.update(
                zip(present, sorted((tenant[w] for w in present), key=lambda v: _money(v) or 0.0), strict=True)
            )
    return spec


# ---- cases --------------------------------------------------------------------------------------------------


@dataclass
class Case:
    kind: str
    manifest: dict[str, Any]
    shape: str
    field_validation: str
    update: Any = None  # a replacement spec, sent once the object is accepted
    companion: dict[str, Any] | None = None  # a cluster created before the job


_names = itertools.count()


def _name(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


@st.composite
def specs(draw: Callable[..., Any], kind: str, shape: str | None = None) -> tuple[str, Any]:
    schema = SCHEMAS[kind]
    shape = shape or pick(draw, ["valid"] * 7 + ["example"] * 5 + ["mutated"] * 5 + ["chaos"] * 3)
    if shape == "example":
        spec = copy.deepcopy(pick(draw, _examples(kind))["spec"])
        if kind == "TranslationJob" and chance(draw, 50):
            spec["clusterRef"] = {"name": "tc"}
        return shape, mutate(draw, spec, schema, pick(draw, [0, 1, 1, 2, 3]))
    spec = draw_value(draw, schema, junk_pct=16 if shape == "chaos" else 0)
    if isinstance(spec, dict) and kind == "TranslationCluster" and shape != "chaos" and chance(draw, 85):
        spec = repair_cluster(draw, spec)
    if kind == "TranslationJob" and shape != "chaos" and isinstance(spec.get("clusterRef"), dict):
        ref = spec["clusterRef"]
        ref["name"] = pick(draw, ["tc", "tc", "missing-cluster", ref.get("name", "x")])
        if chance(draw, 70):
            ref.pop("namespace", None)
        if isinstance(spec.get("source"), dict) and chance(draw, 50):
            spec["source"]["bucket"] = SOURCE_BUCKET
    if shape == "mutated":
        spec = mutate(draw, spec, schema, draw(st.integers(1, 3)))
    return shape, spec


@st.composite
def cases(draw: Callable[..., Any], kind: str) -> Case:
    shape, spec = draw(specs(kind))
    manifest: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": _name("fz-tc" if kind == "TranslationCluster" else "fz-tj")},
        "spec": spec,
    }
    top = pick(draw, list(range(6))) if chance(draw, 10) else None
    if top == 0:
        del manifest["spec"]
    elif top == 1:
        manifest["spec"] = draw(st.sampled_from(["spec", 1, [], None, True]))
    elif top == 2:
        manifest["apiVersion"] = draw(st.sampled_from(["portalis.dev/v1", "v1", "portalis.dev/v1beta1", ""]))
    elif top == 3:
        manifest["kind"] = draw(st.sampled_from(["TranslationJob", "TranslationCluster", "Pod", ""]) | ODD_STRINGS)
    elif top == 4:
        manifest[draw(UNKNOWN_KEYS.filter(lambda k: k not in ("spec", "status")))] = draw(ANY_JUNK)
    elif top == 5:
        forged = {"type": "Ready", "status": "True", "reason": "Forged", "message": "", "observedGeneration": 999999}
        manifest["status"] = {"observedGeneration": 999999, "phase": "Running", "conditions": [forged]}
    update = None
    if chance(draw, 33):
        base = spec if isinstance(spec, dict) else draw(specs(kind, "valid"))[1]
        update = mutate(draw, base, SCHEMAS[kind], draw(st.integers(1, 2)))
    companion = None
    if kind == "TranslationJob" and isinstance(spec, dict) and chance(draw, 25):
        _, tc_spec = draw(specs("TranslationCluster", "valid"))
        companion = {
            "apiVersion": API_VERSION,
            "kind": "TranslationCluster",
            "metadata": {"name": _name("fz-tcj")},
            "spec": tc_spec,
        }
        if isinstance(spec.get("clusterRef"), dict):
            spec["clusterRef"] = {"name": companion["metadata"]["name"]}
    validation = pick(draw, ["Strict", "Strict", "Warn", "Ignore"])
    return Case(kind, manifest, shape, validation, update, companion)


# ---- the apiserver ------------------------------------------------------------------------------------------


class Api:
    """The custom objects API of the test cluster, answering (status code, body) instead of raising."""

    def __init__(self, kube: DevCluster) -> None:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        client = kubernetes.config.new_client_from_config(config_file=str(kube.kubeconfig))  # type: ignore[no-untyped-call]
        self.custom = kubernetes.client.CustomObjectsApi(client)

    @staticmethod
    def _call(fn: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
        try:
            return 201, dict(fn())
        except ApiException as exc:
            try:
                body = json.loads(exc.body or "{}")
            except ValueError:
                body = {"message": str(exc.body)}
            return int(exc.status or 0), body if isinstance(body, dict) else {"message": str(body)}

    def create(
        self, ns: str, kind: str, body: dict[str, Any], validation: str = "Strict"
    ) -> tuple[int, dict[str, Any]]:
        return self._call(
            lambda: self.custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, PLURALS[kind], body, field_validation=validation, _request_timeout=30
            )
        )

    def replace(self, ns: str, kind: str, body: dict[str, Any], validation: str) -> tuple[int, dict[str, Any]]:
        name = body["metadata"]["name"]
        return self._call(
            lambda: self.custom.replace_namespaced_custom_object(
                GROUP, VERSION, ns, PLURALS[kind], name, body, field_validation=validation, _request_timeout=30
            )
        )

    def get(self, ns: str, kind: str, name: str) -> dict[str, Any] | None:
        code, body = self._call(
            lambda: self.custom.get_namespaced_custom_object(
                GROUP, VERSION, ns, PLURALS[kind], name, _request_timeout=30
            )
        )
        return body if code < 300 else None


def observed_at(obj: dict[str, Any] | None, generation: int) -> bool:
    """Whether the operator has written a status for ``generation`` (observedGeneration or a condition)."""
    if obj is None:
        return False
    status = obj.get("status") or {}
    if status.get("observedGeneration") == generation:
        return True
    return any(c.get("observedGeneration") == generation for c in status.get("conditions") or [])


def wait_observed(api: Api, ns: str, kind: str, name: str, generation: int, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while True:
        obj = api.get(ns, kind, name)
        if obj is None or observed_at(obj, generation):
            return obj
        if time.monotonic() > deadline:
            return obj
        time.sleep(0.1)


@dataclass
class Tally:
    """What the run saw, for the summary, and what it found wrong."""

    outcomes: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)

    def find(self, what: str, case: Case, body: Any) -> None:
        if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
            meta = body["metadata"]
            body = {**body, "metadata": {k: meta[k] for k in ("name", "generation") if k in meta}}
        text = json.dumps(body, ensure_ascii=True, default=str)
        self.findings.append(
            f"{case.kind} ({case.shape}, fieldValidation={case.field_validation}): {what}\n    object: {text[:3000]}"
        )


def _rejection_problem(code: int, body: dict[str, Any]) -> str | None:
    message = str(body.get("message") or "").strip()
    if not message:
        return f"rejected ({code}) without a message: {body}"
    if code >= 500 or code < 400:
        return f"answered {code}, not a 4xx rejection: {message[:500]}"
    for marker in CEL_ERROR_MARKERS:
        if marker in message:
            return f"rejected with a validation rule error ({marker!r}) instead of its message: {message[:500]}"
    return None


def submit(api: Api, ns: str, case: Case, manifest: dict[str, Any], tally: Tally, label: str) -> dict[str, Any] | None:
    """Create ``manifest``; record a finding unless it is rejected properly or accepted and observed in time."""
    code, body = api.create(ns, case.kind, manifest, case.field_validation)
    if code >= 300:
        tally.outcomes[f"{label} rejected"] += 1
        problem = _rejection_problem(code, body)
        if problem:
            tally.find(problem, case, manifest)
        return None
    tally.outcomes[f"{label} accepted"] += 1
    if "status" in body:
        tally.find(f"the apiserver kept a status sent on create: {body['status']}", case, manifest)
    name, generation = body["metadata"]["name"], int(body["metadata"].get("generation") or 1)
    obj = wait_observed(api, ns, case.kind, name, generation, OBSERVE_SECONDS)
    if obj is not None and not observed_at(obj, generation):
        tally.find(f"accepted but not observed within {OBSERVE_SECONDS:.0f}s; status: {obj.get('status')}", case, obj)
    return obj


def run_case(api: Api, ns: str, case: Case, tally: Tally) -> None:
    if case.companion is not None:
        submit(
            api,
            ns,
            Case("TranslationCluster", case.companion, "companion", "Strict"),
            case.companion,
            tally,
            "companion cluster",
        )
    obj = submit(api, ns, case, case.manifest, tally, "create")
    if obj is None or case.update is None:
        return
    body = copy.deepcopy(obj)
    body.pop("status", None)
    body["spec"] = case.update
    code, answer = api.replace(ns, case.kind, body, case.field_validation)
    if code >= 300:
        tally.outcomes["update rejected"] += 1
        problem = _rejection_problem(code, answer)
        if problem:
            tally.find(f"update: {problem}", case, body)
        return
    tally.outcomes["update accepted"] += 1
    generation = int(answer["metadata"].get("generation") or 1)
    after = wait_observed(api, ns, case.kind, answer["metadata"]["name"], generation, OBSERVE_SECONDS)
    if after is not None and not observed_at(after, generation):
        tally.find(
            f"update accepted but generation {generation} not observed within {OBSERVE_SECONDS:.0f}s; "
            f"status: {after.get('status')}",
            case,
            after,
        )


# ---- the operator's log -------------------------------------------------------------------------------------

TEXT_RECORD = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,.]+\] (?P<logger>\S+)\s+\[(?P<level>[A-Z]+)\s*\] (?P<message>.*)$")
OBJECT_KEY = re.compile(r"(?:^|[\s\[(\"'])[a-z0-9][-a-z0-9]*/[a-z0-9][-a-z0-9.]*")


@dataclass
class LogRecord:
    line: int
    level: str
    message: str
    text: str


def log_records(path: Path, offset: int = 0) -> list[LogRecord]:
    """The records of the operator's log from byte ``offset``, numbered by line in the whole file: text (kopf's
    format) or JSON lines."""
    with open(path, "rb") as fh:
        before = fh.read(offset).count(b"\n")
        data = fh.read().decode("utf-8", "replace")
    records: list[LogRecord] = []
    for i, line in enumerate(data.splitlines(), before + 1):
        match = TEXT_RECORD.match(line)
        parsed: Any = None
        if match is None and line.startswith("{"):
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = None
        if match is not None:
            records.append(LogRecord(i, match["level"], match["message"], line))
        elif isinstance(parsed, dict):
            level = str(parsed.get("levelname") or parsed.get("level") or parsed.get("severity") or "").upper()
            message = str(parsed.get("message") or parsed.get("msg") or "")
            records.append(LogRecord(i, level, message, line))
        elif records:
            records[-1].text += "\n" + line
        else:
            records.append(LogRecord(i, "", line, line))
    return records


def log_problems(path: Path, offset: int, namespace: str) -> list[str]:
    """ERROR records and Tracebacks about objects in ``namespace``, or about no object but in Portalis' code; one
    entry per object and exception, with the first record in full and how often it repeated."""
    seen: dict[tuple[str, str], list[LogRecord]] = {}
    for r in log_records(path, offset):
        if r.level not in ("ERROR", "CRITICAL") and "Traceback (most recent call last)" not in r.text:
            continue
        ours = namespace in r.text
        unattributed = not OBJECT_KEY.search(r.message) and "/portalis/" in r.text
        if ours or unattributed:
            key = OBJECT_KEY.search(r.message)
            lines = [line for line in r.text.splitlines() if line.strip()]
            seen.setdefault((key[0].strip() if key else "", lines[-1][:200]), []).append(r)
    return [f"{path}, line {rs[0].line} ({len(rs)} records like it):\n{rs[0].text[:5000]}" for rs in seen.values()]


def log_mentions(path: Path, offset: int, needle: str) -> bool:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return needle.encode() in fh.read()


# ---- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture
def api(kube: DevCluster) -> Api:
    return Api(kube)


def _secret(name: str, values: dict[str, str]) -> str:
    data = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data})


@pytest.fixture
def fuzz_ns(operator: OperatorProcess, namespace: str, redis_server: RedisServer, s3_server: S3Server) -> Iterator[str]:
    """The test's namespace: a pod quota, the Secret that reaches the test Redis and S3, and a source tree in S3.

    On the way out, jobs and clusters are deleted while the operator still runs, so their finalizers are handled;
    finalizers left after a while (theirs, or the dask operator's on a DaskCluster) are stripped, so the namespace
    never hangs in Terminating.
    """
    kube = operator.kube
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "fuzz-pods"},
        "spec": {"hard": {"pods": MAX_POD_COUNT}},
    }
    kube.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(quota))
    wired = {
        "url": redis_server.url,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
    }
    kube.kubectl("-n", namespace, "apply", "-f", "-", input=_secret(WIRED_SECRET, wired))
    store = Store(s3_server.endpoint, access_key=s3_server.access_key, secret_key=s3_server.secret_key)
    for bucket in (SOURCE_BUCKET, ARTIFACTS_BUCKET):
        store.ensure_bucket(bucket)
    for i in range(3):
        store.put_bytes(SOURCE_BUCKET, f"repos/mod_{i}.py", simple_module(i, namespace))
    yield namespace
    _delete_all(kube, namespace, "translationjobs,translationclusters", 30)
    # owned backends go with their clusters; the dask operator keeps the finalizer of a DaskCluster whose
    # creation keeps failing, which would hold the namespace in Terminating
    _delete_all(kube, namespace, "rayclusters,daskclusters", 20)


def _delete_all(kube: DevCluster, namespace: str, kinds: str, timeout: float) -> None:
    """Delete every object of ``kinds`` in ``namespace``; strip the finalizers of those still there after
    ``timeout`` seconds (and say so), so the namespace never hangs in Terminating."""
    kube.kubectl("-n", namespace, "delete", kinds, "--all", "--wait=false", check=False)
    deadline = time.monotonic() + timeout
    left: list[str] = []
    while time.monotonic() < deadline:
        left = kube.kubectl("-n", namespace, "get", kinds, "-o", "name", check=False).stdout.split()
        if not left:
            return
        time.sleep(0.5)
    for name in left:
        print(f"{namespace}/{name} kept its finalizers for {timeout:.0f}s after deletion; removing them")
        kube.kubectl(
            "-n", namespace, "patch", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False
        )


def fresh_cluster(kube: DevCluster, ns: str, s3_server: S3Server, name: str) -> None:
    body = {
        "apiVersion": API_VERSION,
        "kind": "TranslationCluster",
        "metadata": {"name": name},
        "spec": {
            "workers": {"gpuType": "H100", "minWorkers": 0, "maxWorkers": 2},
            "queue": {"urlSecretRef": {"name": WIRED_SECRET, "key": "url"}},
            "storage": {
                "endpoint": s3_server.endpoint,
                "bucket": ARTIFACTS_BUCKET,
                "forcePathStyle": True,
                "credentialsSecretRef": {"name": WIRED_SECRET},
            },
            "pricing": {"onDemandGpuHour": "3.60"},
        },
    }
    kube.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(body))


def assert_not_wedged(operator: OperatorProcess, api: Api, ns: str, s3_server: S3Server, offset: int) -> None:
    """A fresh, valid cluster is observed within FRESH_SECONDS, and this run's operator logs about it."""
    assert operator.alive(), f"the operator exited:\n{operator.log.read_text()[-3000:]}"
    name = f"fresh-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    fresh_cluster(operator.kube, ns, s3_server, name)
    deadline = started + FRESH_SECONDS
    obj: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        obj = api.get(ns, "TranslationCluster", name)
        if observed_at(obj, 1) and log_mentions(operator.log, offset, f"{ns}/{name}"):
            print(f"fresh TranslationCluster observed after {time.monotonic() - started:.2f}s")
            return
        time.sleep(0.1)
    in_log = log_mentions(operator.log, offset, f"{ns}/{name}")
    raise AssertionError(
        f"the operator looks wedged: a fresh, valid TranslationCluster {ns}/{name} was not observed within "
        f"{FRESH_SECONDS:.0f}s (this operator's log names it: {in_log}); status: {(obj or {}).get('status')}\n"
        f"last lines of the operator's log:\n{operator.log.read_text()[-3000:]}"
    )


def fuzz_settings() -> Callable[[Any], Any]:
    common = settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the findings are collected, not raised
        suppress_health_check=list(HealthCheck),
    )

    def apply(fn: Any) -> Any:
        fn = common(fn)
        return seed(int(FUZZ_SEED))(fn) if FUZZ_SEED else fn

    return apply


def report(tally: Tally, problems: list[str]) -> None:
    print(f"outcomes: {dict(sorted(tally.outcomes.items()))}")
    everything = tally.findings + problems
    assert not everything, f"{len(everything)} findings:\n\n" + "\n\n".join(everything)


# ---- tests --------------------------------------------------------------------------------------------------


def test_fuzzed_translationclusters_are_rejected_with_a_message_or_observed(
    operator: OperatorProcess, api: Api, fuzz_ns: str, s3_server: S3Server
) -> None:
    offset = operator.log.stat().st_size
    tally = Tally()

    @fuzz_settings()
    @given(case=cases("TranslationCluster"))
    def fuzz(case: Case) -> None:
        tally.outcomes[f"shape {case.shape}"] += 1
        run_case(api, fuzz_ns, case, tally)

    fuzz()
    assert_not_wedged(operator, api, fuzz_ns, s3_server, offset)
    report(tally, log_problems(operator.log, offset, fuzz_ns))


def test_fuzzed_translationjobs_are_rejected_with_a_message_or_observed(
    operator: OperatorProcess, api: Api, fuzz_ns: str, s3_server: S3Server
) -> None:
    offset = operator.log.stat().st_size
    fresh_cluster(operator.kube, fuzz_ns, s3_server, "tc")  # the cluster most generated jobs name
    tally = Tally()

    @fuzz_settings()
    @given(case=cases("TranslationJob"))
    def fuzz(case: Case) -> None:
        tally.outcomes[f"shape {case.shape}"] += 1
        run_case(api, fuzz_ns, case, tally)

    fuzz()
    assert_not_wedged(operator, api, fuzz_ns, s3_server, offset)
    report(tally, log_problems(operator.log, offset, fuzz_ns))


class Tarpit:
    """A TCP server on loopback that accepts connections and never answers, like a Redis behind a dropping
    firewall or a hung server."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.server.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.server.close()
        for conn in self.conns:
            conn.close()


def test_clusters_whose_redis_never_answers_do_not_wedge_the_operator(
    operator: OperatorProcess, api: Api, fuzz_ns: str, s3_server: S3Server
) -> None:
    """Clusters whose Redis accepts connections and never answers (a hung or overloaded server, a firewall that
    drops packets; one shared Redis in that state takes all its clusters with it) are still observed, and the
    operator still serves every other cluster. HUNG_CLUSTERS is more than the cluster controller has workers."""
    offset = operator.log.stat().st_size
    tarpit = Tarpit()
    try:
        names = [f"hung-{i}" for i in range(HUNG_CLUSTERS)]
        for name in names:
            body = {
                "apiVersion": API_VERSION,
                "kind": "TranslationCluster",
                "metadata": {"name": name},
                "spec": {
                    "queue": {"url": f"redis://127.0.0.1:{tarpit.port}/0"},
                    "storage": {"bucket": ARTIFACTS_BUCKET, "credentialsSecretRef": {"name": WIRED_SECRET}},
                    "pricing": {"onDemandGpuHour": "1.00"},
                },
            }
            code, answer = api.create(fuzz_ns, "TranslationCluster", body)
            assert code < 300, answer
        created = time.monotonic()
        time.sleep(2)
        assert_not_wedged(operator, api, fuzz_ns, s3_server, offset)
        deadline = created + HUNG_OBSERVE_SECONDS
        late = names
        while late and time.monotonic() < deadline:
            late = [n for n in late if not observed_at(api.get(fuzz_ns, "TranslationCluster", n), 1)]
            time.sleep(0.5)
        assert not late, (
            f"{len(late)} of {len(names)} clusters whose Redis never answers were not observed within "
            f"{HUNG_OBSERVE_SECONDS:.0f}s: {late}"
        )

        def degraded_reason(name: str) -> str | None:
            for c in ((api.get(fuzz_ns, "TranslationCluster", name) or {}).get("status") or {}).get("conditions") or []:
                if c.get("type") == "Degraded" and c.get("status") == "True":
                    return str(c.get("reason"))
            return None

        # and each says why, in a condition and an Event
        silent = names
        while silent and time.monotonic() < deadline:
            silent = [n for n in silent if degraded_reason(n) != "QueueUnavailable"]
            time.sleep(0.5)
        assert not silent, (
            f"{len(silent)} of {len(names)} clusters whose Redis never answers do not say so (Degraded=True, "
            f"QueueUnavailable) within {HUNG_OBSERVE_SECONDS:.0f}s: {silent}"
        )
        selector = f"involvedObject.name={names[0]},reason=QueueUnavailable"
        events = operator.kube.kubectl("-n", fuzz_ns, "get", "events", "--field-selector", selector, "-o", "json")
        assert json.loads(events.stdout)["items"], f"no QueueUnavailable Event for {names[0]}"
    finally:
        tarpit.close()
