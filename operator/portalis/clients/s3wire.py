"""S3's REST API spoken directly: requests signed with Signature Version 4 on one shared urllib3 pool.

``Store`` sends its listings, single-part writes, reads and heads through this path when it talks to an endpoint
it was given (the S3-compatible servers users run on premises): boto3 spent more CPU on each of those requests
(its event hooks, parameter validation, endpoint rules and response parsing) than the operator's other work
for a job. What boto3 is still used for (no endpoint, that is AWS with its region redirects and virtual-host
rules; multipart uploads; creating buckets) is unchanged.

Retries follow boto3's standard mode: up to ``ATTEMPTS`` attempts on connection errors, throttling and 5xx
answers, with jittered exponential backoff. Errors come back as ``WireError`` with the S3 error code (or the
HTTP status when the answer has no body, as for HEAD) for ``store`` to turn into a reason.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import random
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit

import urllib3

ATTEMPTS = 5  # boto3's standard mode: the first try and four retries
MAX_BACKOFF = 20.0
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
RETRY_STATUS = frozenset({500, 502, 503, 504})
RETRY_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
    }
)
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


class WireError(Exception):
    """An S3 request failed: ``code`` is the S3 error code, the HTTP status for an answer without a body, or
    ``Unavailable`` when the server could not be reached."""

    def __init__(self, code: str, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _uri(text: str) -> str:
    return quote(text, safe="-_.~")


def canonical_query(query: Mapping[str, str]) -> str:
    return "&".join(f"{_uri(k)}={_uri(v)}" for k, v in sorted(query.items()))


def sign(
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    headers: dict[str, str],
    payload_sha256: str,
    credentials: Credentials,
    region: str,
    now: datetime.datetime,
) -> dict[str, str]:
    """``headers`` with what Signature Version 4 adds (``x-amz-date``, ``x-amz-content-sha256``, the session
    token if any, and ``Authorization``), signing every header given plus ``host``. ``path`` is as sent (each
    segment already percent-encoded; S3 signs it as it is)."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {k.lower(): str(v).strip() for k, v in headers.items()}
    signed["host"] = host
    signed["x-amz-date"] = amz_date
    signed["x-amz-content-sha256"] = payload_sha256
    if credentials.token:
        signed["x-amz-security-token"] = credentials.token
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            path,
            canonical_query(query),
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = f"AWS4{credentials.secret_key}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {k: v for k, v in signed.items() if k != "host"}
    out["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, SignedHeaders={';'.join(names)}, "
        f"Signature={signature}"
    )
    return out


def error_of(status: int, body: bytes) -> WireError:
    """The error an S3 answer carries: its ``<Error><Code>`` (and message), else the HTTP status."""
    code, message = str(status), ""
    if body:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            root = None
        if root is not None:
            code = (root.findtext("Code") or root.findtext(f"{_NS}Code") or code).strip()
            message = (root.findtext("Message") or root.findtext(f"{_NS}Message") or "").strip()
    return WireError(code, f"HTTP {status} {code}" + (f": {message}" if message else ""), status)


@dataclass(frozen=True)
class Listing:
    """One page of ListObjectsV2: (key, size, etag) of each object, and the token of the next page if any."""

    objects: list[tuple[str, int, str]]
    next_token: str | None


def parse_listing(body: bytes, url_encoded: bool) -> Listing:
    root = ET.fromstring(body)
    objects = []
    for item in root.iter(f"{_NS}Contents"):
        key = item.findtext(f"{_NS}Key") or ""
        objects.append(
            (
                unquote_plus(key) if url_encoded else key,
                int(item.findtext(f"{_NS}Size") or 0),
                (item.findtext(f"{_NS}ETag") or "").strip('"'),
            )
        )
    truncated = (root.findtext(f"{_NS}IsTruncated") or "").strip().lower() == "true"
    token = root.findtext(f"{_NS}NextContinuationToken")
    return Listing(objects, token if truncated and token else None)


class S3Wire:
    """Signed S3 requests to one endpoint; thread-safe (one urllib3 pool, ``pool_size`` connections)."""

    def __init__(
        self,
        endpoint: str,
        region: str,
        credentials: Callable[[], Credentials | None],
        path_style: bool = True,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"S3 endpoint {endpoint!r} is not an http(s) URL")
        self.scheme = parts.scheme
        self.netloc = parts.netloc
        self.base_path = parts.path.rstrip("/")
        self.region = region
        self.path_style = path_style
        self.credentials = credentials
        self.sleep = sleep
        self.requests = 0  # requests sent (each attempt), for tests and figures
        # certificates are checked against the CA bundle boto3 would use for the same endpoint
        ca_bundle = os.environ.get("AWS_CA_BUNDLE") or None
        self.pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=pool_size,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_bundle,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=False,
        )

    def request(
        self,
        method: str,
        bucket: str,
        key: str = "",
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        """Send the request (retrying what boto3 retries); a 2xx answer, its body unread when ``stream``, else read
        whole (``.data``) and its connection back in the pool."""
        query = dict(query or {})
        if self.path_style:
            host = self.netloc
            path = f"{self.base_path}/{quote(bucket, safe='')}" + (f"/{quote(key, safe='/~')}" if key else "")
        else:
            host = f"{bucket}.{self.netloc}"
            path = f"{self.base_path}/{quote(key, safe='/~')}"
        payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        url = f"{self.scheme}://{host}{path}" + (f"?{canonical_query(query)}" if query else "")
        attempt = 0
        while True:
            attempt += 1
            credentials = self.credentials()
            sent = dict(headers or {})
            if credentials is not None:
                now = datetime.datetime.now(datetime.UTC)
                sent = sign(method, host, path, query, sent, payload, credentials, self.region, now)
            else:
                sent["x-amz-content-sha256"] = payload
            self.requests += 1
            try:
                resp = self.pool.request(
                    method, url, body=body or None, headers=sent, preload_content=False, redirect=False
                )
            except urllib3.exceptions.HTTPError as exc:
                if attempt >= ATTEMPTS:
                    raise WireError("Unavailable", f"{method} {url}: {exc}") from exc
                self._backoff(attempt)
                continue
            if 200 <= resp.status < 300:
                if not stream:
                    _ = resp.data  # read whole (kept on the response) and the connection given back
                    resp.release_conn()
                return resp
            data = resp.data
            resp.release_conn()
            error = error_of(resp.status, data if method != "HEAD" else b"")
            if attempt < ATTEMPTS and (resp.status in RETRY_STATUS or error.code in RETRY_CODES):
                self._backoff(attempt)
                continue
            raise error

    def _backoff(self, attempt: int) -> None:
        self.sleep(random.random() * min(MAX_BACKOFF, 2.0 ** (attempt - 1)))

    def list_page(self, bucket: str, prefix: str, page_size: int, token: str | None) -> Listing:
        query: dict[str, Any] = {"list-type": "2", "prefix": prefix, "max-keys": str(page_size), "encoding-type": "url"}
        if token:
            query["continuation-token"] = token
        resp = self.request("GET", bucket, query=query)
        return parse_listing(resp.data, url_encoded=True)
