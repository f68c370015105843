"""Types shared by the TranslationCluster and TranslationJob schemas, and the rules that go with them.

This module sits at the API edge: the pydantic models here and in ``cluster.py`` and ``job.py`` are the single
source of the CRD schemas (``portalis.api.crdgen`` renders them), of the descriptions ``kubectl explain`` shows,
and of the CEL validation rules the kube-apiserver enforces. Each CEL rule on a scalar type is mirrored by a
Python check with the same message, so the operator and the tests see the same verdict as the apiserver.

It also holds the small, pure helpers for the value formats the API uses: money as decimal strings,
Kubernetes quantities, and counts-or-percentages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetJsonSchemaHandler, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from portalis import GROUP, VERSION

API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "portalis"

X_VALIDATIONS = "x-kubernetes-validations"
X_INT_OR_STRING = "x-kubernetes-int-or-string"
X_PRESERVE_UNKNOWN_FIELDS = "x-kubernetes-preserve-unknown-fields"
X_LIST_TYPE = "x-kubernetes-list-type"
X_LIST_MAP_KEYS = "x-kubernetes-list-map-keys"


# --- CEL rules ---------------------------------------------------------------------------------------------


def cel(rule: str, message: str, *, field_path: str | None = None, reason: str | None = None) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry; ``field_path`` points the error at a child field."""
    entry = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    if reason is not None:
        entry["reason"] = reason
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """The ``json_schema_extra`` that attaches CEL rules to a model or field."""
    return {X_VALIDATIONS: list(rules)}


def immutable(message: str) -> dict[str, Any]:
    """A transition rule that forbids changing a field once the object exists."""
    return validations(cel("self == oldSelf", message))


@dataclass(frozen=True)
class Cel:
    """``Annotated`` marker adding a CEL rule to the JSON schema of a scalar type."""

    rule: str
    message: str

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = dict(handler(core_schema))
        schema[X_VALIDATIONS] = [*schema.get(X_VALIDATIONS, []), {"rule": self.rule, "message": self.message}]
        return schema


def _checker(ok: Callable[[Any], bool], message: str) -> AfterValidator:
    def check(value: Any) -> Any:
        if not ok(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


# --- model bases -------------------------------------------------------------------------------------------


class SpecModel(BaseModel):
    """Base of spec models: camelCase on the wire, unknown fields rejected (the apiserver prunes them too)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class StatusModel(BaseModel):
    """Base of status models: camelCase on the wire, unknown fields ignored so older operators keep working."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="ignore",
    )


def defaulted(model: type[BaseModel], description: str) -> Any:
    """A nested object that always exists: ``default: {}`` in the CRD lets the apiserver fill in its defaults."""
    return Field(default_factory=model, description=description, json_schema_extra={"default": {}})


# --- names -------------------------------------------------------------------------------------------------

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"

DnsLabel = Annotated[str, Field(max_length=63, pattern=DNS_LABEL_PATTERN)]
DnsSubdomain = Annotated[str, Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]


# --- money -------------------------------------------------------------------------------------------------

MONEY_REGEX = "^[0-9]+([.][0-9]{1,2})?$"
MONEY_RULE = f"self.matches('{MONEY_REGEX}')"
MONEY_MESSAGE = 'must be a non-negative decimal amount such as "500.00"'
MONEY_MAX_LENGTH = 20
_MONEY = re.compile(MONEY_REGEX)
_CENT = Decimal("0.01")


def is_money(value: str) -> bool:
    """Whether ``value`` is a money string as the API accepts it: digits with at most two decimals."""
    return _MONEY.fullmatch(value) is not None


def parse_money(value: str) -> Decimal:
    """The amount of a money string such as ``"500.00"``; raises ``ValueError`` for anything else."""
    if not is_money(value):
        raise ValueError(f"{value!r} {MONEY_MESSAGE}")
    return Decimal(value)


def format_money(amount: Decimal | int) -> str:
    """An amount as a money string with two decimals, rounded half up: ``Decimal("1.005")`` -> ``"1.01"``."""
    return str(Decimal(amount).quantize(_CENT, rounding=ROUND_HALF_UP))


