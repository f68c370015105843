"""The CRD generator: structural schemas the apiserver accepts, cost bounds for CEL, descriptions everywhere,
defaults equal to the models', printer columns that resolve, and committed files equal to the output."""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined, to_jsonable_python

from portalis.api import crdgen
from portalis.api.v1alpha1 import RESOURCES, TranslationCluster, TranslationJob

ROOT = Path(__file__).resolve().parents[2]
KINDS = ["TranslationCluster", "TranslationJob"]
MODELS: dict[str, type[TranslationCluster] | type[TranslationJob]] = {
    "TranslationCluster": TranslationCluster,
    "TranslationJob": TranslationJob,
}
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))
CASES: list[dict[str, Any]] = yaml.safe_load((ROOT / "tests" / "integration" / "admission_cases.yaml").read_text())
X_IOS = "x-kubernetes-int-or-string"
X_PUF = "x-kubernetes-preserve-unknown-fields"
X_RULES = "x-kubernetes-validations"


def root_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = crdgen.build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield from crdgen.walk_nodes(schema, path)


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """What the apiserver's structural defaulting does: fill absent fields with defaults, then recurse."""
    if isinstance(value, dict):
        out = dict(value)
        for name, prop in schema.get("properties", {}).items():
            if name not in out and "default" in prop:
                out[name] = copy.deepcopy(prop["default"])
            if name in out:
                out[name] = apply_defaults(prop, out[name])
        values = schema.get("additionalProperties")
        if isinstance(values, dict) and "properties" not in schema:
            out = {k: apply_defaults(values, v) for k, v in out.items()}
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], v) for v in value]
    return value


# --- CRD shape ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_crd_names_and_version(kind: str) -> None:
    crd = crdgen.build_crd(kind)
    info = MODELS[kind].resource
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{info.plural}.portalis.dev"
    spec = crd["spec"]
    assert spec["group"] == "portalis.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": info.plural,
        "singular": kind.lower(),
        "shortNames": [{"TranslationCluster": "tc", "TranslationJob": "tj"}[kind]],
        "categories": ["portalis"],
    }
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    root = version["schema"]["openAPIV3Schema"]
    # a kind with rules on the whole object (the name) requires metadata, which every stored object has
    assert root["required"] == (["metadata", "spec"] if root.get("x-kubernetes-validations") else ["spec"])


def test_crd_metadata_names() -> None:
    assert crdgen.build_crd("TranslationCluster")["metadata"]["name"] == "translationclusters.portalis.dev"
    assert crdgen.build_crd("TranslationJob")["metadata"]["name"] == "translationjobs.portalis.dev"


def test_build_crd_accepts_names_and_is_pure() -> None:
    a = crdgen.build_crd("tc")
    b = crdgen.build_crd("translationclusters")
    assert a == b == crdgen.build_crd("TranslationCluster")
    a["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"].clear()
    assert crdgen.build_crd("tc") == b
    with pytest.raises(KeyError):
        crdgen.build_crd("RayCluster")


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural(kind: str) -> None:
    for path, node in nodes(root_schema(kind)):
        for key in ("$ref", "$defs", "title", "oneOf", "allOf", "not", "const", "nullable"):
            assert key not in node, f"{path}: {key}"
        if node.get(X_IOS):
            assert "type" not in node, f"{path}: int-or-string has no type"
            assert node.get("anyOf", []) in ([], [{"type": "integer"}, {"type": "string"}]), path
            continue
        assert "anyOf" not in node, f"{path}: anyOf (a nullable union left over?)"
        assert node.get("type") in {"object", "array", "string", "integer", "boolean"}, f"{path}: type"
        if "properties" in node or "additionalProperties" in node or node.get(X_PUF):
            assert node["type"] == "object", path
        if "properties" in node:
            assert "additionalProperties" not in node, f"{path}: properties and additionalProperties"
        if node["type"] == "array":
            assert isinstance(node.get("items"), dict), f"{path}: items"
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert bound not in node, f"{path}: {bound}"


