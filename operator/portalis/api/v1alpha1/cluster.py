"""TranslationCluster: a GPU cluster (a RayCluster or a DaskCluster) that runs translation jobs.

Spec is what a person asks for; status is what the operator observed. The controller validates the spec
with these models, the ``desired`` functions turn it into the backend's objects, and the status models shape
what the controller writes back. The CRD schema, its CEL rules and ``docs/api-reference.md`` are generated
from this module by ``portalis.api.crdgen``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from portalis.api.v1alpha1.common import (
    AGE_COLUMN,
    X_LIST_MAP_KEYS,
    X_LIST_TYPE,
    X_PRESERVE_UNKNOWN_FIELDS,
    BucketName,
    Conditions,
    CountOrPercent,
    DnsLabel,
    HttpUrl,
    LabelValue,
    Money,
    NodeSelector,
    ObjectMeta,
    OptionValue,
    PrinterColumn,
    RedisUrl,
    ResourceInfo,
    ResourceModel,
    ResourceRequirements,
    SecretKeyRef,
    SecretRef,
    ShortString,
    SpecModel,
    StatusModel,
    Timestamp,
    Tolerations,
    cel,
    check_money_order,
    defaulted,
    immutable,
    money_order_rule,
    validations,
)

DEFAULT_WORKER_IMAGE = "ghcr.io/portalis/worker:0.1.0"


class Backend(StrEnum):
    RAY = "Ray"
    DASK = "Dask"


class EngineName(StrEnum):
    PY2MANY = "py2many"
    OPENAI = "openai"


class GpuType(StrEnum):
    """GPU models by their short names; the operator maps each to GPU Feature Discovery product labels."""

    ANY = "Any"
    A100 = "A100"
    H100 = "H100"
    H200 = "H200"
    L4 = "L4"
    L40S = "L40S"
    A10G = "A10G"
    T4 = "T4"


class BudgetAction(StrEnum):
    ALERT = "Alert"
    BLOCK_SCALE_UP = "BlockScaleUp"
    SUSPEND = "Suspend"


class EccAction(StrEnum):
    ALERT = "Alert"
    CORDON = "Cordon"
    CORDON_AND_DRAIN = "CordonAndDrain"


class QuarantinePhase(StrEnum):
    """Where the operator is with a quarantined node."""

    REMOVING_WORKERS = "RemovingWorkers"
    CORDONED = "Cordoned"
    DRAINING = "Draining"
    DRAIN_BLOCKED = "DrainBlocked"
    DRAINED = "Drained"
    DRAIN_TIMED_OUT = "DrainTimedOut"


class ClusterConditionType(StrEnum):
    READY = "Ready"
    DEGRADED = "Degraded"
    BUDGET_WARNING = "BudgetWarning"
    BUDGET_EXCEEDED = "BudgetExceeded"
    SUSPENDED = "Suspended"


# --- spec --------------------------------------------------------------------------------------------------

OPENAI_ENDPOINT_MESSAGE = (
    "the openai engine needs an endpoint: set spec.engine.endpoint to the URL of an OpenAI-compatible server, "
    'such as "http://vllm.models:8000/v1"'
)
OPENAI_MODEL_MESSAGE = "the openai engine needs a model: set spec.engine.model to a model the server serves"


class EngineSpec(SpecModel):
    """The translation engine every worker runs."""

    # Rules on objects defaulted to {} guard every field with has(): the apiserver checks a CRD's defaults
    # against its rules before it fills in the nested defaults.
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.name) || self.name != 'openai' || has(self.endpoint)",
                OPENAI_ENDPOINT_MESSAGE,
                field_path=".endpoint",
                reason="FieldValueRequired",
            ),
            cel(
                "!has(self.name) || self.name != 'openai' || has(self.model)",
                OPENAI_MODEL_MESSAGE,
                field_path=".model",
                reason="FieldValueRequired",
            ),
        )
    )

    name: EngineName = Field(
        default=EngineName.PY2MANY,
        description=(
            "Which engine translates: py2many (rule-based Python to Rust, Go or C++ on CPU, works offline) or "
            "openai (a large language model behind any OpenAI-compatible server such as vLLM, NIM or Triton)."
        ),
    )
    model: ShortString | None = Field(
        default=None, description="Model name sent to the server; required for the openai engine."
    )
    endpoint: HttpUrl | None = Field(
        default=None,
        description=(
            "Base URL of the OpenAI-compatible server, such as http://vllm.models:8000/v1; required for openai."
        ),
    )
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the API key sent to the server, if it needs one."
    )
    options: Annotated[dict[str, OptionValue], Field(max_length=64)] | None = Field(
        default=None,
        description="Engine-specific settings passed through as strings, such as temperature or a prompt template.",
    )
    timeout_seconds: int = Field(
        default=300, ge=1, le=3600, description="How long one item may take before the attempt counts as failed."
    )
    max_batch_size: int = Field(
        default=16, ge=1, le=1024, description="Most items a worker sends to the engine in one batch."
    )
    repair_attempts: int = Field(
        default=2,
        ge=0,
        le=10,
        description=(
            "Rounds in which the openai engine is shown the compiler's diagnostics on its translation and asked "
            "for a corrected one, while the file does not compile; each round's tokens and GPU time count in the "
            "job's cost. 0 turns repair off; py2many, which is deterministic, never repairs."
        ),
    )

    @model_validator(mode="after")
    def _openai_needs_endpoint_and_model(self) -> EngineSpec:
        if self.name == EngineName.OPENAI and self.endpoint is None:
            raise ValueError(OPENAI_ENDPOINT_MESSAGE)
        if self.name == EngineName.OPENAI and self.model is None:
            raise ValueError(OPENAI_MODEL_MESSAGE)
        return self


class HeadSpec(SpecModel):
    """Where and how the head (Ray head or Dask scheduler) pod runs; it needs no GPU."""

    resources: ResourceRequirements | None = Field(
        default=None, description="CPU and memory for the head container; the operator picks modest defaults."
    )
    node_selector: NodeSelector | None = Field(
        default=None, description="Node labels the head pod must be scheduled onto."
    )
    tolerations: Tolerations | None = Field(default=None, description="Taints the head pod tolerates.")


MIN_MAX_WORKERS_MESSAGE = "minWorkers must be less than or equal to maxWorkers"
GPU_IN_RESOURCES_MESSAGE = 'set the number of GPUs per worker with gpusPerWorker, not with resources["nvidia.com/gpu"]'


def _no_gpu_in(resources: ResourceRequirements | None) -> bool:
    if resources is None:
        return True
    return all("nvidia.com/gpu" not in (m or {}) for m in (resources.requests, resources.limits))


class WorkerSpec(SpecModel):
    """The GPU workers: what GPUs they need, how many there may be, and where they may run."""

    # Guarded with has() like EngineSpec's rules: the CRD defaults this object to {}.
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.minWorkers) || !has(self.maxWorkers) || self.minWorkers <= self.maxWorkers",
                MIN_MAX_WORKERS_MESSAGE,
                field_path=".minWorkers",
            ),
            cel(
                "!has(self.resources)"
                " || ((!has(self.resources.requests) || !('nvidia.com/gpu' in self.resources.requests))"
                " && (!has(self.resources.limits) || !('nvidia.com/gpu' in self.resources.limits)))",
                GPU_IN_RESOURCES_MESSAGE,
                field_path=".resources",
            ),
        )
    )

    gpu_type: GpuType = Field(
        default=GpuType.ANY,
        description=(
            "GPU model the workers need (A100, H100, H200, L4, L40S, A10G, T4), matched against the "
            "nvidia.com/gpu.product label that GPU Feature Discovery puts on nodes; Any schedules onto any GPU node."
        ),
    )
    gpu_product: LabelValue | None = Field(
        default=None,
        description=(
            "Exact nvidia.com/gpu.product label value to require, such as NVIDIA-H100-80GB-HBM3; "
            "overrides the match that gpuType implies."
        ),
    )
    gpus_per_worker: int = Field(
        default=1, ge=1, le=16, description="GPUs each worker pod requests (nvidia.com/gpu); one translator per GPU."
    )
    min_workers: int = Field(
        default=0, ge=0, le=1000, description="Fewest workers kept running, even with an empty queue."
    )
    max_workers: int = Field(
        default=4, ge=1, le=1000, description="Most workers the autoscaler may run; caps GPU spend."
    )
    spot: bool = Field(
        default=False,
        description="Run workers on spot (preemptible) nodes, priced with spec.pricing.spotGpuHour.",
    )
    node_selector: NodeSelector | None = Field(
        default=None, description="Extra node labels the worker pods must be scheduled onto."
    )
    tolerations: Tolerations | None = Field(
        default=None,
        description="Taints the worker pods tolerate, in addition to the nvidia.com/gpu taint the operator adds.",
    )
    resources: ResourceRequirements | None = Field(
        default=None,
        description="CPU and memory for each worker container; GPUs come from gpusPerWorker.",
    )
    pod_template: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Overrides merged into the generated worker pod template (metadata and spec), for settings this API "
            "does not cover, such as volumes, environment variables or a service account."
        ),
        json_schema_extra={X_PRESERVE_UNKNOWN_FIELDS: True},
    )

    @model_validator(mode="after")
    def _check(self) -> WorkerSpec:
        if self.min_workers > self.max_workers:
            raise ValueError(MIN_MAX_WORKERS_MESSAGE)
        if not _no_gpu_in(self.resources):
            raise ValueError(GPU_IN_RESOURCES_MESSAGE)
        return self


class AutoscalingSpec(SpecModel):
    """How the worker count follows the queue: desired = ceil(backlog / targetItemsPerWorker), within bounds."""

    enabled: bool = Field(
        default=True, description="Scale workers from the queue backlog; when false the cluster runs minWorkers."
    )
    target_items_per_worker: int = Field(
        default=50, ge=1, le=1000000, description="Backlog of queued items one worker is expected to work through."
    )
    scale_up_stabilization_seconds: int = Field(
        default=0,
        ge=0,
        le=3600,
        description="How long a larger worker count must be wanted before scaling up; 0 scales up at once.",
    )
    scale_down_stabilization_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="How long workers must be idle before they are removed (the idle timeout).",
    )
    max_step_up: int | None = Field(
        default=None, ge=1, le=1000, description="Most workers added in one scaling step; unset means no limit."
    )
    max_step_down: int | None = Field(
        default=None, ge=1, le=1000, description="Most workers removed in one scaling step; unset means no limit."
    )


QUEUE_ONE_OF_MESSAGE = "set exactly one of url and urlSecretRef"


class QueueSpec(SpecModel):
    """The Redis server that holds the work queue, result cache, progress and cost ledger."""

    model_config = ConfigDict(
        json_schema_extra=validations(cel("has(self.url) != has(self.urlSecretRef)", QUEUE_ONE_OF_MESSAGE))
    )

    url: RedisUrl | None = Field(
        default=None,
        description="Redis URL, such as redis://redis.portalis:6379/0; use urlSecretRef when it holds a password.",
    )
    url_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the Redis URL, such as key url of Secret portalis-redis."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> QueueSpec:
        if (self.url is None) == (self.url_secret_ref is None):
            raise ValueError(QUEUE_ONE_OF_MESSAGE)
        return self


class StorageSpec(SpecModel):
    """The S3-compatible object store that keeps job plans, reports and the result cache."""

    endpoint: HttpUrl | None = Field(
        default=None,
        description="S3 endpoint URL, such as http://minio.portalis:9000; unset means AWS S3 in the given region.",
    )
    bucket: BucketName = Field(description="Bucket for job plans and reports, and for outputs of jobs that name none.")
    region: Annotated[str, Field(max_length=64)] = Field(default="us-east-1", description="S3 region.")
    force_path_style: bool = Field(
        default=False, description="Address buckets as endpoint/bucket rather than bucket.endpoint (MinIO needs it)."
    )
    credentials_secret_ref: SecretRef | None = Field(
        default=None,
        description=(
            "Secret with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, such as portalis-s3; unset means the "
            "pods' own identity (for example IAM roles for service accounts)."
        ),
    )


class PricingSpec(SpecModel):
    """What one GPU costs per hour, to turn metered GPU time into spend."""

    on_demand_gpu_hour: Money = Field(description='Price of one on-demand GPU for one hour, such as "4.10".')
    spot_gpu_hour: Money | None = Field(
        default=None, description="Price of one spot GPU for one hour; unset means the on-demand price."
    )


BUDGET_NEEDS_LIMIT_MESSAGE = "a budget needs at least one limit: set daily, weekly, monthly or a tenant limit"
TENANT_NEEDS_LIMIT_MESSAGE = "a tenant budget needs at least one of daily, weekly and monthly"
_ORDER = (("daily", "weekly"), ("weekly", "monthly"), ("daily", "monthly"))


class TenantBudget(SpecModel):
    """Spend limits for one tenant (by default, a tenant is the namespace a job runs in)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("has(self.daily) || has(self.weekly) || has(self.monthly)", TENANT_NEEDS_LIMIT_MESSAGE),
            *(money_order_rule(low, high) for low, high in _ORDER),
        )
    )

    name: DnsLabel = Field(description="Tenant name, as set in a TranslationJob's spec.tenant or its namespace.")
    daily: Money | None = Field(default=None, description="Most the tenant may spend per day.")
    weekly: Money | None = Field(default=None, description="Most the tenant may spend per week (from Monday).")
    monthly: Money | None = Field(default=None, description="Most the tenant may spend per calendar month.")

    @model_validator(mode="after")
    def _check(self) -> TenantBudget:
        if self.daily is None and self.weekly is None and self.monthly is None:
            raise ValueError(TENANT_NEEDS_LIMIT_MESSAGE)
        for low, high in _ORDER:
            check_money_order(self, low, high)
        return self


TIMEZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
DUPLICATE_TENANT_MESSAGE = "tenant names must be unique"


class BudgetSpec(SpecModel):
    """GPU spend limits per calendar window, for the whole cluster and per tenant."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.daily) || has(self.weekly) || has(self.monthly)"
                " || (has(self.tenants) && size(self.tenants) > 0)",
                BUDGET_NEEDS_LIMIT_MESSAGE,
            ),
            *(money_order_rule(low, high) for low, high in _ORDER),
        )
    )

    daily: Money | None = Field(default=None, description='Most the cluster may spend per day, such as "500.00".')
    weekly: Money | None = Field(default=None, description="Most the cluster may spend per week (from Monday).")
    monthly: Money | None = Field(default=None, description="Most the cluster may spend per calendar month.")
    alert_threshold_percent: int = Field(
        default=80,
        ge=1,
        le=100,
        description="Percent of a limit at which the BudgetWarning condition turns True and an alert is raised.",
    )
    on_exceeded: BudgetAction = Field(
        default=BudgetAction.ALERT,
        description=(
            "What happens when a limit is reached: Alert only reports it (BudgetExceeded condition, Event, metric); "
            "BlockScaleUp also stops adding workers; Suspend also scales workers to zero and holds new jobs "
            "until the window ends."
        ),
    )
    timezone: Annotated[str, Field(max_length=64, pattern=TIMEZONE_PATTERN)] = Field(
        default="UTC",
        description="IANA time zone in which days, weeks and months begin, such as UTC or Europe/Berlin.",
    )
    tenants: (
        Annotated[
            list[TenantBudget],
            Field(max_length=100, json_schema_extra={X_LIST_TYPE: "map", X_LIST_MAP_KEYS: ["name"]}),
        ]
        | None
    ) = Field(default=None, description="Limits for individual tenants, within the cluster's limits.")

    @model_validator(mode="after")
    def _check(self) -> BudgetSpec:
        if self.daily is None and self.weekly is None and self.monthly is None and not self.tenants:
            raise ValueError(BUDGET_NEEDS_LIMIT_MESSAGE)
        for low, high in _ORDER:
            check_money_order(self, low, high)
        names = [t.name for t in self.tenants or []]
        if len(names) != len(set(names)):
            raise ValueError(DUPLICATE_TENANT_MESSAGE)
        return self


class HealthSpec(SpecModel):
    """What the operator does when a GPU node reports errors (an ECC alert from DCGM through Alertmanager)."""

    ecc_action: EccAction = Field(
        default=EccAction.CORDON,
        description=(
            "Alert only records the alert; Cordon taints and cordons the node and removes its Ray workers; "
            "CordonAndDrain also evicts the remaining pods (respecting PodDisruptionBudgets)."
        ),
    )
    dry_run: bool = Field(
        default=False, description="Record in Events and status what would be done to the node, and do nothing."
    )
    max_unavailable_nodes: CountOrPercent = Field(
        default=1,
        description=(
            'Most GPU nodes that may be quarantined at once, as a count or a percentage such as "10%"; beyond it '
            "the circuit breaker trips and further alerts are only reported."
        ),
    )
    drain_timeout_seconds: int = Field(
        default=300, ge=1, le=3600, description="How long a drain may take before the node is left cordoned."
    )


BUDGET_NEEDS_PRICING_MESSAGE = (
    "spec.budget needs spec.pricing to turn GPU time into spend; set spec.pricing.onDemandGpuHour"
)
BACKEND_IMMUTABLE_MESSAGE = (
    "backend cannot be changed after the cluster is created; create a new TranslationCluster with the other "
    "backend and point jobs at it"
)
ADMIT_NAMESPACE_PATTERN = r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$"


class TranslationClusterSpec(SpecModel):
    """The GPU cluster a person wants: backend, engine, workers, autoscaling, queue, storage, budget, health."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.budget) || has(self.pricing)",
                BUDGET_NEEDS_PRICING_MESSAGE,
                field_path=".pricing",
                reason="FieldValueRequired",
            )
        )
    )

    backend: Backend = Field(
        default=Backend.RAY,
        description="Distributed runtime of the cluster: Ray (through KubeRay) or Dask. Fixed once created.",
        json_schema_extra=immutable(BACKEND_IMMUTABLE_MESSAGE),
    )
    image: Annotated[str, Field(max_length=512)] = Field(
        default=DEFAULT_WORKER_IMAGE, description="Container image of the head and worker pods."
    )
    suspend: bool = Field(
        default=False,
        description="Scale workers to zero and stop taking work; queued items wait until it is set back to false.",
    )
    engine: EngineSpec = defaulted(EngineSpec, "The translation engine every worker runs.")
    head: HeadSpec | None = Field(default=None, description="Where and how the head pod runs.")
    workers: WorkerSpec = defaulted(WorkerSpec, "The GPU workers: GPU model and count, bounds and placement.")
    autoscaling: AutoscalingSpec = defaulted(AutoscalingSpec, "How the worker count follows the queue backlog.")
    queue: QueueSpec = Field(description="The Redis server holding the work queue; give a URL or a Secret reference.")
    storage: StorageSpec = Field(description="The S3-compatible object store for job plans, reports and the cache.")
    pricing: PricingSpec | None = Field(
        default=None, description="GPU prices that turn metered GPU time into spend; required with a budget."
    )
    budget: BudgetSpec | None = Field(default=None, description="Spend limits per day, week and month, and per tenant.")
    health: HealthSpec = defaulted(HealthSpec, "What happens to GPU nodes that report hardware errors.")
    admit_namespaces: (
        Annotated[
            list[Annotated[str, Field(max_length=63, pattern=ADMIT_NAMESPACE_PATTERN)]],
            Field(max_length=256, json_schema_extra={X_LIST_TYPE: "set"}),
        ]
        | None
    ) = Field(
        default=None,
        description=(
            'Namespaces whose TranslationJobs may use this cluster; "*" admits all. '
            "Unset means only the cluster's own namespace."
        ),
    )

    @model_validator(mode="after")
    def _check(self) -> TranslationClusterSpec:
        if self.budget is not None and self.pricing is None:
            raise ValueError(BUDGET_NEEDS_PRICING_MESSAGE)
        return self

    def admits(self, own_namespace: str, job_namespace: str) -> bool:
        """Whether a job in ``job_namespace`` may run on this cluster, which lives in ``own_namespace``."""
        if self.admit_namespaces is None:
            return job_namespace == own_namespace
        return "*" in self.admit_namespaces or job_namespace in self.admit_namespaces