Money = Annotated[
    str,
    Field(max_length=MONEY_MAX_LENGTH),
    _checker(is_money, MONEY_MESSAGE),
    Cel(MONEY_RULE, MONEY_MESSAGE),
]
"""A non-negative amount of money as a decimal string, in whatever currency the prices are given in."""


def money_order_rule(lower: str, upper: str) -> dict[str, str]:
    """CEL: money field ``lower`` is at most ``upper`` when both are set and well formed (it never errors)."""
    rule = (
        f"!has(self.{lower}) || !has(self.{upper})"
        f" || !self.{lower}.matches('{MONEY_REGEX}') || !self.{upper}.matches('{MONEY_REGEX}')"
        f" || quantity(self.{lower}).compareTo(quantity(self.{upper})) <= 0"
    )
    return cel(rule, f"{lower} must be less than or equal to {upper}", field_path=f".{lower}")


def check_money_order(obj: BaseModel, lower: str, upper: str) -> None:
    """The Python side of :func:`money_order_rule` (fields named by their JSON names)."""
    low = getattr(obj, _snake(lower))
    high = getattr(obj, _snake(upper))
    if low is None or high is None or not is_money(low) or not is_money(high):
        return
    if Decimal(low) > Decimal(high):
        raise ValueError(f"{lower} must be less than or equal to {upper}")


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


# --- quantities --------------------------------------------------------------------------------------------

