"""The S3 store against a real S3 server (versitygw) over HTTP: listing pages up to 100,000 objects, multipart
uploads, overwrites, checksums, errors by reason (a missing bucket, rejected credentials), metadata and JSON."""

from __future__ import annotations

import base64
import hashlib
import shutil
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from portalis.clients import store as store_module
from portalis.clients.store import Store, StoreError
from portalis_devcluster.servers import S3Server


@pytest.fixture
def store(s3_server: S3Server) -> Store:
    return Store(s3_server.endpoint, s3_server.region, s3_server.access_key, s3_server.secret_key)


@pytest.fixture
def bucket(store: Store) -> str:
    name = f"store-{uuid.uuid4().hex[:12]}"
    store.ensure_bucket(name)
    return name


def test_listing_pages_through_more_than_a_thousand_objects(store: Store, bucket: str) -> None:
    keys = [f"src/pkg{i % 10}/mod_{i:05d}.py" for i in range(1100)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: store.put_bytes(bucket, k, b"x = 1\n" * (1 + len(k) % 3)), keys))
    store.put_bytes(bucket, "elsewhere/a.py", b"")

    listed = list(store.list(bucket, "src/"))  # the default page is 1000 keys: two requests
    assert [o.key for o in listed] == sorted(keys)
    assert all(o.size == 6 * (1 + len(o.key) % 3) for o in listed)
    assert all(o.etag and '"' not in o.etag for o in listed)

    small_pages = list(store.list(bucket, "src/pkg3/", page_size=7))  # 110 keys over 16 pages
    assert [o.key for o in small_pages] == sorted(k for k in keys if k.startswith("src/pkg3/"))
    assert list(store.list(bucket, "nothing-here/")) == []


def test_missing_bucket_and_key_raise_with_a_reason(store: Store, bucket: str) -> None:
    with pytest.raises(StoreError) as listing:
        list(store.list("no-such-bucket-portalis", ""))
    assert listing.value.reason == "NoSuchBucket"
    with pytest.raises(StoreError) as reading:
        store.get_bytes(bucket, "missing.py")
    assert reading.value.reason == "NotFound"
    assert "missing.py" in str(reading.value)
    assert store.head(bucket, "missing.py") is None
    assert store.head("no-such-bucket-portalis", "a.py") is None
    with pytest.raises(StoreError) as writing:
        store.put_bytes("no-such-bucket-portalis", "out/a.rs", b"fn main() {}\n")
    assert writing.value.reason == "NoSuchBucket"
    assert "s3://no-such-bucket-portalis/out/a.rs" in str(writing.value)


def test_listing_pages_through_100000_objects_in_key_order(s3_server: S3Server, store: Store, bucket: str) -> None:
    n = 100_000
    keys = [f"repo/pkg{i // 1000:03d}/sub{(i // 100) % 10}/mod_{i:06d}.py" for i in range(n)]
    started = time.monotonic()
    try:
        assert s3_server.populate(bucket, ((k, b"x = %d\n" % i) for i, k in enumerate(keys))) == n
        populated = time.monotonic() - started
        store.put_bytes(bucket, "repo/zz/last.py", b"y = 2\n")  # one through the API, listed with the rest
        store.put_bytes(bucket, "other/a.py", b"")
        assert store.wire is not None  # listings go out on the direct path (every request counted there)
        sent = store.wire.requests

        started = time.monotonic()
        listed = list(store.list(bucket, "repo/"))
        seconds = time.monotonic() - started
        requests = store.wire.requests - sent
    finally:
        shutil.rmtree(s3_server.data_dir / bucket)  # 100,000 files: not left for the rest of the run
    assert requests == 101  # 1000 keys a page
    assert [o.key for o in listed] == [*keys, "repo/zz/last.py"]  # every key once, in order
    assert listed[0].size == len(b"x = 0\n") and listed[-1].size == 6
    assert listed[12345].etag == hashlib.md5(b"x = 12345\n").hexdigest()
    assert seconds < 120, f"listing 100,001 objects took {seconds:.0f}s (populating {populated:.0f}s)"