# --- status ------------------------------------------------------------------------------------------------


class WorkersStatus(StatusModel):
    """Worker pods as last observed."""

    desired: int = Field(default=0, ge=0, description="Workers the autoscaler wants now.")
    ready: int = Field(default=0, ge=0, description="Worker pods running and ready.")
    busy: int = Field(default=0, ge=0, description="Ready workers with items in flight.")


class GpusStatus(StatusModel):
    """GPUs held by the cluster's workers."""

    allocated: int = Field(default=0, ge=0, description="GPUs allocated to running worker pods.")
    healthy: int = Field(default=0, ge=0, description="Allocated GPUs on nodes that are not quarantined.")


class QueueStatus(StatusModel):
    """The cluster's work queue as last observed."""

    depth: int = Field(default=0, ge=0, description="Items waiting to be picked up, over all priorities.")
    in_flight: int = Field(default=0, ge=0, description="Items picked up and not yet acknowledged.")
    dead_letter: int = Field(
        default=0, ge=0, description="Items that failed maxAttemptsPerItem times and were set aside."
    )
    oldest_item_age_seconds: int = Field(default=0, ge=0, description="Age of the oldest waiting item.")


MoneyText = Annotated[str, Field(max_length=32)]


class BudgetWindowStatus(StatusModel):
    """Spend in the current window (day, week or month in the budget's time zone)."""

    spent: MoneyText = Field(default="0.00", description="Spend so far in this window.")
    limit: MoneyText | None = Field(default=None, description="The window's limit, if one is set.")
    percent: int = Field(default=0, ge=0, description="Spend as a percentage of the limit (0 without a limit).")
    window_start: Timestamp | None = Field(default=None, description="When the current window began.")


