"""CSV downloads that belong to the session that made them.

A page registers a table with ``link(key, filename, header, rows)`` and puts the returned relative
URL (``export/<token>``) in its HTML. ``serve(request)`` (the ``/export/{token}`` route of
``serve.py``) answers it only when:
- the session that registered it is still connected (a closed tab's downloads are gone at once:
  Streamlit's ``/media/`` kept them for minutes, to anyone with the URL), and
- the request carries the browser cookie (``guard.CLIENT_COOKIE``) that the session's own
  websocket carried, so a URL that leaks (a screen share, a proxy log) is of no use elsewhere.
The token is random (256 bits) and one per session and table; a rerun replaces the table's rows.
The CSV is written when it is asked for, with the one CSV writer (``pipepulse.export``).

Entries of sessions that have ended are dropped whenever a page registers one, so memory stays
at one entry per open tab and table.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

__all__ = ["PATH", "link", "serve"]

PATH = "export"


@dataclass
class _Entry:
    session_id: str
    key: str
    client: str
    filename: str
    make: Callable[[], bytes]


_LOCK = threading.Lock()
_ENTRIES: dict[str, _Entry] = {}  # token -> entry
_TOKENS: dict[tuple[str, str], str] = {}  # (session id, key) -> token


def _runtime():
    from streamlit import runtime

    return runtime.get_instance() if runtime.exists() else None


def _sweep(rt) -> None:
    dead = [t for t, e in _ENTRIES.items() if not rt.is_active_session(e.session_id)]
    for token in dead:
        entry = _ENTRIES.pop(token)
        _TOKENS.pop((entry.session_id, entry.key), None)


def link(key: str, filename: str, header: Sequence[str], rows: Callable[[], Iterable[Sequence[Any]]]) -> str | None:
    """Register a download of ``header`` and ``rows()`` for this session; its relative URL, or
    None outside a served session (AppTest, bare scripts) or without the browser cookie."""
    import streamlit as st
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from dashboard.guard import CLIENT_COOKIE
    from pipepulse.export import csv_bytes

    rt, ctx = _runtime(), get_script_run_ctx()
    if rt is None or ctx is None:
        return None
    client = st.context.cookies.get(CLIENT_COOKIE)
    if not client:
        return None
    cols = list(header)
    entry = _Entry(ctx.session_id, key, client, filename, lambda: csv_bytes(cols, rows()))
    with _LOCK:
        _sweep(rt)
        token = _TOKENS.get((ctx.session_id, key)) or secrets.token_urlsafe(32)
        _TOKENS[(ctx.session_id, key)] = token
        _ENTRIES[token] = entry
    return f"{PATH}/{token}"


async def serve(request):
    """The ``/export/{token}`` route: the CSV, or 404 when it is not this browser's live session's."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import PlainTextResponse, Response

    from dashboard.guard import CLIENT_COOKIE

    token = request.path_params.get("token", "")
    rt = _runtime()
    with _LOCK:
        entry = _ENTRIES.get(token)
    cookie = request.cookies.get(CLIENT_COOKIE, "")
    if (
        entry is None
        or rt is None
        or not rt.is_active_session(entry.session_id)
        or not secrets.compare_digest(cookie.encode(), entry.client.encode())
    ):
        return PlainTextResponse("This download belongs to a page that is closed or to another browser; "
                                 "reload the page and download again.\n", status_code=404)
    body = await run_in_threadpool(entry.make)
    disposition = f"attachment; filename*=UTF-8''{quote(entry.filename)}"
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})
