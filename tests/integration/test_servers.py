"""The test servers are the real thing: redis-server over RESP, versitygw speaking S3 over HTTP."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import boto3
import pytest
import redis

from portalis.clients.store import Store, StoreError
from portalis_devcluster.servers import RedisServer, S3Server, ServerError


def test_redis_server_keeps_acknowledged_writes_across_a_restart(redis_server: RedisServer) -> None:
    r = redis.Redis.from_url(redis_server.url)
    r.set("portalis:test:key", "value")
    r.execute_command("BGREWRITEAOF")  # type: ignore[no-untyped-call]
    r.close()
    redis_server.restart()
    r = redis.Redis.from_url(redis_server.url)
    assert r.get("portalis:test:key") == b"value"
    r.close()


def test_s3_server_speaks_s3_over_http(s3_server: S3Server) -> None:
    assert s3_server.endpoint.startswith("http://127.0.0.1:")
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name=s3_server.region,
    )
    s3.create_bucket(Bucket="portalis-fixture-check")
    s3.put_object(Bucket="portalis-fixture-check", Key="src/a.py", Body=b"print('hi')\n")
    listed = s3.list_objects_v2(Bucket="portalis-fixture-check", Prefix="src/")
    assert [o["Key"] for o in listed["Contents"]] == ["src/a.py"]
    assert s3.get_object(Bucket="portalis-fixture-check", Key="src/a.py")["Body"].read() == b"print('hi')\n"


def test_s3_server_keeps_its_objects_across_a_restart_and_a_crash(tmp_path: Path) -> None:
    server = S3Server(workdir=tmp_path / "s3").start()
    try:
        store = Store(server.endpoint, server.region, server.access_key, server.secret_key)
        store.ensure_bucket("kept")
        store.put_bytes("kept", "out/a.rs", b"fn a() {}\n", metadata={"engine": "py2many"})
        port = server.port
        server.restart()
        assert server.port == port
        assert store.get_bytes("kept", "out/a.rs") == b"fn a() {}\n"
        server.kill()
        with pytest.raises(StoreError) as err:
            store.get_bytes("kept", "out/a.rs")
        assert err.value.reason == "Unavailable"
        server.start()
        assert store.head("kept", "out/a.rs") == {"engine": "py2many"}
    finally:
        server.stop()


def test_s3_server_listens_on_the_address_it_is_given_and_serves_populated_files(tmp_path: Path) -> None:
    server = S3Server(workdir=tmp_path / "s3", bind="127.0.0.2").start()
    try:
        assert server.endpoint == f"http://127.0.0.2:{server.port}"
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", server.port)) != 0  # not on the default address
        argv, env = server.command()
        assert argv[:3] == [str(argv[0]), "--port", f"127.0.0.2:{server.port}"] and argv[-1] == str(server.data_dir)
        assert env == {"ROOT_ACCESS_KEY_ID": server.access_key, "ROOT_SECRET_ACCESS_KEY": server.secret_key}
        store = Store(server.endpoint, server.region, server.access_key, server.secret_key)
        store.ensure_bucket("seeded")
        assert server.populate("seeded", [("src/a.py", b"a = 1\n"), ("src/pkg/b.py", b"b = 2\n")]) == 2
        assert [(o.key, o.size, o.etag) for o in store.list("seeded", "src/")] == [
            ("src/a.py", 6, hashlib.md5(b"a = 1\n").hexdigest()),
            ("src/pkg/b.py", 6, hashlib.md5(b"b = 2\n").hexdigest()),
        ]
        assert store.get_bytes("seeded", "src/pkg/b.py") == b"b = 2\n"
        with pytest.raises(ServerError):
            server.populate("no-such-bucket", [("a.py", b"")])
    finally:
        server.stop()