class TenantBudgetStatus(StatusModel):
    """Spend of one tenant in the current windows."""

    name: LabelValue = Field(description="Tenant name.")
    daily: BudgetWindowStatus | None = Field(default=None, description="Spend of the tenant today.")
    weekly: BudgetWindowStatus | None = Field(default=None, description="Spend of the tenant this week.")
    monthly: BudgetWindowStatus | None = Field(default=None, description="Spend of the tenant this month.")


class BudgetStatus(StatusModel):
    """Spend per window, for the cluster and per tenant."""

    daily: BudgetWindowStatus | None = Field(default=None, description="Spend today.")
    weekly: BudgetWindowStatus | None = Field(default=None, description="Spend this week.")
    monthly: BudgetWindowStatus | None = Field(default=None, description="Spend this month.")
    tenants: Annotated[
        list[TenantBudgetStatus],
        Field(max_length=256, json_schema_extra={X_LIST_TYPE: "map", X_LIST_MAP_KEYS: ["name"]}),
    ] = Field(default_factory=list, description="Spend per tenant that ran work on this cluster.")


class QuarantinedNode(StatusModel):
    """A GPU node the operator cordoned for hardware errors."""

    name: ShortString = Field(description="Node name.")
    reason: Annotated[str, Field(max_length=1024)] | None = Field(
        default=None, description="Why, such as the alert that fired."
    )
    since: Timestamp | None = Field(default=None, description="When the node was quarantined.")
    action: EccAction | None = Field(default=None, description="The eccAction applied: Cordon or CordonAndDrain.")
    phase: QuarantinePhase | None = Field(
        default=None,
        description=(
            "RemovingWorkers, then Cordoned (Cordon) or Draining, DrainBlocked (a PodDisruptionBudget holds an "
            "eviction), Drained or DrainTimedOut (CordonAndDrain)."
        ),
    )
    message: Annotated[str, Field(max_length=1024)] | None = Field(
        default=None, description="What the operator did or waits for, such as the PodDisruptionBudget holding it."
    )


