"""TranslationJob: translate the files under an S3 prefix on a TranslationCluster.

Spec is what a person asks for; status is what the operator observed. The job controller plans the job
into work items from ``spec.source``, queues them on the cluster named by ``spec.clusterRef`` at the job's
priority, and reports progress, cost and an ETA in status. The CRD schema, its CEL rules and
``docs/api-reference.md`` are generated from this module by ``portalis.api.crdgen``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from portalis.api.v1alpha1.common import (
    AGE_COLUMN,
    BucketName,
    Conditions,
    CountOrPercent,
    DnsLabel,
    DnsSubdomain,
    KeyPrefix,
    Money,
    ObjectMeta,
    OptionValue,
    PrinterColumn,
    ResourceInfo,
    ResourceModel,
    SpecModel,
    StatusModel,
    Timestamp,
    cel,
    defaulted,
    immutable,
    validations,
)


class SourceLanguage(StrEnum):
    PYTHON = "python"


class TargetLanguage(StrEnum):
    RUST = "rust"
    GO = "go"
    CPP = "cpp"


class Priority(StrEnum):
    """Queue priority, highest first: Interactive work is picked before Batch, Batch before Training, and so on."""

    INTERACTIVE = "Interactive"
    BATCH = "Batch"
    TRAINING = "Training"
    LOW_PRIORITY = "LowPriority"


class JobPhase(StrEnum):
    PENDING = "Pending"
    PLANNING = "Planning"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class Outcome(StrEnum):
    """How a file of a job ended: its translation compiles with the target's toolchain, it was written but does
    not compile (the compiler's first diagnostics are kept), or the engine could not translate it."""

    COMPILES = "compiles"
    TRANSLATED = "translated"
    FAILED = "failed"


class CountAsFailed(StrEnum):
    """Which files count against maxFailedItems."""

    FAILED = "Failed"
    NOT_COMPILING = "NotCompiling"


class JobConditionType(StrEnum):
    PLANNED = "Planned"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    AT_RISK = "AtRisk"
    BUDGET_HELD = "BudgetHeld"
    SUSPENDED = "Suspended"


# --- spec --------------------------------------------------------------------------------------------------


class ClusterRef(SpecModel):
    """The TranslationCluster that runs the job."""

    name: DnsSubdomain = Field(description="Name of the TranslationCluster.")
    namespace: DnsLabel | None = Field(
        default=None,
        description=(
            "Namespace of the TranslationCluster; unset means the job's own namespace. The cluster must admit "
            "the job's namespace in its spec.admitNamespaces."
        ),
    )


Glob = Annotated[str, Field(max_length=1024)]
INCLUDE_EMPTY_MESSAGE = 'include needs at least one glob, such as "**/*.py"'


class SourceSpec(SpecModel):
    """Where the files to translate are: every object under bucket/prefix matching include and not exclude."""

    # guarded with has(): the apiserver may evaluate the rule before it fills in the default (an object of
    # another kind sent to this resource is), and a rule that errors answers with "no such key", not its message
    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("!has(self.include) || size(self.include) > 0", INCLUDE_EMPTY_MESSAGE, field_path=".include")
        )
    )

    bucket: BucketName = Field(description="S3 bucket holding the sources, in the cluster's object store.")
    prefix: KeyPrefix = Field(
        default="", description="Key prefix of the sources inside the bucket, such as repos/acme/; empty means all."
    )
    include: Annotated[list[Glob], Field(max_length=64)] = Field(
        default=["**/*.py"], description="Globs, relative to the prefix, of the files to translate."
    )
    exclude: Annotated[list[Glob], Field(max_length=64)] = Field(
        default=[], description="Globs, relative to the prefix, of files to leave out, such as **/tests/**."
    )

    @model_validator(mode="after")
    def _check(self) -> SourceSpec:
        if not self.include:
            raise ValueError(INCLUDE_EMPTY_MESSAGE)
        return self


class OutputSpec(SpecModel):
    """Where the translations are written; each source key maps to one output key, so retries never duplicate."""

    bucket: BucketName | None = Field(
        default=None, description="S3 bucket for the outputs; unset means the source bucket."
    )
    prefix: KeyPrefix | None = Field(
        default=None,
        description="Key prefix for the outputs; unset means translations/<namespace>/<job name>/.",
    )


