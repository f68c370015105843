"""``kubectl portalis submit``: upload a local source tree to S3, create a TranslationJob and follow it."""

from __future__ import annotations

import argparse
import os
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from portalis.cli.kubeconfig import PluginError
from portalis.cli.kubectl.api import CLUSTERS, GROUP, JOBS, VERSION, Api, connect
from portalis.cli.kubectl.events import event_key, format_event
from portalis.cli.kubectl.output import TERMINAL_PHASES, format_money, progress_line, status_of
from portalis.desired.plan import match_globs

PRIORITIES = ("Interactive", "Batch", "Training", "LowPriority")
TARGETS = ("rust", "go", "cpp")
DEFAULT_INCLUDE = ("**/*.py",)
DEFAULT_POLL_SECONDS = 1.0

_DNS_LABEL = re.compile(r"[^a-z0-9-]+")
_COUNT_OR_PERCENT = re.compile(r"^(\d+)(%?)$")


def dns_label(text: str, max_length: int = 63) -> str:
    """``text`` as a DNS label: lower case, [a-z0-9-], starting and ending with an alphanumeric."""
    label = _DNS_LABEL.sub("-", text.lower()).strip("-")
    label = re.sub(r"-{2,}", "-", label)[:max_length].strip("-")
    return label or "job"


def default_job_name(directory: Path, suffix: str | None = None) -> str:
    """``<directory name>-<5 random characters>``, like a generateName."""
    tail = suffix if suffix is not None else secrets.token_hex(3)[:5]
    return f"{dns_label(directory.resolve().name, 40)}-{tail}"


def parse_count_or_percent(text: str) -> int | str:
    """``--max-failed-items``: ``3`` -> 3, ``10%`` -> "10%" (0..100%)."""
    match = _COUNT_OR_PERCENT.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a count such as 3 or a percentage such as 10%")
    number, percent = int(match.group(1)), match.group(2)
    if percent:
        if number > 100:
            raise ValueError(f"{text!r}: a percentage must be between 0% and 100%")
        return f"{number}%"
    return number


def normalise_prefix(prefix: str) -> str:
    """An S3 key prefix with one trailing slash and no leading one (empty stays empty)."""
    prefix = prefix.strip().lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def select_files(root: Path, include: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """Relative POSIX paths under ``root`` matching an include glob and no exclude glob, as the job's plan will."""
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        rel = path.relative_to(root).as_posix()
        if match_globs(rel, list(include), list(exclude)):
            found.append(rel)
    return found


def parse_cluster_ref(text: str, namespace: str) -> tuple[str, str]:
    """``--cluster NAME`` or ``NAMESPACE/NAME`` -> (namespace, name)."""
    if "/" in text:
        ns, name = text.split("/", 1)
        return ns, name
    return namespace, text


def build_job_manifest(
    name: str,
    namespace: str,
    cluster: tuple[str, str],
    bucket: str,
    prefix: str,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = (),
    priority: str = "Batch",
    target: str = "rust",
    max_failed_items: int | str | None = None,
) -> dict[str, Any]:
    """The TranslationJob ``submit`` creates for sources uploaded to ``s3://bucket/prefix``."""
    cluster_ns, cluster_name = cluster
    ref: dict[str, Any] = {"name": cluster_name}
    if cluster_ns != namespace:
        ref["namespace"] = cluster_ns
    source: dict[str, Any] = {"bucket": bucket, "prefix": prefix, "include": list(include)}
    if exclude:
        source["exclude"] = list(exclude)
    spec: dict[str, Any] = {
        "clusterRef": ref,
        "source": source,
        "sourceLanguage": "python",
        "targetLanguage": target,
        "priority": priority,
    }
    if max_failed_items is not None:
        spec["maxFailedItems"] = max_failed_items
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TranslationJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/created-by": "kubectl-portalis"},
        },
        "spec": spec,
    }


@dataclass(frozen=True)
class S3Settings:
    """How ``submit`` reaches the cluster's object store, and where each setting came from."""

    endpoint: str | None
    region: str
    access_key: str | None
    secret_key: str | None
    force_path_style: bool
    credentials_from: str