_QUANTITY = re.compile(
    r"[+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(?P<suffix>([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
QUANTITY_RULE = "type(self) == int ? self >= 0 : (isQuantity(self) && !self.startsWith('-'))"
QUANTITY_MESSAGE = 'must be a non-negative Kubernetes quantity such as 2, "500m" or "8Gi"'


def is_quantity(value: int | str) -> bool:
    """Whether ``value`` is a non-negative Kubernetes quantity (``2``, ``"500m"``, ``"8Gi"``, ``"1e3"``)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return _QUANTITY.fullmatch(value) is not None and not value.startswith("-")


def parse_quantity(value: int | str) -> Decimal:
    """The numeric value of a Kubernetes quantity: ``"500m"`` -> 0.5, ``"1Gi"`` -> 1073741824."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    if isinstance(value, int):
        return Decimal(value)
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    suffix = match.group("suffix") or ""
    number = value[: len(value) - len(suffix)]
    try:
        base = Decimal(number)
        if suffix in _BINARY:
            return base * _BINARY[suffix]
        if suffix in _DECIMAL:
            return base * _DECIMAL[suffix]
        return Decimal(value)  # an exponent such as "1e3"
    except InvalidOperation as exc:  # pragma: no cover - the pattern rules this out
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from exc


Quantity = Annotated[
    int | str,
    _checker(is_quantity, QUANTITY_MESSAGE),
    WithJsonSchema(
        {
            X_INT_OR_STRING: True,
            "maxLength": 64,
            X_VALIDATIONS: [{"rule": QUANTITY_RULE, "message": QUANTITY_MESSAGE}],
        }
    ),
]
"""A Kubernetes resource quantity: an integer or a string such as ``"500m"`` or ``"8Gi"``."""


# --- counts or percentages ---------------------------------------------------------------------------------

PERCENT_REGEX = "^(100|[1-9]?[0-9])%$"
COUNT_OR_PERCENT_RULE = f"type(self) == int ? self >= 0 : self.matches('{PERCENT_REGEX}')"
COUNT_OR_PERCENT_MESSAGE = 'must be a number of nodes such as 1, or a percentage of the GPU nodes such as "10%"'
_PERCENT = re.compile(PERCENT_REGEX)


def is_count_or_percent(value: int | str) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return _PERCENT.fullmatch(value) is not None


def resolve_count_or_percent(value: int | str, total: int, *, round_up: bool = False) -> int:
    """``value`` as a count of ``total``: ``"10%"`` of 25 is 2 (3 with ``round_up``); plain counts pass through."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or _PERCENT.fullmatch(value) is None:
        raise ValueError(f"{value!r} {COUNT_OR_PERCENT_MESSAGE}")
    scaled = int(value[:-1]) * total
    return -(-scaled // 100) if round_up else scaled // 100


CountOrPercent = Annotated[
    int | str,
    _checker(is_count_or_percent, COUNT_OR_PERCENT_MESSAGE),
    WithJsonSchema(
        {
            X_INT_OR_STRING: True,
            "maxLength": 4,
            X_VALIDATIONS: [{"rule": COUNT_OR_PERCENT_RULE, "message": COUNT_OR_PERCENT_MESSAGE}],
        }
    ),
]


# --- URLs and buckets --------------------------------------------------------------------------------------

# The host (and port) part: printable ASCII other than "/", "?" and "#" (the ranges skip them), since boto3 and
# redis-py refuse other characters only when the operator connects.
HTTP_URL_REGEX = '^https?://[!-"$-.0->@-~]+([/?#].*)?$'
HTTP_URL_MESSAGE = (
    'must be an http:// or https:// URL such as "http://minio.portalis:9000", its host in ASCII '
    "(an international name in its xn-- form)"
)
_HTTP_URL = re.compile(HTTP_URL_REGEX)

HttpUrl = Annotated[
    str,
    Field(max_length=2048),
    _checker(lambda v: _HTTP_URL.fullmatch(v) is not None, HTTP_URL_MESSAGE),
    Cel(f"self.matches('{HTTP_URL_REGEX}')", HTTP_URL_MESSAGE),
]

REDIS_URL_MESSAGE = 'must be a Redis URL starting with redis:// or rediss://, such as "redis://redis.portalis:6379/0"'

RedisUrl = Annotated[
    str,
    Field(max_length=2048),
    _checker(lambda v: v.startswith(("redis://", "rediss://")), REDIS_URL_MESSAGE),
    Cel("self.startsWith('redis://') || self.startsWith('rediss://')", REDIS_URL_MESSAGE),
]

BUCKET_REGEX = "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
BUCKET_MESSAGE = (
    'must be a valid S3 bucket name: 3 to 63 lowercase letters, digits, "." and "-", '
    'starting and ending with a letter or digit, without ".."'
)
_BUCKET = re.compile(BUCKET_REGEX)

BucketName = Annotated[
    str,
    Field(max_length=63),
    _checker(lambda v: _BUCKET.fullmatch(v) is not None and ".." not in v, BUCKET_MESSAGE),
    Cel(f"self.matches('{BUCKET_REGEX}') && !self.contains('..')", BUCKET_MESSAGE),
]

KEY_PREFIX_MESSAGE = 'must be a key prefix inside the bucket, without a leading "/"'

KeyPrefix = Annotated[
    str,
    Field(max_length=1024),
    _checker(lambda v: not v.startswith("/"), KEY_PREFIX_MESSAGE),
    Cel("!self.startsWith('/')", KEY_PREFIX_MESSAGE),
]


# --- labels ------------------------------------------------------------------------------------------------
# Node selectors, toleration keys and node-affinity values end up in the pods the backend operators create,
# where the apiserver checks them against Kubernetes' label syntax; checking them here rejects a bad value
# when the TranslationCluster is written, with a message, rather than in KubeRay or the dask operator later.

# A label value: empty, or at most 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit.
LABEL_VALUE_REGEX = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# A label key (a qualified name): an optional DNS subdomain prefix and "/", then a name of at most 63 characters
# that is a non-empty label value. "[.]" rather than "\\." keeps the pattern free of escapes in CEL strings.
LABEL_KEY_REGEX = (
    "^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"  # the prefix and "/"
    "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"  # the name
)
LABEL_PREFIX_MAX_LENGTH = 253
LABEL_KEY_MAX_LENGTH = LABEL_PREFIX_MAX_LENGTH + 1 + 63
LABEL_KEY_HELP = (
    'a name of at most 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit, '
    'optionally after a DNS subdomain prefix of at most 253 characters and "/", such as "disktype" or '
    '"kubernetes.io/hostname"'
)
NODE_SELECTOR_MESSAGE = f"every node selector key must be a Kubernetes label key: {LABEL_KEY_HELP}"
_LABEL_KEY = re.compile(LABEL_KEY_REGEX)


def is_label_key(value: str) -> bool:
    """Whether ``value`` is a Kubernetes label key (a qualified name such as ``kubernetes.io/hostname``)."""
    return _LABEL_KEY.fullmatch(value) is not None and value.find("/") <= LABEL_PREFIX_MAX_LENGTH


def label_key_rule(subject: str) -> str:
    """CEL: ``subject`` is a label key; indexOf is -1 without a prefix, so one comparison bounds the prefix."""
    return f"{subject}.matches('{LABEL_KEY_REGEX}') && {subject}.indexOf('/') <= {LABEL_PREFIX_MAX_LENGTH}"


LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_REGEX)]
"""A Kubernetes label value: empty, or at most 63 letters, digits, "-", "_" and ".", starting and ending with a
letter or digit; the CRD answers a bad one with the pattern it must match."""


# --- small string types ------------------------------------------------------------------------------------

ShortString = Annotated[str, Field(max_length=253)]
OptionValue = Annotated[str, Field(max_length=4096)]
Timestamp = Annotated[datetime, WithJsonSchema({"type": "string", "format": "date-time", "maxLength": 64})]
"""An RFC 3339 time, such as ``2025-01-31T12:00:00Z``."""


# --- shared objects ----------------------------------------------------------------------------------------


class SecretKeyRef(SpecModel):
    """A key in a Secret in the same namespace as the object that refers to it."""

    name: DnsSubdomain = Field(description="Name of the Secret, in the same namespace as this object.")
    key: Annotated[str, Field(max_length=253, pattern=SECRET_KEY_PATTERN)] = Field(
        description="Key inside the Secret whose value is used."
    )


class SecretRef(SpecModel):
    """A Secret in the same namespace as the object that refers to it."""

    name: DnsSubdomain = Field(description="Name of the Secret, in the same namespace as this object.")


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


TOLERATION_KEY_MESSAGE = f"must be empty or a Kubernetes label key: {LABEL_KEY_HELP}"
TOLERATION_NO_KEY_MESSAGE = "a toleration without a key tolerates every taint and needs operator Exists"
TOLERATION_EXISTS_VALUE_MESSAGE = "a toleration with operator Exists matches every value of its key; leave value empty"
TOLERATION_SECONDS_MESSAGE = "tolerationSeconds needs effect NoExecute: only NoExecute taints evict running pods"

TolerationKey = Annotated[
    str,
    Field(max_length=LABEL_KEY_MAX_LENGTH),
    _checker(lambda v: v == "" or is_label_key(v), TOLERATION_KEY_MESSAGE),
    Cel(f"self == '' || ({label_key_rule('self')})", TOLERATION_KEY_MESSAGE),
]


class Toleration(SpecModel):
    """A toleration copied onto the pods, as in a Pod's spec.tolerations."""

    # The rules Kubernetes checks on a pod's tolerations, so a bad one is refused here rather than by the
    # apiserver when KubeRay or the dask operator creates the pods.
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
                TOLERATION_NO_KEY_MESSAGE,
                field_path=".operator",
            ),
            cel(
                "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
                TOLERATION_EXISTS_VALUE_MESSAGE,
                field_path=".value",
            ),
            cel(
                "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
                TOLERATION_SECONDS_MESSAGE,
                field_path=".tolerationSeconds",
            ),
        )
    )

    key: TolerationKey | None = Field(
        default=None, description="Taint key the toleration applies to; empty with operator Exists matches all taints."
    )
    operator: TolerationOperator = Field(
        default=TolerationOperator.EQUAL,
        description="Exists matches any value of the key; Equal matches only the given value.",
    )
    value: LabelValue | None = Field(default=None, description="Taint value to match when the operator is Equal.")
    effect: TaintEffect | None = Field(
        default=None, description="Taint effect to match: NoSchedule, PreferNoSchedule or NoExecute; empty matches all."
    )
    toleration_seconds: int | None = Field(
        default=None,
        ge=0,
        description="For NoExecute taints: how long the pod stays bound after the taint appears; unset means forever.",
    )

    @model_validator(mode="after")
    def _check(self) -> Toleration:
        if not self.key and self.operator != TolerationOperator.EXISTS:
            raise ValueError(TOLERATION_NO_KEY_MESSAGE)
        if self.operator == TolerationOperator.EXISTS and self.value:
            raise ValueError(TOLERATION_EXISTS_VALUE_MESSAGE)
        if self.toleration_seconds is not None and self.effect != TaintEffect.NO_EXECUTE:
            raise ValueError(TOLERATION_SECONDS_MESSAGE)
        return self


