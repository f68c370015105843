"""``POST /alerts`` on a real loopback port: authentication, limits, validation, and payloads that never crash it.

The receiver runs on its own event loop in a thread, as it runs on kopf's loop in the operator; requests are
plain HTTP from the test. Nothing here needs the cluster.
"""

from __future__ import annotations

import asyncio
import hmac
import http.client
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portalis.api.alertmanager import WebhookPayload
from portalis.clients.alerts import AlertReceiver, RateLimiter, bearer_matches

TOKEN = "0123456789abcdef0123456789abcdef"


def notification(n: int = 1, **labels: str) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="PortalisGpuEccDoubleBitErrors"}',
        "status": "firing",
        "receiver": "portalis",
        "groupLabels": {"alertname": "PortalisGpuEccDoubleBitErrors"},
        "commonLabels": {"alertname": "PortalisGpuEccDoubleBitErrors", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "PortalisGpuEccDoubleBitErrors",
                    "portalis_action": "quarantine",
                    "Hostname": f"gpu-h100-{i}",
                    "gpu": "0",
                    "UUID": f"GPU-{i:04d}",
                    **labels,
                },
                "annotations": {"summary": "Uncorrectable ECC errors"},
                "startsAt": "2025-03-01T12:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": f"{i:016x}",
            }
            for i in range(n)
        ],
    }


@dataclass
class Server:
    receiver: AlertReceiver
    loop: asyncio.AbstractEventLoop
    received: list[WebhookPayload] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    accept: bool = True

    def request(
        self,
        body: bytes | str | None,
        token: str | None = TOKEN,
        *,
        scheme: str = "Bearer",
        method: str = "POST",
        path: str = "/alerts",
        headers: dict[str, str] | None = None,
        chunked: bool = False,
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.receiver.port, timeout=10)
        h = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            h["Authorization"] = f"{scheme} {token}"
        data = body.encode() if isinstance(body, str) else body
        if chunked:
            conn.putrequest(method, path)
            for k, v in h.items():
                conn.putheader(k, v)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            assert data is not None
            for i in range(0, len(data), 65536):
                chunk = data[i : i + 65536]
                conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            conn.send(b"0\r\n\r\n")
        else:
            conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return resp.status, parsed, dict(resp.getheaders())

    def post(self, payload: Any, token: str | None = TOKEN) -> int:
        return self.request(json.dumps(payload), token)[0]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    loops: list[tuple[asyncio.AbstractEventLoop, threading.Thread, AlertReceiver]] = []

    def make(token: str | None = TOKEN, **kw: Any) -> Server:
        token_file = tmp_path / f"token-{len(loops)}"
        if token is not None:
            token_file.write_text(token + "\n")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        holder: dict[str, Server] = {}

        def on_alerts(payload: WebhookPayload) -> bool:
            holder["s"].received.append(payload)
            return holder["s"].accept

        def on_rejected(reason: str) -> None:
            holder["s"].rejected.append(reason)

        kw.setdefault("rate_per_second", 10_000.0)
        kw.setdefault("burst", 10_000)
        receiver = AlertReceiver(on_alerts, token_file, "127.0.0.1", 0, on_rejected=on_rejected, **kw)
        asyncio.run_coroutine_threadsafe(receiver.start(), loop).result(10)
        server = Server(receiver, loop)
        holder["s"] = server
        loops.append((loop, thread, receiver))
        return server

    yield make
    for loop, thread, receiver in loops:
        asyncio.run_coroutine_threadsafe(receiver.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_a_valid_notification_is_accepted_and_handed_on(make_server: Callable[..., Server]) -> None:
    server = make_server()
    status, body, _ = server.request(json.dumps(notification(3)))
    assert status == 202 and body == {"status": "accepted", "alerts": 3}
    assert len(server.received) == 1
    payload = server.received[0]
    assert [a.labels["Hostname"] for a in payload.alerts] == ["gpu-h100-0", "gpu-h100-1", "gpu-h100-2"]
    assert payload.alerts[0].name == "PortalisGpuEccDoubleBitErrors" and payload.alerts[0].fingerprint
    assert server.rejected == []


@pytest.mark.parametrize(
    ("token", "scheme"),
    [(None, "Bearer"), ("wrong-token", "Bearer"), (TOKEN, "Basic"), ("", "Bearer"), (TOKEN + "x", "Bearer")],
)
def test_unauthenticated_requests_get_401_and_change_nothing(
    make_server: Callable[..., Server], token: str | None, scheme: str
) -> None:
    server = make_server()
    status, body, headers = server.request(json.dumps(notification()), token, scheme=scheme)
    assert status == 401 and headers.get("WWW-Authenticate") == "Bearer"
    assert body is not None and "bearer token" in body["error"]
    assert server.received == [] and server.rejected == ["unauthorized"]


def test_the_scheme_is_case_insensitive(make_server: Callable[..., Server]) -> None:
    server = make_server()
    assert server.request(json.dumps(notification()), scheme="bearer")[0] == 202


def test_without_a_token_file_every_request_is_refused(make_server: Callable[..., Server]) -> None:
    server = make_server(token=None)
    assert server.post(notification()) == 401
    assert server.post(notification(), token="") == 401
    assert server.received == []


def test_a_rotated_token_takes_effect_without_a_restart(make_server: Callable[..., Server]) -> None:
    server = make_server()
    assert server.post(notification()) == 202
    assert server.receiver.tokens.path is not None
    server.receiver.tokens.path.write_text("a-new-token-of-a-different-size\n")
    assert server.post(notification()) == 401
    assert server.post(notification(), token="a-new-token-of-a-different-size") == 202


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert bearer_matches(f"Bearer {TOKEN}", TOKEN.encode())
    assert not bearer_matches("Bearer nope", TOKEN.encode())
    assert calls == [(TOKEN.encode(), TOKEN.encode()), (b"nope", TOKEN.encode())]
    assert not bearer_matches("Bearer x", b"")  # nothing expected: refused without comparing
    assert len(calls) == 2


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "{",
        "[]",
        "null",
        '"a string"',
        "{}",
        json.dumps({"alerts": "nope"}),
        json.dumps({"alerts": [{"status": "firing"}]}),
        json.dumps({"alerts": [{"status": "burning", "labels": {}}]}),
        json.dumps({"alerts": [{"status": "firing", "labels": {"gpu": 0}}]}),
        json.dumps({"alerts": [{"status": "firing", "labels": {"a": None}}]}),
        json.dumps({"alerts": [{"status": "firing", "labels": ["Hostname"]}]}),
        json.dumps({"alerts": [], "truncatedAlerts": -1}),
        json.dumps({"alerts": [{"status": "firing", "labels": {}}] * 1001}),
        "\udcff",
    ],
)
def test_malformed_payloads_get_400_and_change_nothing(make_server: Callable[..., Server], body: str) -> None:
    server = make_server()
    data = body.encode("utf-8", "surrogateescape")
    status, parsed, _ = server.request(data)
    assert status == 400, parsed
    assert parsed is not None and parsed["status"] == "error"
    assert server.received == [] and server.rejected == ["malformed"]


