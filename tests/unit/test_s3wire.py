"""The direct S3 path's pure parts: Signature Version 4 as botocore computes it, listings and error answers."""

from __future__ import annotations

import datetime
import hashlib
import re

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from portalis.clients.s3wire import Credentials, S3Wire, WireError, canonical_query, error_of, parse_listing, sign

NOW = datetime.datetime(2026, 12, 5, 9, 30, 12, tzinfo=datetime.UTC)


def botocore_signature(
    method: str, url: str, headers: dict[str, str], body: bytes, creds: Credentials, region: str
) -> tuple[str, str]:
    """(signed headers, signature) of botocore's S3 signer for the same request at NOW."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    request.context["timestamp"] = NOW.strftime("%Y%m%dT%H%M%SZ")
    auth = S3SigV4Auth(BotoCredentials(creds.access_key, creds.secret_key, creds.token), "s3", region)
    auth._modify_request_before_signing(request)
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    return auth.signed_headers(auth.headers_to_sign(request)), signature


def ours(
    method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes, creds: Credentials
) -> tuple[str, str]:
    payload = hashlib.sha256(body).hexdigest()
    out = sign(method, "127.0.0.1:9000", path, query, headers, payload, creds, "eu-west-1", NOW)
    found = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=(.+?), SignedHeaders=(.+?), Signature=([0-9a-f]{64})", out["authorization"]
    )
    assert found is not None
    assert found.group(1) == f"{creds.access_key}/20261205/eu-west-1/s3/aws4_request"
    return found.group(2), found.group(3)


@pytest.mark.parametrize("token", [None, "session-token/with+chars="])
def test_a_put_is_signed_as_botocore_signs_it(token: str | None) -> None:
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    headers = {"content-type": "application/json", "x-amz-checksum-crc32": "AAAAAA==", "x-amz-meta-engine": "py2many"}
    body = b'{"items": []}'
    path = "/bucket/plans/ns/job%20one/%C3%BC.json"
    expected = botocore_signature("PUT", f"http://127.0.0.1:9000{path}", headers, body, creds, "eu-west-1")
    assert ours("PUT", path, {}, headers, body, creds) == expected


@settings(max_examples=50, deadline=None)
@given(
    prefix=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=20),
    token=st.one_of(st.none(), st.text(alphabet="abcXYZ019+/=", min_size=1, max_size=30)),
)
def test_a_listing_is_signed_as_botocore_signs_it(prefix: str, token: str | None) -> None:
    creds = Credentials("AK", "SK")
    query = {"list-type": "2", "prefix": prefix, "max-keys": "1000", "encoding-type": "url"}
    if token:
        query["continuation-token"] = token
    url = f"http://127.0.0.1:9000/bucket?{canonical_query(query)}"
    expected = botocore_signature("GET", url, {}, b"", creds, "eu-west-1")
    assert ours("GET", "/bucket", query, {}, b"", creds) == expected


def test_a_listing_page_is_read_with_its_keys_decoded() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>src%2F</Prefix>
<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<NextContinuationToken>c2VjcmV0</NextContinuationToken>
<Contents><Key>src/a+b%C3%BC.py</Key><Size>12</Size><ETag>&quot;abc&quot;</ETag></Contents>
<Contents><Key>src/z.py</Key><Size>0</Size><ETag>"def-2"</ETag></Contents></ListBucketResult>"""
    page = parse_listing(body, url_encoded=True)
    assert page.objects == [("src/a bü.py", 12, "abc"), ("src/z.py", 0, "def-2")]
    assert page.next_token == "c2VjcmV0"
    last = body.replace(b"<IsTruncated>true", b"<IsTruncated>false")
    assert parse_listing(last, url_encoded=True).next_token is None


def test_an_error_answer_gives_its_code_or_the_status() -> None:
    body = b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code><Message>The key does not exist</Message></Error>"
    err = error_of(404, body)
    assert (err.code, err.status) == ("NoSuchKey", 404) and "The key does not exist" in str(err)
    assert error_of(403, b"").code == "403"  # HEAD answers carry no body
    assert error_of(502, b"<html>bad gateway</html").code == "502"


def test_an_unreachable_server_is_tried_five_times_with_backoff() -> None:
    slept: list[float] = []
    wire = S3Wire("http://127.0.0.1:9", "us-east-1", lambda: Credentials("a", "b"), sleep=slept.append)
    with pytest.raises(WireError) as err:
        wire.request("GET", "bucket", "key")
    assert err.value.code == "Unavailable"
    assert wire.requests == 5 and len(slept) == 4
    assert all(0 <= s <= min(20.0, 2.0**i) for i, s in enumerate(slept))


def test_an_endpoint_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        S3Wire("ftp://example.com", "us-east-1", lambda: None)


def test_certificates_are_checked_against_the_bundle_boto3_would_use(monkeypatch: pytest.MonkeyPatch) -> None:
    def creds() -> Credentials:
        return Credentials("a", "b")

    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    default = S3Wire("https://s3.example.internal", "us-east-1", creds)
    assert default.pool.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"
    assert default.pool.connection_pool_kw["ca_certs"] is None  # the system's trust store
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/portalis/ca.crt")
    private = S3Wire("https://s3.example.internal", "us-east-1", creds)
    assert private.pool.connection_pool_kw["ca_certs"] == "/etc/portalis/ca.crt"
