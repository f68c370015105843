"""The test servers are the real thing: redis-server over RESP, an S3 server over HTTP."""

from __future__ import annotations

import boto3
import redis

from portalis_devcluster.servers import RedisServer, S3Server


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