# A container's resource names: the standard ones without a prefix, anything else (extended resources) with a
# domain prefix, as the apiserver checks them on the pods the backend creates.
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
RESOURCE_NAME_MESSAGE = (
    "every resource name must be cpu, memory, ephemeral-storage, hugepages-<size>, or an extended resource with a "
    f"domain prefix such as nvidia.com/gpu ({LABEL_KEY_HELP})"
)


def is_resource_name(value: str) -> bool:
    """Whether a container may request ``value`` (``cpu``, ``hugepages-2Mi``, ``nvidia.com/gpu``, ...)."""
    return is_label_key(value) and ("/" in value or value in STANDARD_RESOURCES or value.startswith("hugepages-"))


_STANDARD_CEL = "[" + ", ".join(f"'{r}'" for r in STANDARD_RESOURCES) + "]"
ResourceMap = Annotated[
    dict[str, Quantity],
    Field(max_length=16),
    _checker(lambda m: all(is_resource_name(k) for k in m), RESOURCE_NAME_MESSAGE),
    Cel(
        f"self.all(k, {label_key_rule('k')} && "
        f"(k.contains('/') || k in {_STANDARD_CEL} || k.startsWith('hugepages-')))",
        RESOURCE_NAME_MESSAGE,
    ),
]


class ResourceRequirements(SpecModel):
    """CPU, memory and other resources for the containers, as in a container's resources."""

    requests: ResourceMap | None = Field(
        default=None,
        description='Resources the scheduler reserves, such as {"cpu": "2", "memory": "8Gi"}.',
    )
    limits: ResourceMap | None = Field(
        default=None,
        description='Most the container may use, such as {"memory": "16Gi"}.',
    )