class PlannedNodeAction(StatusModel):
    """What the operator would have done to a node, recorded instead of doing it (spec.health.dryRun)."""

    node: ShortString = Field(description="Node name.")
    actions: Annotated[list[Annotated[str, Field(max_length=512)]], Field(max_length=32)] = Field(
        default_factory=list, description="The actions, in order, such as cordon, taint and evict."
    )
    reason: Annotated[str, Field(max_length=1024)] | None = Field(default=None, description="The alert that fired.")
    time: Timestamp | None = Field(default=None, description="When the plan was made.")


class CircuitBreakerStatus(StatusModel):
    """Stops an alert storm from quarantining too many nodes (see spec.health.maxUnavailableNodes)."""

    tripped: bool = Field(default=False, description="True while further node actions are held back.")
    since: Timestamp | None = Field(default=None, description="When the breaker tripped.")
    reason: Annotated[str, Field(max_length=1024)] | None = Field(default=None, description="Why it tripped.")


class TranslationClusterStatus(StatusModel):
    """What the operator last observed about the cluster."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
    conditions: Conditions = Field(
        default_factory=list,
        description="Ready, Degraded, BudgetWarning, BudgetExceeded and Suspended, with reasons and messages.",
    )
    phase: Annotated[str, Field(max_length=64)] | None = Field(
        default=None,
        description="One-word summary such as Pending, Running, Degraded or Suspended; conditions have the detail.",
    )
    ray_cluster_name: ShortString | None = Field(
        default=None, description="Name of the RayCluster the operator manages for this cluster."
    )
    dask_cluster_name: ShortString | None = Field(
        default=None, description="Name of the DaskCluster the operator manages for this cluster."
    )
    workers: WorkersStatus | None = Field(default=None, description="Desired, ready and busy workers.")
    gpus: GpusStatus | None = Field(default=None, description="Allocated and healthy GPUs.")
    queue: QueueStatus | None = Field(default=None, description="Queue depth, items in flight and oldest item age.")
    budget: BudgetStatus | None = Field(default=None, description="Spend against the budget, per window and tenant.")
    quarantined_nodes: Annotated[
        list[QuarantinedNode],
        Field(max_length=1000, json_schema_extra={X_LIST_TYPE: "map", X_LIST_MAP_KEYS: ["name"]}),
    ] = Field(default_factory=list, description="GPU nodes cordoned for hardware errors and not yet released.")
    last_scale_time: Timestamp | None = Field(default=None, description="When the worker count last changed.")
    circuit_breaker: CircuitBreakerStatus | None = Field(
        default=None, description="Whether node actions are held back after too many alerts."
    )
    planned_node_actions: Annotated[
        list[PlannedNodeAction],
        Field(max_length=100, json_schema_extra={X_LIST_TYPE: "map", X_LIST_MAP_KEYS: ["node"]}),
    ] = Field(
        default_factory=list,
        description="With spec.health.dryRun: what the operator would do to each node an alert named, latest first.",
    )


# --- the resource ------------------------------------------------------------------------------------------

# KubeRay refuses RayCluster names longer than 53 characters (63, a Service name's limit, less "-serve-svc") or
# not DNS-1035 labels; the RayCluster has the TranslationCluster's name.
MAX_CLUSTER_NAME = 53
CLUSTER_NAME_MESSAGE = (
    f"metadata.name must be at most {MAX_CLUSTER_NAME} characters of lowercase letters, digits and '-', starting "
    "with a letter and ending with a letter or digit: it names the RayCluster or DaskCluster, whose Services add "
    "suffixes such as -serve-svc, and labels the pods"
)
_CLUSTER_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


class TranslationCluster(ResourceModel):
    """A GPU cluster (Ray or Dask) that runs TranslationJobs, scaled from its queue and kept within budget."""

    resource: ClassVar[ResourceInfo] = ResourceInfo(
        kind="TranslationCluster",
        plural="translationclusters",
        singular="translationcluster",
        short_names=("tc",),
        printer_columns=(
            PrinterColumn("Backend", "string", ".spec.backend", "Ray or Dask."),
            PrinterColumn("Desired", "integer", ".status.workers.desired", "Workers the autoscaler wants."),
            PrinterColumn("Ready", "integer", ".status.workers.ready", "Worker pods running and ready."),
            PrinterColumn("GPUs", "integer", ".status.gpus.allocated", "GPUs allocated to workers."),
            PrinterColumn("Queue", "integer", ".status.queue.depth", "Items waiting in the queue."),
            PrinterColumn("Spent Today", "string", ".status.budget.daily.spent", "Spend today."),
            PrinterColumn(
                "Status", "string", '.status.conditions[?(@.type=="Ready")].status', "Whether the cluster is Ready."
            ),
            AGE_COLUMN,
            PrinterColumn("GPU Type", "string", ".spec.workers.gpuType", "GPU model of the workers.", priority=1),
            PrinterColumn("Daily Limit", "string", ".status.budget.daily.limit", "Today's spend limit.", priority=1),
            PrinterColumn("RayCluster", "string", ".status.rayClusterName", "The RayCluster behind it.", priority=1),
        ),
        rules=(
            cel(
                f"self.metadata.name.size() <= {MAX_CLUSTER_NAME} && "
                "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
                CLUSTER_NAME_MESSAGE,
            ),
        ),
    )

    api_version: Literal["portalis.dev/v1alpha1"] = Field(default="portalis.dev/v1alpha1", alias="apiVersion")
    kind: Literal["TranslationCluster"] = Field(default="TranslationCluster")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TranslationClusterSpec = Field(
        description=(
            "The cluster a person asks for: backend, engine, workers and their bounds, autoscaling, queue, "
            "storage, prices, budget and the policy for unhealthy GPU nodes."
        )
    )
    status: TranslationClusterStatus | None = Field(
        default=None, description="What the operator last observed: conditions, progress, spend and more."
    )

    @model_validator(mode="after")
    def _name_fits_the_backend(self) -> TranslationCluster:
        name = self.metadata.name
        if name is not None and (len(name) > MAX_CLUSTER_NAME or not _CLUSTER_NAME.fullmatch(name)):
            raise ValueError(CLUSTER_NAME_MESSAGE)
        return self