def test_a_large_output_goes_up_in_parts_and_reads_back_whole(store: Store, bucket: str) -> None:
    data = bytes(range(256)) * (41 * 4096 + 7)  # 43 MB: over the threshold, not a multiple of the part size
    assert len(data) > store_module.MULTIPART_THRESHOLD
    store.put_bytes(bucket, "out/big.rs", data, metadata={"engine": "py2many"})
    head = store.s3.head_object(Bucket=bucket, Key="out/big.rs", ChecksumMode="ENABLED")
    parts = -(-len(data) // store_module.PART_SIZE)
    assert head["ETag"].strip('"').endswith(f"-{parts}")  # completed from its parts
    assert head["ContentLength"] == len(data) and head["Metadata"] == {"engine": "py2many"}
    assert store.get_bytes(bucket, "out/big.rs") == data
    assert store.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_failed_multipart_upload_is_aborted_and_leaves_no_object(
    store: Store, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store.s3.complete_multipart_upload

    def complete_with_a_bad_part(**kwargs: object) -> object:
        parts = kwargs["MultipartUpload"]["Parts"]  # type: ignore[index]
        parts[1]["ETag"] = '"' + "0" * 32 + '"'
        return real(**kwargs)

    monkeypatch.setattr(store.s3, "complete_multipart_upload", complete_with_a_bad_part)
    with pytest.raises(StoreError) as err:
        store.put_bytes(bucket, "out/broken.rs", b"z" * (store_module.MULTIPART_THRESHOLD + 1))
    assert err.value.reason == "InvalidPart", err.value
    assert store.head(bucket, "out/broken.rs") is None
    assert store.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_overwriting_a_key_leaves_one_object_with_the_last_content(store: Store, bucket: str) -> None:
    for i in range(3):  # a redelivered item writes its output again under the same key
        store.put_bytes(bucket, "out/pkg/a.rs", f"fn f() -> i64 {{ {i} }}\n".encode(), metadata={"attempt": str(i)})
    assert [o.key for o in store.list(bucket, "out/")] == ["out/pkg/a.rs"]
    assert store.get_bytes(bucket, "out/pkg/a.rs") == b"fn f() -> i64 { 2 }\n"
    assert store.head(bucket, "out/pkg/a.rs") == {"attempt": "2"}
    big = b"b" * (store_module.MULTIPART_THRESHOLD + 1)
    store.put_bytes(bucket, "out/pkg/a.rs", big)  # a multipart write replaces it too
    store.put_bytes(bucket, "out/pkg/a.rs", b"small again\n")
    assert [(o.key, o.size) for o in store.list(bucket, "out/")] == [("out/pkg/a.rs", 12)]


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_the_server_keeps_the_checksum_of_each_write_and_refuses_a_corrupted_body(store: Store, bucket: str) -> None:
    data = 'fn main() { println!("é"); }\n'.encode()
    store.put_bytes(bucket, "out/a.rs", data)
    head = store.s3.head_object(Bucket=bucket, Key="out/a.rs", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == _b64(zlib.crc32(data).to_bytes(4, "big"))
    assert head["ETag"].strip('"') == hashlib.md5(data).hexdigest()

    for wrong in (
        {"ChecksumSHA256": _b64(hashlib.sha256(b"something else").digest())},
        {"ContentMD5": _b64(hashlib.md5(b"something else").digest())},
    ):
        with pytest.raises(ClientError) as err:
            store.s3.put_object(Bucket=bucket, Key="out/a.rs", Body=b"corrupted in flight", **wrong)
        assert store_module._error(err.value, "writing").reason == "ChecksumMismatch", err.value.response["Error"]
        assert store.get_bytes(bucket, "out/a.rs") == data  # the object before it is untouched
        with pytest.raises(ClientError):
            store.s3.put_object(Bucket=bucket, Key="out/new.rs", Body=b"corrupted in flight", **wrong)
        assert store.head(bucket, "out/new.rs") is None  # and nothing new was stored


def test_rejected_credentials_raise_credentials_rejected_and_change_nothing(
    s3_server: S3Server, store: Store, bucket: str
) -> None:
    store.put_bytes(bucket, "src/a.py", b"a = 1\n")
    wrong_secret = Store(s3_server.endpoint, s3_server.region, s3_server.access_key, "not-the-secret")
    unknown_key = Store(s3_server.endpoint, s3_server.region, "no-such-access-key", s3_server.secret_key)
    for other, code in ((wrong_secret, "SignatureDoesNotMatch"), (unknown_key, "InvalidAccessKeyId")):
        with pytest.raises(StoreError) as listing:
            list(other.list(bucket, "src/"))
        assert listing.value.reason == "CredentialsRejected"
        assert code in str(listing.value) and f"s3://{bucket}/src/" in str(listing.value)
        with pytest.raises(StoreError) as writing:
            other.put_bytes(bucket, "src/a.py", b"overwritten\n")
        assert writing.value.reason == "CredentialsRejected"
        with pytest.raises(StoreError) as reading:
            other.get_bytes(bucket, "src/a.py")
        assert reading.value.reason == "CredentialsRejected"
    assert store.get_bytes(bucket, "src/a.py") == b"a = 1\n"
    assert [o.key for o in store.list(bucket, "src/")] == ["src/a.py"]


def test_get_bytes_refuses_objects_over_the_limit(store: Store, bucket: str) -> None:
    store.put_bytes(bucket, "big.py", b"a" * 2048)
    with pytest.raises(StoreError) as err:
        store.get_bytes(bucket, "big.py", max_bytes=2047)
    assert err.value.reason == "TooLarge"
    assert "2048 bytes" in str(err.value) and "2047" in str(err.value)
    assert store.get_bytes(bucket, "big.py", max_bytes=2048) == b"a" * 2048


def test_put_keeps_metadata_and_content_type(store: Store, bucket: str) -> None:
    meta = {"source-sha256": "ab" * 32, "engine": "py2many", "engine-version": "0.9+1"}
    store.put_bytes(bucket, "out/a.rs", "fn main() {}\n// é\n".encode(), metadata=meta)
    assert store.head(bucket, "out/a.rs") == meta
    assert store.get_bytes(bucket, "out/a.rs").decode() == "fn main() {}\n// é\n"
    head = store.s3.head_object(Bucket=bucket, Key="out/a.rs")
    assert head["ContentType"] == "text/plain; charset=utf-8"
    store.put_bytes(bucket, "out/a.rs", b"fn main() { }\n")  # overwriting replaces content and metadata
    assert store.head(bucket, "out/a.rs") == {}
    assert store.get_bytes(bucket, "out/a.rs") == b"fn main() { }\n"


def test_json_round_trip(store: Store, bucket: str) -> None:
    obj = {"version": 1, "items": [{"id": "000001", "key": "src/ü.py", "size": 12}], "ok": True, "none": None}
    store.put_json(bucket, "plans/job.json", obj)
    assert store.get_json(bucket, "plans/job.json") == obj
    assert store.s3.head_object(Bucket=bucket, Key="plans/job.json")["ContentType"] == "application/json"
    store.put_bytes(bucket, "plans/broken.json", b"{not json")
    with pytest.raises(StoreError) as err:
        store.get_json(bucket, "plans/broken.json")
    assert err.value.reason == "Unreadable"


def test_ensure_bucket_is_idempotent_and_from_env_reads_the_pod_settings(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3_server.client_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PORTALIS_S3_FORCE_PATH_STYLE", "true")
    store = Store.from_env()
    assert store.endpoint == s3_server.endpoint
    name = f"env-{uuid.uuid4().hex[:12]}"
    store.ensure_bucket(name)
    store.ensure_bucket(name)
    store.put_bytes(name, "a.py", b"print(1)\n")
    assert [o.key for o in store.list(name, "")] == ["a.py"]


def test_unreachable_endpoint_is_unavailable() -> None:
    store = Store("http://127.0.0.1:9", access_key="x", secret_key="y")
    with pytest.raises(StoreError) as err:
        store.get_bytes("b", "k")
    assert err.value.reason == "Unavailable"
