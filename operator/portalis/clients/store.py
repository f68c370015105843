"""The object store: S3 (or any S3-compatible server) through boto3, and the requests planning makes for every
job (listings, single-part writes, reads, heads) signed and sent directly when an endpoint is given (``s3wire``).

The job controller lists sources and keeps each job's plan and report here; workers read sources and write
translations. S3 errors surface as ``StoreError`` with a short ``reason`` (the S3 error code, or one of
``NotFound``, ``AccessDenied``, ``Unreadable``, ``TooLarge``, ``Unavailable``) that callers branch on and that
reads well in a status condition: ``CredentialsRejected`` when the server does not know the access key or the
signature does not match its secret, ``ChecksumMismatch`` when what arrived is not what was sent (nothing was
stored). Every write carries a CRC32 checksum; outputs over 16 MiB go up as a multipart upload, aborted on error
so no part is left behind.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from portalis.clients import IO_THREADS
from portalis.clients.s3wire import Credentials, S3Wire, WireError

LIST_PAGE_SIZE = 1000
# objects larger than this go up in parts of PART_SIZE (a single PUT stops at 5 GiB and must be resent whole)
MULTIPART_THRESHOLD = 16 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024
CHECKSUM = "CRC32"  # sent with every PUT and part, and checked by the server before it stores anything

_REASONS = {
    "NoSuchKey": "NotFound",
    "404": "NotFound",
    "NotFound": "NotFound",
    "NoSuchBucket": "NoSuchBucket",
    "AccessDenied": "AccessDenied",
    "403": "AccessDenied",
    "Forbidden": "AccessDenied",
    "AllAccessDisabled": "AccessDenied",
    "InvalidAccessKeyId": "CredentialsRejected",
    "SignatureDoesNotMatch": "CredentialsRejected",
    "BadDigest": "ChecksumMismatch",
    "InvalidDigest": "ChecksumMismatch",
    "XAmzContentChecksumMismatch": "ChecksumMismatch",
    "InvalidObjectState": "Unreadable",  # archived (Glacier) objects cannot be read until restored
}


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str


class StoreError(Exception):
    """An S3 request failed; ``reason`` says why in one word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _error(exc: Exception, what: str) -> StoreError:
    if isinstance(exc, WireError) and exc.code != "Unavailable":
        reason = _REASONS.get(exc.code, exc.code)
        return StoreError(reason, f"{what}: {reason} ({exc})")
    if isinstance(exc, ClientError):
        code = str(
            exc.response.get("Error", {}).get("Code")
            or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "Error")
        )
        reason = _REASONS.get(code, code)
        return StoreError(reason, f"{what}: {reason} ({exc})")
    return StoreError("Unavailable", f"{what}: the object store could not be reached or answered badly ({exc})")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