def resolve_s3(
    storage: Mapping[str, Any],
    secret: Mapping[str, str] | None,
    environ: Mapping[str, str],
    endpoint_flag: str | None = None,
    secret_name: str | None = None,
) -> S3Settings:
    """The cluster's ``spec.storage`` and credentials Secret, overridden by ``--s3-endpoint`` and AWS_* variables.

    With AWS_ACCESS_KEY_ID in the environment the keys are left to boto3, which then also honours
    AWS_SESSION_TOKEN; with neither the environment nor a Secret, boto3's usual chain applies.
    """
    endpoint = (
        endpoint_flag
        or environ.get("AWS_ENDPOINT_URL_S3")
        or environ.get("AWS_ENDPOINT_URL")
        or storage.get("endpoint")
    )
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or storage.get("region") or "us-east-1"
    if environ.get("AWS_ACCESS_KEY_ID"):
        access = secret_key = None
        source = "the environment (AWS_ACCESS_KEY_ID)"
    elif secret is not None:
        access, secret_key = secret.get("AWS_ACCESS_KEY_ID"), secret.get("AWS_SECRET_ACCESS_KEY")
        source = f"Secret {secret_name}" if secret_name else "the cluster's Secret"
    else:
        access = secret_key = None
        source = "the default AWS credential chain"
    return S3Settings(
        endpoint=str(endpoint) if endpoint else None,
        region=str(region),
        access_key=access,
        secret_key=secret_key,
        force_path_style=bool(storage.get("forcePathStyle")) or bool(endpoint),
        credentials_from=source,
    )


def _storage_settings(api: Api, cluster: dict[str, Any], cluster_ns: str, endpoint_flag: str | None) -> S3Settings:
    storage = dict((cluster.get("spec") or {}).get("storage") or {})
    secret_name = (storage.get("credentialsSecretRef") or {}).get("name")
    secret: dict[str, str] | None = None
    if secret_name and not os.environ.get("AWS_ACCESS_KEY_ID"):
        try:
            secret = api.secret(cluster_ns, secret_name)
        except PluginError as exc:
            raise PluginError(
                f"{exc}\nthe S3 credentials are in that Secret; ask for `get` on it, or set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY"
            ) from exc
        missing = [k for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not secret.get(k)]
        if missing:
            raise PluginError(f"Secret {cluster_ns}/{secret_name} has no {' or '.join(missing)}")
    return resolve_s3(storage, secret, os.environ, endpoint_flag, f"{cluster_ns}/{secret_name}")


def _upload(store: Any, bucket: str, prefix: str, root: Path, files: Sequence[str]) -> int:
    def put(rel: str) -> int:
        data = (root / rel).read_bytes()
        store.put_bytes(bucket, prefix + rel, data)
        return len(data)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return sum(pool.map(put, files))


def cmd_submit(args: argparse.Namespace, out: TextIO) -> int:
    from portalis.clients.store import Store, StoreError  # boto3 loads only when needed

    root = Path(args.directory)
    if not root.is_dir():
        raise PluginError(f"{args.directory} is not a directory")
    try:
        max_failed = parse_count_or_percent(args.max_failed_items) if args.max_failed_items is not None else None
    except ValueError as exc:
        raise PluginError(f"--max-failed-items: {exc}") from exc
    include = args.include or list(DEFAULT_INCLUDE)
    files = select_files(root, include, args.exclude or [])
    if not files:
        raise PluginError(f"no files under {root} match {', '.join(include)}")

    ctx, api = connect(args)
    namespace = str(ctx.namespace)
    cluster_ns, cluster_name = parse_cluster_ref(args.cluster, namespace)
    cluster = api.get(CLUSTERS, cluster_ns, cluster_name)
    if cluster is None:
        raise PluginError(f"no TranslationCluster named {cluster_name!r} in namespace {cluster_ns}")
    name = args.name or default_job_name(root)
    if api.get(JOBS, namespace, name) is not None:
        raise PluginError(f"a TranslationJob named {name!r} already exists in namespace {namespace}; pass --name")

    s3 = _storage_settings(api, cluster, cluster_ns, args.s3_endpoint)
    bucket = args.bucket or (cluster.get("spec") or {}).get("storage", {}).get("bucket")
    if not bucket:
        raise PluginError(f"TranslationCluster {cluster_ns}/{cluster_name} names no storage bucket; pass --bucket")
    prefix = normalise_prefix(args.prefix if args.prefix is not None else f"sources/{name}/")
    store = Store(s3.endpoint, s3.region, s3.access_key, s3.secret_key, s3.force_path_style)
    where = f"s3://{bucket}/{prefix}"
    print(
        f"uploading {len(files)} files from {root} to {where} ({s3.endpoint or 'AWS S3'}, credentials from "
        f"{s3.credentials_from})",
        file=out,
        flush=True,
    )
    try:
        size = _upload(store, bucket, prefix, root, files)
    except StoreError as exc:
        hint = " (create the bucket or pass --bucket)" if exc.reason == "NoSuchBucket" else ""
        raise PluginError(f"upload failed: {exc}{hint}") from exc
    print(f"uploaded {len(files)} files ({size / 1024:.1f} KiB)", file=out)

    manifest = build_job_manifest(
        name,
        namespace,
        (cluster_ns, cluster_name),
        bucket,
        prefix,
        include=include,
        exclude=args.exclude or (),
        priority=args.priority,
        target=args.target,
        max_failed_items=max_failed,
    )
    api.create(JOBS, namespace, manifest)
    print(f"translationjob.{GROUP}/{name} created in namespace {namespace}", file=out, flush=True)
    if args.no_follow:
        print(f"follow it with: kubectl portalis logs tj/{name} -n {namespace} --follow", file=out)
        return 0
    return follow_job(api, namespace, name, out, timeout=args.timeout, interval=args.interval)


