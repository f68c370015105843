"""Where a job's things live: its plan and report in the cluster's store, its outputs and their file extension,
and the cluster it names. Pure: the job's key, uid and spec in, names out."""

from __future__ import annotations

from portalis.api.meta import Key
from portalis.api.v1alpha1.job import TranslationJobSpec

OUTPUT_EXTENSIONS: dict[str, str] = {"rust": ".rs", "go": ".go", "cpp": ".cpp"}


def output_extension(target_language: str) -> str:
    """The file extension of translated outputs, such as ".rs" for rust; ValueError for a language unknown."""
    try:
        return OUTPUT_EXTENSIONS[target_language]
    except KeyError:
        known = ", ".join(sorted(OUTPUT_EXTENSIONS))
        raise ValueError(f"unknown target language {target_language!r} (known: {known})") from None


def s3_url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def plan_key(namespace: str, name: str, uid: str) -> str:
    return f"portalis/jobs/{namespace}/{name}-{uid[:8]}/plan.json"


def report_key(namespace: str, name: str, uid: str) -> str:
    return f"portalis/jobs/{namespace}/{name}-{uid[:8]}/report.json"


def cluster_key(key: Key, spec: TranslationJobSpec) -> Key:
    """The TranslationCluster a job names: its own namespace unless clusterRef gives another."""
    return (spec.cluster_ref.namespace or key[0], spec.cluster_ref.name)


def output_prefix(spec: TranslationJobSpec, name: str) -> str:
    if spec.output is not None and spec.output.prefix is not None:
        return spec.output.prefix
    return f"translations/{name}/"


def output_bucket(spec: TranslationJobSpec) -> str:
    return spec.output.bucket if spec.output is not None and spec.output.bucket else spec.source.bucket


def tenant_of(key: Key, spec: TranslationJobSpec) -> str:
    """The tenant a job's spend counts against: ``spec.tenant``, else its namespace."""
    return spec.tenant or key[0]
