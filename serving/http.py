"""A small ASGI middleware in front of the BentoML app: ``/healthz``, the optional API key, and
the body size limit.

Why a middleware: these answers must not depend on the model (a health check while loading), on
BentoML parsing a 50 MB body first, or on every API remembering to check a key. Pure ASGI, so
nothing here touches the request body it lets through.
"""
from __future__ import annotations

import hmac
import json
import os
from typing import Any

OPEN_PATHS = ("/healthz", "/livez", "/readyz", "/metrics")  # what probes and scrapers call without a key
PAGE_PREFIX = "/ui"  # the web page itself (GET) loads without a key; the API calls it makes send one
API_KEY_ENV = "COLDREC_API_KEY"


async def _send_json(send: Any, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


class Guard:
    """``max_body_bytes``: larger bodies get 413 (by Content-Length, or while streaming when it is
    absent); ``api_key`` (default ``$COLDREC_API_KEY``; empty = off): requests without
    ``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` get 401, except health endpoints."""

    def __init__(self, app: Any, max_body_bytes: int = 65536, api_key: str | None = None):
        self.app = app
        self.max_body = int(max_body_bytes)
        self.api_key = (api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")).strip()

    def _authorised(self, headers: dict[bytes, bytes]) -> bool:
        if not self.api_key:
            return True
        given = headers.get(b"x-api-key", b"").decode("latin-1").strip()
        auth = headers.get(b"authorization", b"").decode("latin-1").strip()
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return bool(given) and hmac.compare_digest(given.encode(), self.api_key.encode())

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/healthz":
            await _send_json(send, 200, {"status": "ok"})
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        page = scope.get("method") in ("GET", "HEAD") and (path == PAGE_PREFIX or path.startswith(PAGE_PREFIX + "/"))
        if path not in OPEN_PATHS and not page and not self._authorised(headers):
            await _send_json(send, 401, {"error": f"missing or wrong API key: send the X-API-Key header (${API_KEY_ENV})"},
                             [(b"www-authenticate", b"Bearer")])
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                n = int(length)
                if n < 0:
                    raise ValueError
            except ValueError:
                await _send_json(send, 400, {"error": f"Content-Length: not a byte count ({length[:40]!r})"})
                return
            if n > self.max_body:
                await _send_json(send, 413, {"error": f"request body of {n} bytes is over the {self.max_body}-byte limit"})
                return
            await self.app(scope, receive, send)
            return
        # no Content-Length (chunked): count while reading
        seen = 0
        started = False
        too_big = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen, too_big
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_body:
                    too_big = True
                    return {"type": "http.disconnect"}
            return msg

        async def tracking_send(msg: dict[str, Any]) -> None:
            nonlocal started
            if too_big:
                return
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        await self.app(scope, limited_receive, tracking_send)
        if too_big and not started:
            await _send_json(send, 413, {"error": f"request body is over the {self.max_body}-byte limit"})