def follow_job(api: Api, namespace: str, name: str, out: TextIO, timeout: float = 0, interval: float = 1.0) -> int:
    """Print a job's progress until it ends; 0 when it Succeeded, 1 when it Failed, was deleted or time ran out."""
    tty = out.isatty()
    nl = "\n" if tty else ""  # ends the progress line a terminal keeps rewriting
    deadline = time.monotonic() + timeout if timeout else None
    seen: set[tuple[str, int]] = set()
    last_line = ""
    status: dict[str, Any] = {}
    try:
        while True:
            job = api.get(JOBS, namespace, name)
            if job is None:
                print(f"{nl}translationjob {namespace}/{name} was deleted", file=out)
                return 1
            status = status_of(job)
            for ev in api.events(namespace, "TranslationJob", name):
                if event_key(ev) in seen:
                    continue
                seen.add(event_key(ev))
                if ev.get("type") == "Warning" or ev.get("reason") in ("Planned", "Queued", "Completed", "Failed"):
                    prefix = "\n" if tty and last_line else ""
                    print(f"{prefix}  {format_event(ev)}", file=out)
                    last_line = ""
            line = progress_line(status)
            if line != last_line:
                if tty:
                    print(f"\r{line}   ", end="", file=out)
                else:
                    print(line, file=out)
                last_line = line
            out.flush()
            if status.get("phase") in TERMINAL_PHASES:
                break
            if deadline is not None and time.monotonic() > deadline:
                print(
                    f"{nl}timed out after {timeout:.0f}s; the job keeps running: "
                    f"kubectl portalis logs tj/{name} -n {namespace} --follow",
                    file=out,
                )
                return 1
            time.sleep(interval)
    except KeyboardInterrupt:
        print(
            f"{nl}stopped following; the job keeps running: kubectl portalis logs tj/{name} -n {namespace} --follow",
            file=out,
        )
        return 130
    if tty:
        print(file=out)
    print(final_summary(namespace, name, status), file=out)
    return 0 if status.get("phase") == "Succeeded" else 1


def final_summary(namespace: str, name: str, status: Mapping[str, Any]) -> str:
    """What a finished job did: how many files compile, were written without compiling and failed, the cost,
    where the output is, and the files that failed."""
    items = status.get("items") or {}
    cost = status.get("cost") or {}
    done, compiles = int(items.get("done") or 0), int(items.get("compiles") or 0)
    lines = [
        f"job {namespace}/{name} {status.get('phase')}: {compiles} of {int(items.get('total') or 0)} files compile "
        f"({int(status.get('verifiedPercent') or 0)}%), {done - compiles} more written that do not or were not "
        f"checked ({int(items.get('cached') or 0)} from the cache), {int(items.get('failed') or 0)} failed; "
        f"cost {format_money(cost.get('spent'))} ({int(cost.get('gpuSeconds') or 0)} GPU-seconds)",
        f"output: {status.get('outputLocation') or '-'}",
    ]
    if status.get("reportLocation"):
        lines.append(f"report: {status['reportLocation']}")
    failed = list(status.get("failedItems") or [])
    if failed:
        lines.append(f"failed files ({len(failed)}{' shown; the report lists all' if len(failed) >= 100 else ''}):")
        lines.extend(f"  {item}" for item in failed)
    if status.get("phase") == "Failed":
        for c in status.get("conditions") or []:
            if c.get("type") == "Failed" and c.get("status") == "True":
                lines.append(f"why: {c.get('reason')}: {c.get('message')}")
    return "\n".join(lines)
