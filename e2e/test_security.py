"""Security end to end: the operator never shows a secret value, and the Alertmanager webhook refuses what it must.

Secrets: TranslationClusters whose Redis URL Secret holds a password, whose S3 credentials hold a recognisable
secret key and whose engine API key is recognisable too, each with a TranslationJob, reconcile for a while. Three
Redis URLs carry the same password: the test Redis (which has none; redis-py then carries on without one, so the
job is planned and queued), a Redis that requires another password (every call fails on AUTH, as after a
rotation), and a closed port (connection refused); the error paths are the ones most likely to print a URL. Then
none of the values may appear in the operator's log, in the namespace's Events, in any object in the namespace
other than the Secrets themselves (the custom resources and their status, the RayClusters and DaskCluster, pods,
services, config maps), in the operator's /metrics, in the objects the operator wrote to S3 for the jobs, or in
what it queued in Redis. A failure names every place a value was found.

Webhook: ``portalis.clients.alerts.AlertReceiver`` on a loopback port, with a token file: no token -> 401, a wrong
token of the same length -> 401, an oversized body -> 413 (with and without a Content-Length), a burst beyond the
rate limit -> 429 with Retry-After; the right token gets 202, so the refusals are not vacuous.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from e2e.helpers import Cluster
from e2e.jobs import simple_module
from portalis.clients.store import Store
from portalis_devcluster.cluster import free_port
from portalis_devcluster.operator import OperatorProcess
from portalis_devcluster.servers import RedisServer, S3Server

REDIS_PASSWORD = "S3cr3t-redis-pw"
S3_ACCESS_KEY = "AKIAPORTALISLEAKTEST7"
S3_SECRET_KEY = "S3cr3t-s3-key-7Hq2vZ9pLw4xN8rT"  # the account of an S3 server of this test's own
ENGINE_API_KEY = "sk-portalis-S3cr3t-engine-key-5mK8"
SECRET_VALUES = {"Redis password": REDIS_PASSWORD, "S3 secret key": S3_SECRET_KEY, "engine API key": ENGINE_API_KEY}
ARTIFACTS = "portalis-sec-artifacts"
SOURCES = "portalis-sec-sources"
RECONCILE_SECONDS = 20.0

# ---- helpers ------------------------------------------------------------------------------------------------


def _secret(name: str, values: dict[str, str]) -> str:
    data = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data})


def _needles() -> dict[str, list[str]]:
    """Each secret value as it could appear: itself and base64-encoded (as copied out of a Secret's data)."""
    return {label: [v, base64.b64encode(v.encode()).decode()] for label, v in SECRET_VALUES.items()}


def _json_paths(value: Any, needle: str, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _json_paths(v, needle, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _json_paths(v, needle, f"{path}[{i}]")
    elif isinstance(value, str) and needle in value:
        yield f"{path or '.'} = {value[:300]!r}"


def _in_objects(items: list[dict[str, Any]], where: str) -> list[str]:
    found = []
    for obj in items:
        meta = obj.get("metadata") or {}
        name = f"{obj.get('kind', '?')} {meta.get('namespace', '')}/{meta.get('name', '?')}"
        for label, needles in _needles().items():
            for needle in needles:
                for path in _json_paths(obj, needle):
                    found.append(f"{label} in {where}: {name} {path}")
    return found


def _in_text(text: str, where: str) -> list[str]:
    found = []
    for label, needles in _needles().items():
        for n, line in enumerate(text.splitlines(), 1):
            if any(needle in line for needle in needles):
                found.append(f"{label} in {where}, line {n}: {line[:500]}")
    return found


def _redis_dump(client: redis.Redis, key: bytes) -> str:
    """Everything stored under ``key``, whatever its type, as text."""
    raw = client.type(key)
    kind = raw.decode() if isinstance(raw, bytes) else str(raw)
    read: dict[str, Callable[[], Any]] = {
        "string": lambda: client.get(key),
        "hash": lambda: client.hgetall(key),
        "list": lambda: client.lrange(key, 0, -1),
        "set": lambda: client.smembers(key),
        "zset": lambda: client.zrange(key, 0, -1),
        "stream": lambda: client.xrange(key),
    }
    return repr(read.get(kind, lambda: b"")())


# ---- the operator never shows a secret ----------------------------------------------------------------------


@pytest.fixture
def redis_with_another_password(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir=tmp_path / "redis-pw", appendonly=False).start()
    redis.Redis(port=server.port).config_set("requirepass", "another-password")
    yield server
    server.stop()


@pytest.fixture
def s3_with_the_test_keys(tmp_path: Path) -> Iterator[S3Server]:
    server = S3Server(workdir=tmp_path / "s3-keys", access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY).start()
    yield server
    server.stop()


@pytest.mark.cluster
def test_the_operator_never_shows_secret_values(
    operator: OperatorProcess,
    namespace: str,
    redis_server: RedisServer,
    redis_with_another_password: RedisServer,
    s3_with_the_test_keys: S3Server,
) -> None:
    s3_server = s3_with_the_test_keys
    c = Cluster(operator.kube, namespace)
    redis_urls = {
        "leaky": redis_server.port,  # no password on the server: accepted
        "leaky-wrongpass": redis_with_another_password.port,  # WRONGPASS on every call
        "leaky-down": free_port(),  # nothing listens: connection refused
    }
    for name, port in redis_urls.items():
        url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
        creds = {"url": url, "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}
        c.kubectl("apply", "-f", "-", input=_secret(f"{name}-creds", creds))
    c.kubectl("apply", "-f", "-", input=_secret("portalis-llm", {"api-key": ENGINE_API_KEY}))
    store = Store(s3_server.endpoint, access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY)
    for bucket in (ARTIFACTS, SOURCES):
        store.ensure_bucket(bucket)
    for i in range(3):
        store.put_bytes(SOURCES, f"{namespace}/mod_{i}.py", simple_module(i, namespace))

    def cluster(name: str, backend: str, workers: int) -> dict[str, Any]:
        return {
            "apiVersion": "portalis.dev/v1alpha1",
            "kind": "TranslationCluster",
            "metadata": {"name": name},
            "spec": {
                "backend": backend,
                "engine": {
                    "name": "openai",
                    "endpoint": "http://127.0.0.1:9/v1",
                    "model": "some-model",
                    "apiKeySecretRef": {"name": "portalis-llm", "key": "api-key"},
                },
                "workers": {"gpuType": "H100", "minWorkers": workers, "maxWorkers": 2},
                "queue": {"urlSecretRef": {"name": f"{name}-creds", "key": "url"}},
                "storage": {
                    "endpoint": s3_server.endpoint,
                    "bucket": ARTIFACTS,
                    "forcePathStyle": True,
                    "credentialsSecretRef": {"name": f"{name}-creds"},
                },
                "pricing": {"onDemandGpuHour": "3.60"},
                "budget": {"daily": "100.00"},
            },
        }

    def job(name: str, cluster: str) -> dict[str, Any]:
        return {
            "apiVersion": "portalis.dev/v1alpha1",
            "kind": "TranslationJob",
            "metadata": {"name": name},
            "spec": {"clusterRef": {"name": cluster}, "source": {"bucket": SOURCES, "prefix": f"{namespace}/"}},
        }

    bodies = [cluster("leaky", "Ray", 1), cluster("leaky-wrongpass", "Dask", 1), cluster("leaky-down", "Ray", 0)]
    bodies += [job("job", "leaky"), job("job-wrongpass", "leaky-wrongpass"), job("job-down", "leaky-down")]
    for body in bodies:
        c.kubectl("apply", "-f", "-", input=json.dumps(body))

    time.sleep(RECONCILE_SECONDS)  # let the operator reconcile, meter, plan, queue and retry for a while
    for name in redis_urls:
        tc = c.get("tc", name)
        assert (tc.get("status") or {}).get("conditions"), f"{name} was never reconciled: {tc.get('status')}"
    tj = c.get("tj", "job")
    assert (tj.get("status") or {}).get("conditions"), f"the job was never reconciled: {tj.get('status')}"
    log = operator.log.read_text(errors="replace")
    assert f"{namespace}/leaky" in log, "the operator's log says nothing about the clusters; is it watching?"
    assert f"{namespace}/leaky-down" in log, "the operator logged nothing about the cluster whose Redis is down"

    leaks: list[str] = []
    leaks += _in_text(log, f"the operator's log ({operator.log})")
    events = c.get("events")["items"]
    leaks += _in_objects(events, "Events")
    kinds = "translationclusters,translationjobs,rayclusters,daskclusters,pods,services,configmaps"
    leaks += _in_objects(c.get(kinds)["items"], "objects")
    with urllib.request.urlopen(operator.metrics_url, timeout=10) as resp:
        leaks += _in_text(resp.read().decode(errors="replace"), "the operator's /metrics")
    for bucket in (ARTIFACTS, SOURCES):
        for obj in store.list(bucket, ""):
            if namespace in obj.key:
                text = store.get_bytes(bucket, obj.key).decode(errors="replace")
                leaks += _in_text(text, f"s3://{bucket}/{obj.key}")
    queue = redis.Redis(port=redis_server.port)
    for key in queue.scan_iter(match=f"*{namespace}*"):
        leaks += _in_text(_redis_dump(queue, key), f"Redis key {key!r}")
    if S3_ACCESS_KEY in log:
        print(f"note: the S3 access key id (an identifier, not a secret) appears in {operator.log}")
    assert not leaks, f"{len(leaks)} secret values shown:\n" + "\n".join(leaks)


# ---- the Alertmanager webhook -------------------------------------------------------------------------------

TOKEN = "t0ken-for-the-alertmanager-webhook-4f1c9e2a"
ALERT = json.dumps(
    {
        "version": "4",
        "status": "firing",
        "receiver": "portalis",
        "alerts": [{"status": "firing", "labels": {"alertname": "GpuEccErrors", "Hostname": "node-sec-test"}}],
    }
).encode()


class Receiver:
    """The operator's webhook receiver on its own event loop in a thread, listening on a free loopback port."""

    def __init__(self, token_file: Path, **options: Any) -> None:
        try:
            from portalis.clients.alerts import AlertReceiver
        except ImportError as exc:
            pytest.skip(f"no Alertmanager webhook receiver to test: portalis.clients.alerts.AlertReceiver ({exc})")
        self.received: list[Any] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.receiver = AlertReceiver(self._on_alerts, token_file, "127.0.0.1", 0, **options)
        asyncio.run_coroutine_threadsafe(self.receiver.start(), self.loop).result(10)
        self.port = int(self.receiver.port)
        self.max_body_bytes = int(getattr(self.receiver, "max_body_bytes", 1024 * 1024))

    def _on_alerts(self, payload: Any) -> bool:
        self.received.append(payload)
        return True

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.receiver.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def post(self, body: bytes = ALERT, token: str | None = TOKEN, **headers: str) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        sent = {"Content-Type": "application/json", **headers}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        conn.request("POST", "/alerts", body=body, headers=sent)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp

    def raw_status(self, head: bytes, body: Iterator[bytes]) -> int:
        """Send ``head`` and then ``body`` from another thread while reading the answer, as a client that keeps
        sending after the server has answered does; the status code of the answer."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)

        def send() -> None:
            try:
                for chunk in body:
                    sock.sendall(chunk)
            except OSError:
                pass  # the server answered and closed the connection: fine

        sock.sendall(head)
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        finally:
            sock.close()
            sender.join(10)
        assert data.startswith(b"HTTP/1."), f"no HTTP answer: {data[:200]!r}"
        return int(data.split(b" ", 2)[1])


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture
def receiver(token_file: Path) -> Iterator[Receiver]:
    r = Receiver(token_file)
    yield r
    r.stop()


def test_webhook_accepts_the_right_token(receiver: Receiver) -> None:
    resp = receiver.post()
    assert resp.status == 202
    assert len(receiver.received) == 1


def test_webhook_without_a_token_is_refused(receiver: Receiver) -> None:
    resp = receiver.post(token=None)
    assert resp.status == 401
    assert resp.getheader("WWW-Authenticate", "").startswith("Bearer")
    for header in ({"Authorization": "Bearer"}, {"Authorization": "Bearer "}, {"Authorization": f"Basic {TOKEN}"}):
        assert receiver.post(ALERT, None, **header).status == 401, header
    assert receiver.received == []


def test_webhook_with_a_wrong_token_of_the_same_length_is_refused(receiver: Receiver) -> None:
    wrong = TOKEN[:-1] + ("x" if TOKEN[-1] != "x" else "y")
    assert len(wrong) == len(TOKEN)
    assert receiver.post(token=wrong).status == 401
    assert receiver.post(token=TOKEN + "x").status == 401
    assert receiver.post(token=TOKEN[:-1]).status == 401
    assert receiver.received == []


def test_webhook_refuses_an_oversized_body(receiver: Receiver) -> None:
    size = receiver.max_body_bytes + 1
    head = (
        f"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    assert receiver.raw_status(head, iter([b"x" * size])) == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is only known while reading
        piece = b"x" * 65536
        for _ in range(size // len(piece) + 2):
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        yield b"0\r\n\r\n"

    head = (
        f"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    assert receiver.raw_status(head, chunks()) == 413
    assert receiver.received == []


def test_webhook_rate_limits_a_burst(receiver: Receiver) -> None:
    statuses: list[int] = []
    retry_after: list[str | None] = []
    burst = int(getattr(getattr(receiver.receiver, "limiter", None), "burst", 40))
    for _ in range(burst * 2 + 20):
        resp = receiver.post()
        statuses.append(resp.status)
        if resp.status == 429:
            retry_after.append(resp.getheader("Retry-After"))
    assert statuses[0] == 202
    assert 429 in statuses, f"no request of a burst of {len(statuses)} was rate limited: {set(statuses)}"
    assert set(statuses) <= {202, 429}, statuses
    assert all(r and r.isdigit() for r in retry_after), retry_after
    # once limited, the limit holds for unauthenticated requests too (they are refused before the token is read)
    assert receiver.post(token=None).status == 429