@pytest.mark.parametrize("kind", KINDS)
def test_metadata_is_left_to_the_apiserver(kind: str) -> None:
    props = root_schema(kind)["properties"]
    assert props["metadata"] == {"type": "object"}
    assert props["apiVersion"]["type"] == props["kind"]["type"] == "string"


@pytest.mark.parametrize("kind", KINDS)
def test_every_value_has_a_cost_bound(kind: str) -> None:
    """CEL rules are only admitted when the apiserver can bound their cost: strings, lists and maps need limits."""
    spec_and_status = {k: v for k, v in root_schema(kind)["properties"].items() if k in ("spec", "status")}
    for path, node in nodes({"properties": spec_and_status}):
        if node.get(X_IOS) or node.get("type") == "string":
            assert "maxLength" in node or "enum" in node, f"{path}: string without maxLength"
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path}: list without maxItems"
        if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
            assert "maxProperties" in node, f"{path}: map without maxProperties"


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_is_described(kind: str) -> None:
    root = root_schema(kind)
    for part in ("spec", "status"):
        assert root["properties"][part].get("description", "").strip(), part
        for field in crdgen.walk_fields(root["properties"][part], part):
            assert field.schema.get("description", "").strip(), f"{field.path} has no description"


@pytest.mark.parametrize("kind", KINDS)
def test_rules_are_well_formed(kind: str) -> None:
    count = 0
    for path, node in nodes(root_schema(kind)):
        for rule in node.get(X_RULES, []):
            count += 1
            assert set(rule) <= {"rule", "message", "fieldPath", "reason"}, path
            assert rule["rule"].strip() and rule["message"].strip(), path
            assert not rule["message"].endswith("."), f"{path}: the apiserver appends its own punctuation"
            if "fieldPath" in rule:
                field = rule["fieldPath"].lstrip(".")
                assert field in node["properties"], f"{path}: fieldPath {rule['fieldPath']} is not a field"
            assert rule.get("reason", "FieldValueInvalid") in {
                "FieldValueInvalid",
                "FieldValueForbidden",
                "FieldValueRequired",
                "FieldValueDuplicate",
            }
            if "oldSelf" in rule["rule"]:
                assert rule["rule"] == "self == oldSelf", f"{path}: transition rules are plain immutability"
    assert count > 5


@pytest.mark.parametrize("kind", KINDS)
def test_rules_guard_the_fields_that_may_be_absent(kind: str) -> None:
    """A rule that reads an optional field without has() fails with "no such key" instead of its message when the
    field is absent, defaulted fields included: the apiserver does not always default before it validates."""
    for path, node in nodes(root_schema(kind)):
        required = set(node.get("required") or [])
        for rule in node.get(X_RULES, []):
            for name in set(re.findall(r"self\.(\w+)", rule["rule"])) & set(node.get("properties") or {}):
                if name not in required:
                    assert f"has(self.{name})" in rule["rule"], f"{path}: {rule['rule']} reads {name} without has()"


def test_transition_rules_guard_the_immutable_fields() -> None:
    def immutable(kind: str) -> set[str]:
        return {
            path.lstrip(".")
            for path, node in nodes(root_schema(kind))
            if any(r["rule"] == "self == oldSelf" for r in node.get(X_RULES, []))
        }

    assert immutable("TranslationCluster") == {"spec.backend"}
    assert immutable("TranslationJob") == {"spec.clusterRef", "spec.source", "spec.output", "spec.targetLanguage"}


def test_money_rules_and_quantity_ordering() -> None:
    budget = root_schema("TranslationCluster")["properties"]["spec"]["properties"]["budget"]
    for window in ("daily", "weekly", "monthly"):
        prop = budget["properties"][window]
        assert prop["type"] == "string" and prop["maxLength"] <= 32
        assert prop[X_RULES][0]["message"] == 'must be a non-negative decimal amount such as "500.00"'
    ordering = [r for r in budget[X_RULES] if "compareTo" in r["rule"]]
    assert len(ordering) == 3
    for rule in ordering:
        assert rule["rule"].startswith("!has(self."), "guarded so that it never errors on absent fields"
        assert rule["rule"].count(".matches(") == 2, "guarded so that it never errors on malformed amounts"