class VerifySpec(SpecModel):
    """Whether each translation is checked with the target's own compiler, and what a file that does not compile
    counts as."""

    enabled: bool = Field(
        default=True,
        description=(
            "Check every written translation with the target language's toolchain (Rust: cargo check, Go: go "
            "build, C++: the compiler's syntax check). A file then ends as compiles, translated (written, does not "
            "compile, with the compiler's first diagnostics in the report) or failed. Off: written files count as "
            "translated and are not checked."
        ),
    )
    count_as_failed: CountAsFailed = Field(
        default=CountAsFailed.FAILED,
        description=(
            "Which files count against maxFailedItems: Failed (only files the engine could not translate) or "
            "NotCompiling (those and the files written that do not compile)."
        ),
    )


CLUSTER_REF_IMMUTABLE_MESSAGE = (
    "clusterRef cannot be changed after the job is created; delete the job and create a new one "
    "that points at the other cluster"
)
SOURCE_IMMUTABLE_MESSAGE = (
    "source cannot be changed after the job is created; create a new TranslationJob for other files"
)
OUTPUT_IMMUTABLE_MESSAGE = "output cannot be changed after the job is created; create a new TranslationJob instead"
TARGET_IMMUTABLE_MESSAGE = (
    "targetLanguage cannot be changed after the job is created; create a new TranslationJob for another language"
)


class TranslationJobSpec(SpecModel):
    """The translation a person asks for: what to translate, into what, where, how urgently and within what cost."""

    cluster_ref: ClusterRef = Field(
        description="The TranslationCluster that runs the job. Fixed once created.",
        json_schema_extra=immutable(CLUSTER_REF_IMMUTABLE_MESSAGE),
    )
    source: SourceSpec = Field(
        description="The files to translate. Fixed once created.",
        json_schema_extra=immutable(SOURCE_IMMUTABLE_MESSAGE),
    )
    output: OutputSpec | None = Field(
        default=None,
        description="Where the translations go; unset means the source bucket under a prefix named after the job.",
        json_schema_extra=immutable(OUTPUT_IMMUTABLE_MESSAGE),
    )
    source_language: SourceLanguage = Field(default=SourceLanguage.PYTHON, description="Language of the sources.")
    target_language: TargetLanguage = Field(
        default=TargetLanguage.RUST,
        description="Language to translate into: rust, go or cpp. Fixed once created.",
        json_schema_extra=immutable(TARGET_IMMUTABLE_MESSAGE),
    )
    priority: Priority = Field(
        default=Priority.BATCH,
        description=(
            "Queue priority: Interactive items are picked first, then Batch, Training and LowPriority; "
            "LowPriority work is also the first held back when a budget runs short."
        ),
    )
    tenant: DnsLabel | None = Field(
        default=None, description="Tenant the job's spend is charged to; unset means the job's namespace."
    )
    deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        le=31536000,
        description=(
            "Seconds from the job's creation by which it should finish; the AtRisk condition turns True when the "
            "ETA passes it. The job is not stopped."
        ),
    )
    max_cost: Money | None = Field(
        default=None,
        description='Most the job may spend, such as "50.00"; once reached, its remaining items are held.',
    )
    max_attempts_per_item: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Attempts per item before it is set aside as failed (in the dead-letter stream).",
    )
    max_failed_items: CountOrPercent = Field(
        default=0,
        description=(
            "Files that may fail (unsupported by the engine, unreadable, too large) while the job still counts as "
            'Succeeded: a count such as 3 or a percentage of the plan such as "5%". Failed files are listed by '
            "name in status and in the report either way."
        ),
    )
    verify: VerifySpec = defaulted(
        VerifySpec, "Whether translations are checked with the target's compiler and which outcome counts as failed."
    )
    suspend: bool = Field(
        default=False, description="Hold the job's queued items; items in flight finish. Set back to false to resume."
    )
    engine_options: Annotated[dict[str, OptionValue], Field(max_length=64)] | None = Field(
        default=None, description="Engine settings for this job, merged over the cluster's spec.engine.options."
    )


# --- status ------------------------------------------------------------------------------------------------


class ItemsStatus(StatusModel):
    """Work items of the job (one per source file) by state."""

    total: int = Field(default=0, ge=0, description="Items in the plan.")
    done: int = Field(
        default=0, ge=0, description="Items translated and written, including cached ones: compiles plus translated."
    )
    failed: int = Field(default=0, ge=0, description="Items that failed maxAttemptsPerItem times.")
    cached: int = Field(default=0, ge=0, description="Items answered from the result cache without an engine call.")
    compiles: int = Field(
        default=0, ge=0, description="Items whose translation the target's compiler accepted (part of done)."
    )
    translated: int = Field(
        default=0,
        ge=0,
        description="Items written whose translation does not compile, or was not checked (part of done).",
    )
    queued: int = Field(default=0, ge=0, description="Items waiting in the queue.")
    in_flight: int = Field(default=0, ge=0, description="Items a worker is translating now.")


