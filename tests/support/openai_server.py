"""A small OpenAI-compatible chat completions server for the openai engine's tests.

Run it as a script; it binds a free loopback port (or ``--host``/``--port``) and prints
``listening on http://HOST:PORT/v1`` as its first line. ``POST /v1/chat/completions`` answers with a fenced
Rust block derived from the Python source in the prompt (one ``pub fn`` per ``def``), after ``--delay`` seconds.
Markers in the source change the answer:

- ``# force-400`` / ``# force-429`` / ``# force-500``: that HTTP status with an OpenAI-style error body
- ``# force-slow``: sleep ``--slow-seconds`` before answering (past the client's timeout)
- ``# force-length``: ``finish_reason: "length"`` (the reply hit max_tokens)
- ``# force-nofence``: the code without a fence around it

With ``--api-key KEY`` requests without ``Authorization: Bearer KEY`` get 401. ``GET /stats`` reports the number
of completions requests, the most that were in flight at once and the Authorization headers seen;
``POST /reset`` clears them and the script.

``POST /script`` with ``{"answers": ["...", ...]}`` scripts the replies: each completions request takes the next
answer as the reply's content, in order, until they are used up (then the derived answer again). ``GET
/requests`` returns the messages of every completions request since the last reset, for a test to read what
the client sent (a repair request carries the compiler's diagnostics).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STATUS_MARKERS = {"# force-400": 400, "# force-429": 429, "# force-500": 500}


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.authorization: list[str] = []
        self.script: list[str] = []
        self.messages: list[list[dict[str, Any]]] = []

    def next_answer(self, messages: list[dict[str, Any]]) -> str | None:
        with self.lock:
            self.messages.append(messages)
            return self.script.pop(0) if self.script else None

    def enter(self, authorization: str) -> None:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if authorization not in self.authorization:
                self.authorization.append(authorization)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "authorization": list(self.authorization),
            }


def translate(prompt: str) -> str:
    """Stand-in Rust for the Python in the prompt: a comment naming the file and one function per def."""
    path = re.search(r"`([^`\n]+\.py)`", prompt)
    lines = [f"// translated from {path.group(1) if path else 'unknown'}"]
    lines += [f"pub fn {name}() {{}}" for name in re.findall(r"^\s*def (\w+)\(", prompt, re.MULTILINE)]
    return "\n".join(lines) + "\n"


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)

    def do_GET(self) -> None:
        if self.path == "/stats":
            self._send(200, self.server.stats.snapshot())
        elif self.path == "/requests":
            with self.server.stats.lock:
                self._send(200, {"requests": list(self.server.stats.messages)})
        elif self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server.model, "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path == "/reset":
            with self.server.stats.lock:
                self.server.stats.reset()
            self._send(200, {"ok": True})
            return
        if self.path == "/script":
            answers = json.loads(raw or b"{}").get("answers") or []
            with self.server.stats.lock:
                self.server.stats.script = [str(a) for a in answers]
            self._send(200, {"ok": True, "answers": len(answers)})
            return
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        stats = self.server.stats
        stats.enter(self.headers.get("Authorization", ""))
        try:
            self._complete(raw)
        finally:
            stats.leave()

    def _complete(self, raw: bytes) -> None:
        expected = self.server.api_key
        if expected and self.headers.get("Authorization") != f"Bearer {expected}":
            self._send(401, {"error": {"message": "invalid api key", "type": "authentication_error"}})
            return
        try:
            body = json.loads(raw)
            prompt = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
        except (ValueError, KeyError, TypeError):
            self._send(400, {"error": {"message": "malformed request", "type": "invalid_request_error"}})
            return
        for marker, status in STATUS_MARKERS.items():
            if marker in prompt:
                message = f"forced {status}"
                self._send(status, {"error": {"message": message, "type": "test", "code": status}})
                return
        time.sleep(self.server.slow_seconds if "# force-slow" in prompt else self.server.delay)
        scripted = self.server.stats.next_answer(body["messages"])
        code = translate(prompt)
        content = code if "# force-nofence" in prompt else f"Here is the Rust version:\n\n```rust\n{code}```\n"
        if scripted is not None:
            content = scripted
        finish_reason = "length" if "# force-length" in prompt else "stop"
        self._send(
            200,
            {
                "id": f"chatcmpl-{self.server.stats.requests}",
                "object": "chat.completion",
                "model": body.get("model", self.server.model),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(content) // 4},
            },
        )


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, delay: float, slow_seconds: float, api_key: str, model: str, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__((host, port), Handler)
        self.delay = delay
        self.slow_seconds = slow_seconds
        self.api_key = api_key
        self.model = model
        self.stats = Stats()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--slow-seconds", type=float, default=30.0, help="seconds a '# force-slow' request takes")
    parser.add_argument("--api-key", default="", help="require this bearer token")
    parser.add_argument("--model", default="test-coder")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a pod)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    args = parser.parse_args(argv)
    server = Server(args.delay, args.slow_seconds, args.api_key, args.model, args.host, args.port)
    print(f"listening on http://{args.host}:{server.server_address[1]}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