class Store:
    """Buckets and objects on one S3 endpoint; safe to share between threads (boto3 clients are, and so is the
    direct path).

    With an ``endpoint`` (an S3-compatible server), listings, single-part writes, reads and heads go out as
    signed requests on one connection pool (``s3wire``), which costs a fraction of boto3's CPU per request;
    boto3 (``self.s3``) does the rest, and everything when no endpoint is given (AWS S3, with its region
    redirects and addressing rules). ``session``: the boto3 Session to make the client from (a new one by
    default); the caller keeps other threads off it while the Store is made."""

    def __init__(
        self,
        endpoint: str | None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        force_path_style: bool = True,
        session: boto3.session.Session | None = None,
    ) -> None:
        self.endpoint = endpoint or None
        self.region = region
        config = Config(
            region_name=region,
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=IO_THREADS,
            s3={"addressing_style": "path"} if force_path_style else None,
        )
        session = session or boto3.session.Session()
        self.s3: Any = session.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=config,
        )
        self.wire: S3Wire | None = None
        if self.endpoint:
            if access_key and secret_key:
                given = Credentials(access_key, secret_key)
                credentials: Any = lambda: given  # noqa: E731
            else:  # boto3's chain (environment, web identity, instance profile), refreshed as it expires
                found = session.get_credentials()

                def credentials() -> Credentials | None:
                    if found is None:
                        return None
                    frozen = found.get_frozen_credentials()
                    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

            self.wire = S3Wire(self.endpoint, region, credentials, path_style=force_path_style, pool_size=IO_THREADS)

    @classmethod
    def from_env(cls) -> Store:
        """Settings the chart and the worker pods set: PORTALIS_S3_ENDPOINT, AWS_* and PORTALIS_S3_FORCE_PATH_STYLE.

        Without AWS_ACCESS_KEY_ID, boto3's usual credential chain applies (IRSA, instance profiles, ...).
        """
        return cls(
            endpoint=os.environ.get("PORTALIS_S3_ENDPOINT") or None,
            region=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1",
            access_key=os.environ.get("AWS_ACCESS_KEY_ID") or None,
            secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
            force_path_style=_truthy(os.environ.get("PORTALIS_S3_FORCE_PATH_STYLE")),
        )

    def list(self, bucket: str, prefix: str, page_size: int = LIST_PAGE_SIZE) -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, in key order, a page (``page_size`` keys) per request."""
        if self.wire is not None:
            token: str | None = None
            while True:
                try:
                    page = self.wire.list_page(bucket, prefix, page_size, token)
                except WireError as exc:
                    raise _error(exc, f"listing s3://{bucket}/{prefix}") from exc
                for key, size, etag in page.objects:
                    yield ObjectInfo(key=key, size=size, etag=etag)
                if page.next_token is None:
                    return
                token = page.next_token
        paginator = self.s3.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size})
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(key=obj["Key"], size=int(obj["Size"]), etag=str(obj.get("ETag", "")).strip('"'))
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, f"listing s3://{bucket}/{prefix}") from exc

    def get_bytes(self, bucket: str, key: str, max_bytes: int | None = None) -> bytes:
        """The object's content; StoreError("TooLarge") when it is over ``max_bytes`` (checked before reading)."""
        where = f"s3://{bucket}/{key}"
        if self.wire is not None:
            return self._get_wire(bucket, key, where, max_bytes)
        try:
            resp = self.s3.get_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, f"reading {where}") from exc
        body = resp["Body"]
        size = int(resp.get("ContentLength") or 0)
        if max_bytes is not None and size > max_bytes:
            body.close()
            raise StoreError("TooLarge", f"{where} is {size} bytes, over the limit of {max_bytes} bytes")
        try:
            data: bytes = body.read()
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, f"reading {where}") from exc
        finally:
            body.close()
        if max_bytes is not None and len(data) > max_bytes:
            raise StoreError("TooLarge", f"{where} is {len(data)} bytes, over the limit of {max_bytes} bytes")
        return data

    def _get_wire(self, bucket: str, key: str, where: str, max_bytes: int | None) -> bytes:
        assert self.wire is not None
        try:
            resp = self.wire.request("GET", bucket, key, stream=True)
        except WireError as exc:
            raise _error(exc, f"reading {where}") from exc
        try:
            size = int(resp.headers.get("Content-Length") or 0)
            if max_bytes is not None and size > max_bytes:
                raise StoreError("TooLarge", f"{where} is {size} bytes, over the limit of {max_bytes} bytes")
            try:
                data: bytes = resp.read()
            except Exception as exc:  # the connection broke while the body was read
                raise _error(WireError("Unavailable", str(exc)), f"reading {where}") from exc
        finally:
            resp.release_conn()
        if max_bytes is not None and len(data) > max_bytes:
            raise StoreError("TooLarge", f"{where} is {len(data)} bytes, over the limit of {max_bytes} bytes")
        return data

    def put_bytes(
        self,
        bucket: str,
        key: str,
        data: bytes,
        metadata: dict[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        """Write the object whole (it replaces one under the same key): one PUT, or a multipart upload over
        ``MULTIPART_THRESHOLD`` bytes."""
        extra = {"Metadata": metadata or {}, "ContentType": content_type, "ChecksumAlgorithm": CHECKSUM}
        try:
            if len(data) <= MULTIPART_THRESHOLD and self.wire is not None:
                headers = {
                    "content-type": content_type,
                    f"x-amz-checksum-{CHECKSUM.lower()}": _crc32(data),
                    **{f"x-amz-meta-{k}": v for k, v in (metadata or {}).items()},
                }
                self.wire.request("PUT", bucket, key, headers=headers, body=data)
            elif len(data) <= MULTIPART_THRESHOLD:
                self.s3.put_object(Bucket=bucket, Key=key, Body=data, **extra)
            else:
                self._put_multipart(bucket, key, data, extra)
        except (ClientError, BotoCoreError, WireError) as exc:
            raise _error(exc, f"writing s3://{bucket}/{key}") from exc

    def _put_multipart(self, bucket: str, key: str, data: bytes, extra: dict[str, Any]) -> None:
        upload_id = self.s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
        try:
            parts = []
            view = memoryview(data)
            for number, start in enumerate(range(0, len(data), PART_SIZE), 1):
                resp = self.s3.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                    Body=view[start : start + PART_SIZE].tobytes(), ChecksumAlgorithm=CHECKSUM,
                )  # fmt: skip
                part = {"PartNumber": number, "ETag": resp["ETag"]}
                if resp.get(f"Checksum{CHECKSUM}"):  # the server checked it; completing checks the parts' again
                    part[f"Checksum{CHECKSUM}"] = resp[f"Checksum{CHECKSUM}"]
                parts.append(part)
            self.s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            # an upload whose abort fails too holds no object; a lifecycle rule for incomplete uploads removes it
            with contextlib.suppress(ClientError, BotoCoreError):
                self.s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise

    def head(self, bucket: str, key: str) -> dict[str, str] | None:
        """The object's user metadata, or None when there is no such object."""
        if self.wire is not None:
            try:
                answer = self.wire.request("HEAD", bucket, key)
            except WireError as exc:
                err = _error(exc, f"reading s3://{bucket}/{key}")
                if err.reason in ("NotFound", "NoSuchBucket"):
                    return None
                raise err from exc
            prefix = "x-amz-meta-"
            return {k.lower()[len(prefix) :]: v for k, v in answer.headers.items() if k.lower().startswith(prefix)}
        try:
            resp = self.s3.head_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            err = _error(exc, f"reading s3://{bucket}/{key}")
            if err.reason in ("NotFound", "NoSuchBucket"):
                return None
            raise err from exc
        return {str(k): str(v) for k, v in (resp.get("Metadata") or {}).items()}

    def put_json(self, bucket: str, key: str, obj: Any) -> None:
        data = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8")
        self.put_bytes(bucket, key, data, content_type="application/json")

    def get_json(self, bucket: str, key: str) -> Any:
        data = self.get_bytes(bucket, key)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise StoreError("Unreadable", f"s3://{bucket}/{key} is not JSON: {exc}") from exc

    def ensure_bucket(self, bucket: str) -> None:
        """Create the bucket unless it exists."""
        try:
            self.s3.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if _error(exc, "").reason not in ("NotFound", "NoSuchBucket"):
                raise _error(exc, f"checking bucket {bucket}") from exc
        except BotoCoreError as exc:
            raise _error(exc, f"checking bucket {bucket}") from exc
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.region and self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.s3.create_bucket(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code != "BucketAlreadyOwnedByYou":
                raise _error(exc, f"creating bucket {bucket}") from exc
        except BotoCoreError as exc:
            raise _error(exc, f"creating bucket {bucket}") from exc