def test_bodies_over_the_limit_get_413(make_server: Callable[..., Server]) -> None:
    server = make_server(max_body_bytes=64 * 1024)
    big = json.dumps(notification(1, padding="x" * 100_000))
    assert server.request(big)[0] == 413
    assert server.request(big, chunked=True)[0] == 413  # no Content-Length: counted while reading
    assert server.received == [] and server.rejected == ["too_large", "too_large"]
    assert server.post(notification()) == 202


def test_an_unauthenticated_large_body_is_refused_before_it_is_read(make_server: Callable[..., Server]) -> None:
    server = make_server(max_body_bytes=1024)
    assert server.request("x" * 10_000, token="wrong")[0] == 401


def test_a_client_over_its_rate_gets_429(make_server: Callable[..., Server]) -> None:
    server = make_server(rate_per_second=0.5, burst=3)
    codes = [server.post(notification()) for _ in range(5)]
    assert codes == [202, 202, 202, 429, 429]
    status, _, headers = server.request(json.dumps(notification()))
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert len(server.received) == 3 and server.rejected.count("rate_limited") == 3


def test_the_rate_limiter_refills_and_keeps_clients_apart() -> None:
    limiter = RateLimiter(rate=2.0, burst=2, max_clients=4)
    assert [limiter.allow("a", now=0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("b", now=0.0)
    assert limiter.allow("a", now=0.5)  # one token back after half a second
    for i in range(10):  # many clients: the table stays bounded
        limiter.allow(f"c{i}", now=1.0)
    assert len(limiter._buckets) <= 4


def test_503_while_the_operator_cannot_take_alerts(make_server: Callable[..., Server]) -> None:
    server = make_server()
    server.accept = False
    assert server.post(notification()) == 503
    assert server.rejected == ["unavailable"]


def test_only_post_on_alerts(make_server: Callable[..., Server]) -> None:
    server = make_server()
    assert server.request(None, method="GET")[0] == 405
    assert server.request(json.dumps(notification()), path="/other")[0] == 404


# ---- generated payloads -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
label_maps = st.dictionaries(st.text(max_size=30), st.text(max_size=60), max_size=8)
valid_alerts = st.fixed_dictionaries(
    {"status": st.sampled_from(["firing", "resolved"]), "labels": label_maps},
    optional={"annotations": label_maps, "fingerprint": st.text(max_size=16), "startsAt": st.text(max_size=30)},
)
valid_payloads = st.fixed_dictionaries(
    {"alerts": st.lists(valid_alerts, max_size=5)},
    optional={
        "version": st.just("4"),
        "status": st.sampled_from(["firing", "resolved"]),
        "commonLabels": label_maps,
        "receiver": st.text(max_size=10),
        "extra": json_values,
    },
)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    token_file = tmp_path_factory.mktemp("fuzz") / "token"
    token_file.write_text(TOKEN)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    received: list[WebhookPayload] = []

    def on_alerts(payload: WebhookPayload) -> bool:
        received.append(payload)
        return True

    receiver = AlertReceiver(on_alerts, token_file, "127.0.0.1", 0, rate_per_second=1e6, burst=1_000_000)
    asyncio.run_coroutine_threadsafe(receiver.start(), loop).result(10)
    yield Server(receiver, loop, received=received)
    asyncio.run_coroutine_threadsafe(receiver.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(json_values.map(json.dumps), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_bodies_never_crash_it(fuzz_server: Server, body: str) -> None:
    before = len(fuzz_server.received)
    status, parsed, _ = fuzz_server.request(body.encode("utf-8", "surrogatepass"))
    assert status in (202, 400), (status, parsed)
    assert parsed is not None
    assert len(fuzz_server.received) == before + (1 if status == 202 else 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=valid_payloads)
def test_well_formed_notifications_are_always_accepted(fuzz_server: Server, payload: dict[str, Any]) -> None:
    status, parsed, _ = fuzz_server.request(json.dumps(payload))
    assert status == 202, parsed
    got = fuzz_server.received[-1]
    assert len(got.alerts) == len(payload["alerts"])
    assert [a.labels for a in got.alerts] == [a["labels"] for a in payload["alerts"]]