# --- defaults ----------------------------------------------------------------------------------------------


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _child(node: dict[str, Any]) -> dict[str, Any]:
    if node.get("type") == "array":
        return _child(node["items"])
    if "properties" not in node and isinstance(node.get("additionalProperties"), dict):
        return _child(node["additionalProperties"])
    return node


def _check_defaults(model: type[BaseModel], node: dict[str, Any], path: str, seen: list[str]) -> None:
    for name, field in model.model_fields.items():
        alias = field.alias or name
        prop = node["properties"][alias]
        where = f"{path}.{alias}"
        if field.default_factory is None and field.default is not PydanticUndefined and field.default is not None:
            assert prop.get("default") == to_jsonable_python(field.default), f"{where}: default differs"
            seen.append(where)
        elif "default" in prop:
            assert field.default_factory is not None, f"{where}: CRD default without a model default"
            default = field.get_default(call_default_factory=True, validated_data={})
            expected = to_jsonable_python(default, by_alias=True, exclude_none=True)
            assert apply_defaults(prop, prop["default"]) == expected, f"{where}: defaulted {{}} differs"
            seen.append(where)
        for sub in _models_in(field.annotation):
            _check_defaults(sub, _child(prop), where, seen)


@pytest.mark.parametrize("kind", KINDS)
def test_crd_defaults_equal_model_defaults(kind: str) -> None:
    root = root_schema(kind)
    model = MODELS[kind]
    seen: list[str] = []
    for part in ("spec", "status"):
        sub = _models_in(model.model_fields[part].annotation)[0]
        _check_defaults(sub, root["properties"][part], part, seen)
    assert len(seen) > 5


def test_nested_objects_default_to_empty_so_their_defaults_apply() -> None:
    spec = root_schema("TranslationCluster")["properties"]["spec"]["properties"]
    for name in ("engine", "workers", "autoscaling", "health"):
        assert spec[name]["default"] == {}, name


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_apiserver_defaulting_agrees_with_the_models(path: Path) -> None:
    manifest = yaml.safe_load(path.read_text())
    spec_schema = root_schema(manifest["kind"])["properties"]["spec"]
    model = MODELS[manifest["kind"]].model_validate(manifest)
    assert apply_defaults(spec_schema, manifest["spec"]) == model.spec.model_dump(mode="json", exclude_none=True)


# --- validation with the schema alone ----------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_validate_against_the_crd_schema(path: Path) -> None:
    manifest = yaml.safe_load(path.read_text())
    jsonschema.Draft7Validator(root_schema(manifest["kind"])).validate(manifest)


SCHEMA_CASES = [
    c
    for c in CASES
    if "update" not in c
    and c["expect"].startswith(("Unsupported value", "Required value", "should match", "should be"))
]


@pytest.mark.parametrize("case", SCHEMA_CASES, ids=[c["name"] for c in SCHEMA_CASES])
def test_schema_cases_fail_the_openapi_schema(case: dict[str, Any]) -> None:
    """Enum, range, required and pattern cases fail on the OpenAPI schema alone (CEL rules need the apiserver)."""
    schema = root_schema(case["manifest"]["kind"])
    manifest = apply_defaults(schema, case["manifest"])
    assert list(jsonschema.Draft7Validator(schema).iter_errors(manifest)), case["name"]


