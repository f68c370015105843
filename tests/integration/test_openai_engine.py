"""The openai engine against a real HTTP server that speaks the OpenAI chat completions API.

The server (tests/support/openai_server.py) runs as a child process on a free loopback port.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from portalis.worker.engines import Source, load_engine
from portalis.worker.engines.openai_engine import OpenAIEngine

SERVER = Path(__file__).resolve().parents[1] / "support" / "openai_server.py"
API_KEY = "sk-test-0123456789"


class OpenAIServer:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"openai test server did not start: {line!r}")
        self.endpoint = line.split()[-1]  # http://127.0.0.1:PORT/v1
        self.base = self.endpoint.removesuffix("/v1")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base}/stats", timeout=5) as resp:
            result: dict[str, Any] = json.load(resp)
        return result

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.base}/reset", data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=5):
            pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    srv = OpenAIServer("--delay", "0.2", "--slow-seconds", "20")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[OpenAIServer]:
    srv = OpenAIServer("--api-key", API_KEY)
    yield srv
    srv.stop()


def source(name: str, extra: str = "") -> Source:
    text = f"def {name}(x: int) -> int:\n    return x + 1\n{extra}"
    return Source(path=f"pkg/{name}.py", text=text, source_language="python", target_language="rust")


def engine(srv: OpenAIServer, **settings: str) -> OpenAIEngine:
    built = load_engine("openai", endpoint=srv.endpoint, model="test-coder", **settings)
    assert isinstance(built, OpenAIEngine)
    return built


def test_batch_is_sent_concurrently_and_answers_in_order(server: OpenAIServer) -> None:
    server.reset()
    sources = [source(f"f{i}") for i in range(8)]
    started = time.monotonic()
    results = engine(server, max_batch_size="4").translate(sources)
    elapsed = time.monotonic() - started

    assert [r.ok for r in results] == [True] * 8, [r.error for r in results]
    for i, result in enumerate(results):
        assert result.text == f"// translated from pkg/f{i}.py\npub fn f{i}() {{}}\n"
    stats = server.stats()
    assert stats["requests"] == 8
    assert 1 < stats["max_in_flight"] <= 4
    # 8 requests of 0.2 s each, 4 at a time: about 0.4 s, well under the 1.6 s of one at a time.
    assert elapsed < 1.4


def test_batch_size_one_sends_one_request_at_a_time(server: OpenAIServer) -> None:
    server.reset()
    results = engine(server, max_batch_size="1").translate([source("a"), source("b"), source("c")])
    assert all(r.ok for r in results)
    assert server.stats()["max_in_flight"] == 1


@pytest.mark.parametrize(
    ("marker", "permanent", "expected"),
    [
        ("# force-400", True, "HTTP 400"),
        ("# force-429", False, "HTTP 429"),
        ("# force-500", False, "HTTP 500"),
    ],
)
def test_http_errors_are_classified(server: OpenAIServer, marker: str, permanent: bool, expected: str) -> None:
    [result] = engine(server).translate([source("broken", marker)])
    assert not result.ok
    assert result.permanent is permanent
    assert expected in result.error
    assert "forced" in result.error  # the server's error message is kept


def test_timeout_is_transient_and_spares_the_rest_of_the_batch(server: OpenAIServer) -> None:
    sources = [source("slow", "# force-slow"), source("quick"), source("other", "# force-400")]
    started = time.monotonic()
    slow, quick, other = engine(server, timeout_seconds="1", max_batch_size="4").translate(sources)
    assert time.monotonic() - started < 10
    assert not slow.ok and not slow.permanent
    assert "timed out after 1s" in slow.error
    assert quick.ok and "pub fn quick()" in quick.text
    assert not other.ok and other.permanent


def test_connection_refused_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port once the socket is closed.
    built = load_engine("openai", endpoint=f"http://127.0.0.1:{port}/v1", model="m", timeout_seconds="5")
    [result] = built.translate([source("f")])
    assert not result.ok and not result.permanent
    assert "cannot reach" in result.error


def test_reply_cut_off_at_max_tokens_is_permanent(server: OpenAIServer) -> None:
    [result] = engine(server, options='{"max_tokens": 64}').translate([source("long", "# force-length")])
    assert not result.ok and result.permanent
    assert "max_tokens" in result.error and "(64)" in result.error


def test_reply_without_fence_is_taken_whole(server: OpenAIServer) -> None:
    [result] = engine(server).translate([source("bare", "# force-nofence")])
    assert result.ok
    assert result.text == "// translated from pkg/bare.py\npub fn bare() {}\n"


def test_api_key_is_sent_as_bearer_token(keyed_server: OpenAIServer) -> None:
    keyed_server.reset()
    [result] = engine(keyed_server, api_key=API_KEY).translate([source("f")])
    assert result.ok, result.error
    assert keyed_server.stats()["authorization"] == [f"Bearer {API_KEY}"]


def test_missing_api_key_is_permanent_and_never_echoed(keyed_server: OpenAIServer) -> None:
    keyed_server.reset()
    [result] = engine(keyed_server).translate([source("f")])
    assert not result.ok and result.permanent
    assert "HTTP 401" in result.error
    assert keyed_server.stats()["authorization"] == [""]

    wrong = engine(keyed_server, api_key="sk-wrong-key")
    [result] = wrong.translate([source("f")])
    assert "HTTP 401" in result.error and "sk-wrong-key" not in result.error
    assert "sk-wrong-key" not in repr(wrong)


def test_request_carries_model_prompt_and_sampling_settings(server: OpenAIServer) -> None:
    seen: list[dict[str, Any]] = []
    built = engine(server, options=json.dumps({"temperature": 0.2, "max_tokens": 2048}))
    original: Callable[[Source], dict[str, Any]] = built.build_request

    def spy(src: Source) -> dict[str, Any]:
        body = original(src)
        seen.append(body)
        return body

    built.build_request = spy  # type: ignore[method-assign,assignment]
    [result] = built.translate([source("g")])
    assert result.ok
    [body] = seen
    assert body["model"] == "test-coder"
    assert body["temperature"] == 0.2 and body["max_tokens"] == 2048
    assert "```python\ndef g(x: int) -> int:" in body["messages"][1]["content"]
    assert "Rust" in body["messages"][0]["content"]
