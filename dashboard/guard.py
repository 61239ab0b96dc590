"""The request guard: pure ASGI middleware that ``dashboard/serve.py`` puts in front of Streamlit
(``st.App(middleware=...)``: user middleware runs before Streamlit's own), so every HTTP request
and every websocket upgrade is judged by ``pipepulse.access.check_request`` before the app,
Streamlit's routes or its static files see it.

What it does, in order:
- refuses (403, or 400 for a malformed Host) a request whose ``Host`` is not an allowed name
  (DNS rebinding), whose ``Origin`` is another site, or that came through a proxy that is not
  trusted or to a dashboard without a login; a websocket is closed before it is accepted, which
  uvicorn answers with HTTP 403;
- behind a trusted proxy, replaces the ASGI ``client`` with the address the proxy names, so
  ``st.context.ip_address`` (and the login's per-client limit) sees the real client;
- answers 404 for ``/_stcore/metrics`` (Streamlit's own metrics: sessions, caches, memory) and
  for ``/media/`` (pipepulse serves no media: its CSV downloads are ``/export/<token>``, tied to
  the session that made them, see ``downloads.py``);
- gives the browser a random ``pp_client`` cookie (HttpOnly, SameSite=Lax) that a session's
  downloads are bound to, and adds frame protection (``Content-Security-Policy: frame-ancestors
  'none'`` and ``X-Frame-Options: DENY``) and ``nosniff`` to every response.

uvicorn's own proxy-header handling is switched off for the served process
(``FORWARDED_ALLOW_IPS`` empty, set by ``pipepulse dashboard serve``): it would rewrite the
client from ``X-Forwarded-For`` for any request from 127.0.0.1 before this guard could see who
actually connected.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pipepulse.access import AccessPolicy, check_request, is_trusted_proxy

__all__ = ["CLIENT_COOKIE", "SECURITY_HEADERS", "Guard"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CLIENT_COOKIE = "pp_client"
CLOSED_PATHS = ("/_stcore/metrics", "/media/")
SECURITY_HEADERS = (
    (b"content-security-policy", b"frame-ancestors 'none'; base-uri 'self'; object-src 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in scope.get("headers", []):
        name = k.decode("latin-1").lower()
        value = v.decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _cookie(headers: dict[str, str], name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name and v:
            return v
    return None


class Guard:
    """ASGI middleware applying ``policy`` (an ``AccessPolicy``) to ``app``."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        client = scope.get("client")
        peer = client[0] if client else None
        path = scope.get("path", "/")
        decision = check_request(
            self.policy, peer=peer, host=headers.get("host"), origin=headers.get("origin"), headers=headers, path=path
        )
        if decision.status:
            log.warning("request refused", extra={"peer": peer, "path": path[:200], "status": decision.status,
                                                  "reason": decision.reason})
            await self._refuse(scope, send, decision.status, decision.reason)
            return
        if decision.client and decision.client != peer:
            scope["client"] = (decision.client, 0)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        if path.startswith(CLOSED_PATHS):
            await self._refuse(scope, send, 404, "not found")
            return
        cookie = None if _cookie(headers, CLIENT_COOKIE) else secrets.token_urlsafe(32)
        https = scope.get("scheme") == "https" or (
            headers.get("x-forwarded-proto", "").strip() == "https" and is_trusted_proxy(self.policy, peer)
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = list(SECURITY_HEADERS)
                if cookie:
                    value = f"{CLIENT_COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if https else "")
                    extra.append((b"set-cookie", value.encode()))
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *((k, v) for k, v in extra if k not in present or k == b"set-cookie")]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, reason: str) -> None:
        if scope["type"] == "websocket":
            # closing before accepting makes the server answer the upgrade with HTTP 403
            await send({"type": "websocket.close", "code": 1008})
            return
        body = f"pipepulse: {reason}\n".encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"), *SECURITY_HEADERS,
        ]})
        await send({"type": "http.response.body", "body": body})
