"""``POST /alerts``: the Alertmanager webhook receiver (aiohttp, on the operator's event loop).

Alertmanager posts a notification -> this receiver checks, in order, the client's rate (429), the bearer token
(401, compared in constant time with ``hmac.compare_digest``), the body size (413), the JSON (400) and its shape
against ``portalis.api.alertmanager.WebhookPayload`` (400) -> hands the parsed payload to ``on_alerts`` and answers
202. ``on_alerts`` only queues work (the health controller acts on its own tasks), so a request never waits for
the API server; it returns False while the operator cannot take alerts yet, which is answered 503 so that
Alertmanager retries.

The token is read from a file (the webhook Secret, mounted), re-read when the file changes so a rotated Secret
takes effect without a restart. A missing or empty file refuses every request.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from pydantic import ValidationError

from portalis.api.alertmanager import WebhookPayload

log = logging.getLogger("portalis.alerts")

MAX_BODY_BYTES = 1024 * 1024
PATH = "/alerts"

OnAlerts = Callable[[WebhookPayload], bool]
OnRejected = Callable[[str], None]  # the reason: unauthorized, too_large, malformed, rate_limited, unavailable


class TokenFile:
    """The expected bearer token, from a file re-read whenever its size or modification time changes."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._stamp: tuple[int, int] | None = None
        self._token = b""
        self._warned = False

    def token(self) -> bytes:
        if self.path is None:
            return b""
        try:
            st = os.stat(self.path)
        except OSError:
            if not self._warned:
                log.error("webhook token file %s is missing: every alert is refused (401)", self.path)
                self._warned = True
            self._stamp, self._token = None, b""
            return b""
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                self._token = self.path.read_bytes().strip()
            except OSError:
                self._token = b""
            self._stamp = stamp
            if not self._token:
                log.error("webhook token file %s is empty: every alert is refused (401)", self.path)
            self._warned = False
        return self._token


def bearer_matches(header: str | None, expected: bytes) -> bool:
    """True when ``header`` is ``Bearer <expected>``; constant time in the token, False when nothing is expected."""
    if not expected or not header:
        return False
    scheme, _, presented = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode("utf-8", "replace"), expected)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per client address: ``rate`` requests a second on average, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._prune(now)
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _prune(self, now: float) -> None:
        full = [c for c, b in self._buckets.items() if b.tokens + (now - b.updated) * self.rate >= self.burst]
        for c in full:
            del self._buckets[c]
        if len(self._buckets) >= self.max_clients:  # still full: forget the oldest half
            for c, _ in sorted(self._buckets.items(), key=lambda kv: kv[1].updated)[: self.max_clients // 2]:
                del self._buckets[c]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"status": "error", "error": message}, status=status, headers=headers)


class AlertReceiver:
    """The webhook server. ``await start()`` binds it; ``port`` is the bound port (useful with port 0)."""

    def __init__(
        self,
        on_alerts: OnAlerts,
        token_file: str | Path | None,
        host: str = "0.0.0.0",
        port: int = 8443,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        rate_per_second: float = 20.0,
        burst: int = 40,
        on_rejected: OnRejected | None = None,
    ) -> None:
        self.on_alerts = on_alerts
        self.tokens = TokenFile(token_file)
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.limiter = RateLimiter(rate_per_second, burst)
        self.on_rejected = on_rejected
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_post(PATH, self.handle)
        return app

    async def start(self) -> AlertReceiver:
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break
        if not self.tokens.token():
            log.error(
                "POST %s on %s:%d refuses every alert: no webhook token (PORTALIS_WEBHOOK_TOKEN_FILE)",
                PATH,
                self.host,
                self.port,
            )
        log.info("Alertmanager webhook receiver listening on http://%s:%d%s", self.host, self.port, PATH)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _reject(self, reason: str, response: web.Response) -> web.Response:
        if self.on_rejected is not None:
            self.on_rejected(reason)
        return response

    async def handle(self, request: web.Request) -> web.Response:
        client = request.remote or "unknown"
        if not self.limiter.allow(client):
            log.warning("alerts from %s: rate limited", client)
            retry = str(max(1, int(1 / self.limiter.rate))) if self.limiter.rate > 0 else "60"
            return self._reject("rate_limited", _error(429, "too many requests", {"Retry-After": retry}))
        if not bearer_matches(request.headers.get("Authorization"), self.tokens.token()):
            log.warning("alerts from %s: refused, missing or wrong bearer token", client)
            return self._reject(
                "unauthorized", _error(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})
            )
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return self._reject("too_large", _error(413, f"body larger than {self.max_body_bytes} bytes"))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._reject("too_large", _error(413, f"body larger than {self.max_body_bytes} bytes"))
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            log.warning("alerts from %s: body is not JSON: %s", client, str(exc)[:200])
            return self._reject("malformed", _error(400, "the body is not JSON"))
        try:
            payload = WebhookPayload.model_validate(data)
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:3])
            log.warning("alerts from %s: not an Alertmanager notification: %s", client, detail)
            return self._reject("malformed", _error(400, f"not an Alertmanager webhook notification: {detail}"))
        try:
            accepted = self.on_alerts(payload)
        except Exception:
            log.exception("alerts from %s: could not queue %d alerts", client, len(payload.alerts))
            accepted = False
        if not accepted:
            return self._reject("unavailable", _error(503, "the operator cannot take alerts yet; retry"))
        return web.json_response({"status": "accepted", "alerts": len(payload.alerts)}, status=202)