class CostStatus(StatusModel):
    """What the job has cost so far."""

    spent: Annotated[str, Field(max_length=32)] = Field(default="0.00", description="Spend so far, such as 12.34.")
    gpu_seconds: int = Field(default=0, ge=0, description="GPU-seconds the job's items used.")
    per_item: Annotated[str, Field(max_length=32)] | None = Field(
        default=None, description="Average spend per finished item."
    )
    tokens: int = Field(
        default=0, ge=0, description="Model tokens (prompt and completion, repair rounds included) the items used."
    )


class TranslationJobStatus(StatusModel):
    """What the operator last observed about the job."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
    conditions: Conditions = Field(
        default_factory=list,
        description="Planned, Running, Succeeded, Failed, AtRisk, BudgetHeld and Suspended, with reasons.",
    )
    phase: JobPhase | None = Field(
        default=None, description="Pending, Planning, Running, Suspended, Succeeded or Failed."
    )
    items: ItemsStatus | None = Field(default=None, description="Work items by state.")
    progress_percent: int = Field(
        default=0, ge=0, le=100, description="Finished items (done and failed) as a percentage of the total."
    )
    verified_percent: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Items whose translation compiles as a percentage of the total (0 while verification is off).",
    )
    cost: CostStatus | None = Field(default=None, description="Spend and GPU time so far.")
    eta_seconds: int | None = Field(
        default=None, ge=0, description="Estimated seconds until the job finishes, from the recent item rate."
    )
    start_time: Timestamp | None = Field(default=None, description="When the first item was queued.")
    completion_time: Timestamp | None = Field(default=None, description="When the job succeeded or failed.")
    plan_location: Annotated[str, Field(max_length=2048)] | None = Field(
        default=None, description="s3:// URL of the job's plan (its list of items)."
    )
    output_location: Annotated[str, Field(max_length=2048)] | None = Field(
        default=None, description="s3:// URL of the prefix the translations are written under."
    )
    report_location: Annotated[str, Field(max_length=2048)] | None = Field(
        default=None, description="s3:// URL of the job's report, written when it finishes."
    )
    failed_items: Annotated[list[Annotated[str, Field(max_length=1024)]], Field(max_length=100)] = Field(
        default_factory=list, description="Source keys of failed items, the first 100; the report lists them all."
    )


# --- the resource ------------------------------------------------------------------------------------------


class TranslationJob(ResourceModel):
    """Translates the files under an S3 prefix on a TranslationCluster, with a priority, a deadline and a cost cap."""

    resource: ClassVar[ResourceInfo] = ResourceInfo(
        kind="TranslationJob",
        plural="translationjobs",
        singular="translationjob",
        short_names=("tj",),
        printer_columns=(
            PrinterColumn("Cluster", "string", ".spec.clusterRef.name", "The TranslationCluster running the job."),
            PrinterColumn("Priority", "string", ".spec.priority", "Queue priority."),
            PrinterColumn("Progress", "integer", ".status.progressPercent", "Percent of items finished."),
            PrinterColumn("Done", "integer", ".status.items.done", "Items translated."),
            PrinterColumn("Total", "integer", ".status.items.total", "Items in the plan."),
            PrinterColumn("Compiles", "integer", ".status.verifiedPercent", "Percent of the files that compile."),
            PrinterColumn("Cost", "string", ".status.cost.spent", "Spend so far."),
            PrinterColumn("ETA", "integer", ".status.etaSeconds", "Estimated seconds to finish."),
            PrinterColumn("Status", "string", ".status.phase", "Phase of the job."),
            AGE_COLUMN,
            PrinterColumn("Failed", "integer", ".status.items.failed", "Items that failed.", priority=1),
            PrinterColumn("Target", "string", ".spec.targetLanguage", "Language translated into.", priority=1),
            PrinterColumn("Tenant", "string", ".spec.tenant", "Tenant charged for the job.", priority=1),
        ),
    )

    api_version: Literal["portalis.dev/v1alpha1"] = Field(default="portalis.dev/v1alpha1", alias="apiVersion")
    kind: Literal["TranslationJob"] = Field(default="TranslationJob")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TranslationJobSpec = Field(
        description=(
            "The translation a person asks for: the cluster, the source files and where outputs go, the languages, "
            "the priority and limits on time, cost and attempts."
        )
    )
    status: TranslationJobStatus | None = Field(
        default=None, description="What the operator last observed: conditions, progress, spend and more."
    )
