"""The S3 store against a real S3 server over HTTP: listing pages, errors by reason, metadata and JSON."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

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