NodeSelector = Annotated[
    dict[str, LabelValue],
    Field(max_length=32),
    _checker(lambda m: all(is_label_key(k) for k in m), NODE_SELECTOR_MESSAGE),
    Cel(f"self.all(k, {label_key_rule('k')})", NODE_SELECTOR_MESSAGE),
]
"""Node labels a pod must be scheduled onto: label keys to label values, as in a Pod's spec.nodeSelector."""
Tolerations = Annotated[list[Toleration], Field(max_length=32)]


# --- status ------------------------------------------------------------------------------------------------


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """One aspect of the object's state, following the Kubernetes condition conventions."""

    type: Annotated[str, Field(max_length=316)] = Field(description="Kind of condition, such as Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: Annotated[str, Field(max_length=1024)] | None = Field(
        default=None, description="One CamelCase word saying why the condition has its status, for machines."
    )
    message: Annotated[str, Field(max_length=32768)] | None = Field(
        default=None, description="What happened and what to do about it, for people."
    )
    last_transition_time: Timestamp | None = Field(
        default=None, description="When the status last changed from one value to another."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation the condition was computed from."
    )


Conditions = Annotated[
    list[Condition],
    Field(max_length=32, json_schema_extra={X_LIST_TYPE: "map", X_LIST_MAP_KEYS: ["type"]}),
]


class ObjectMeta(BaseModel):
    """The parts of Kubernetes object metadata the operator reads; everything else is kept as it is."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True, extra="allow")

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


@dataclass(frozen=True)
class PrinterColumn:
    """A column of ``kubectl get``; ``priority`` 1 shows only with ``-o wide``."""

    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0

    def to_crd(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.priority:
            column["priority"] = self.priority
        column["description"] = self.description
        return column


AGE_COLUMN = PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since the object was created.")


@dataclass(frozen=True)
class ResourceInfo:
    """How a kind is named and listed in the API."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    printer_columns: tuple[PrinterColumn, ...]
    categories: tuple[str, ...] = field(default=(CATEGORY,))
    # CEL rules on the whole object (the only place a rule may read metadata.name)
    rules: tuple[dict[str, str], ...] = ()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


class ResourceModel(SpecModel):
    """Base of the custom resource models: apiVersion, kind, metadata, spec and status, plus naming."""

    model_config = ConfigDict(extra="ignore")

    resource: ClassVar[ResourceInfo]