# --- printer columns ---------------------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    node = schema
    for part in json_path.lstrip(".").split("."):
        if node is None:
            return None
        name, _, selector = part.partition("[")
        node = node.get("properties", {}).get(name)
        if node is not None and selector:
            node = node.get("items")
    return node


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns_resolve(kind: str) -> None:
    version = crdgen.build_crd(kind)["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    columns = version["additionalPrinterColumns"]
    for column in columns:
        assert column["description"]
        if column["jsonPath"] == ".metadata.creationTimestamp":
            assert column["type"] == "date"
            continue
        # ".status.conditions[?(@.type=="Ready")].status" -> conditions, items, status
        path = column["jsonPath"].replace('[?(@.type=="Ready")]', "[]")
        node = _resolve(schema, path)
        assert node is not None, f"{column['name']}: {column['jsonPath']} is not in the schema"
        assert node["type"] == column["type"], f"{column['name']}: {node['type']} vs {column['type']}"
    if kind == "TranslationCluster":
        conditions = schema["properties"]["status"]["properties"]["conditions"]
        assert "type" in conditions["items"]["properties"]


def test_printer_column_headers() -> None:
    def names(kind: str, priority: int) -> list[str]:
        columns = crdgen.build_crd(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
        return [c["name"] for c in columns if c.get("priority", 0) == priority]

    assert names("TranslationCluster", 0) == [
        "Backend",
        "Desired",
        "Ready",
        "GPUs",
        "Queue",
        "Spent Today",
        "Status",
        "Age",
    ]
    assert "RayCluster" in names("TranslationCluster", 1)
    assert names("TranslationJob", 0) == [
        "Cluster",
        "Priority",
        "Progress",
        "Done",
        "Total",
        "Compiles",
        "Cost",
        "ETA",
        "Status",
        "Age",
    ]


# --- files -------------------------------------------------------------------------------------------------


def test_rendered_crd_starts_with_the_header_and_round_trips() -> None:
    for model in RESOURCES:
        text = crdgen.render_crd(model.resource.kind)
        assert text.startswith("# Generated by `make crds` from operator/portalis/api/v1alpha1; do not edit.\n")
        assert "&id" not in text and "*id" not in text, "no YAML anchors"
        assert yaml.safe_load(text) == crdgen.build_crd(model.resource.kind)


@pytest.mark.parametrize("folder", ["crds", "charts/portalis/crds"])
def test_committed_crds_are_up_to_date(folder: str) -> None:
    rendered = crdgen.render_crds()
    assert sorted(rendered) == ["portalis.dev_translationclusters.yaml", "portalis.dev_translationjobs.yaml"]
    for name, text in rendered.items():
        path = ROOT / folder / name
        assert path.exists(), f"{path} missing; run `make crds`"
        assert path.read_text() == text, f"{path} is out of date; run `make crds`"


def test_committed_api_reference_is_up_to_date() -> None:
    path = ROOT / "docs" / "api-reference.md"
    assert path.read_text() == crdgen.render_api_docs(), f"{path} is out of date; run `make crds`"


def test_api_reference_covers_every_field_and_rule() -> None:
    docs = crdgen.render_api_docs()
    for kind in KINDS:
        root = root_schema(kind)
        for part in ("spec", "status"):
            for field in crdgen.walk_fields(root["properties"][part], part):
                assert f"`{field.path}`" in docs, field.path
        for _, node in nodes(root):
            for rule in node.get(X_RULES, []):
                assert rule["message"] in docs


def test_cli_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "--out",
        str(tmp_path / "crds"),
        "--chart-crds",
        str(tmp_path / "chart"),
        "--api-docs",
        str(tmp_path / "docs" / "api.md"),
    ]
    assert crdgen.main([*args, "--check"]) == 1, "missing files are drift"
    assert not (tmp_path / "crds").exists(), "--check writes nothing"
    assert crdgen.main(args) == 0
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == [
        "chart/portalis.dev_translationclusters.yaml",
        "chart/portalis.dev_translationjobs.yaml",
        "crds/portalis.dev_translationclusters.yaml",
        "crds/portalis.dev_translationjobs.yaml",
        "docs/api.md",
    ]
    assert (tmp_path / "crds" / "portalis.dev_translationjobs.yaml").read_text() == (
        tmp_path / "chart" / "portalis.dev_translationjobs.yaml"
    ).read_text()
    capsys.readouterr()
    assert crdgen.main([*args, "--check"]) == 0

    drifted = tmp_path / "chart" / "portalis.dev_translationjobs.yaml"
    drifted.write_text(drifted.read_text().replace("maxItems: 100", "maxItems: 5"))
    assert crdgen.main([*args, "--check"]) == 1
    out = capsys.readouterr().out
    assert "--- " in out and "+++ " in out
    assert any(line.startswith("-") and line.strip().endswith("maxItems: 5") for line in out.splitlines())
    assert drifted.read_text().count("maxItems: 5") == 1, "--check leaves files alone"
