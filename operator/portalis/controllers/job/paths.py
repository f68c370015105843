"""Where a job's plan, report and outputs live in S3, and which cluster it names."""

from __future__ import annotations

from portalis.api.v1alpha1.job import TranslationJobSpec
from portalis.controllers.runtime import Key


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
