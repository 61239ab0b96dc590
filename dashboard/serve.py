"""The ASGI entry ``pipepulse dashboard serve`` runs: Streamlit's ``st.App`` around ``app.py``,
plus one route per page that answers a deep link such as ``/pipelines?range=30d`` at once.

Why: when Streamlit's frontend opens a URL below the root (``/pipelines``), it does not know
where the server's root is, so it first asks ``/pipelines/_stcore/health``, gets a 404, waits
100 ms and then asks ``/_stcore/health``. Every link from an alert email is such a URL. The page
routes here serve Streamlit's own ``index.html`` with ``window.__streamlit.BACKEND_BASE_URL`` set
to the page's parent (the app's root, also behind a proxy that adds a path prefix), which is the
answer the second probe would find: the frontend connects on its first try. Every other path
(the root, static files, ``/_stcore/...``) is Streamlit's.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import streamlit as st
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

HERE = Path(__file__).resolve().parent
# every page's url_path in app.py's PAGES (a test checks they agree); "/" stays Streamlit's
PAGE_PATHS = ("overview", "pipelines", "run", "costs", "anomalies", "collectors")
MARKER = "<head>"
BOOT = (
    "<script>window.__streamlit = Object.assign(window.__streamlit || {}, "
    '{BACKEND_BASE_URL: new URL(".", window.location.href).href});</script>'
)


@cache
def index_html() -> str:
    """Streamlit's index.html with the backend base URL set before its scripts run."""
    text = (Path(st.__file__).parent / "static" / "index.html").read_text(encoding="utf-8")
    if MARKER not in text:  # a Streamlit whose page this code does not know: serve it as is
        return text
    return text.replace(MARKER, MARKER + BOOT, 1)


async def _page(_request: Request) -> HTMLResponse:
    # no-cache, as Streamlit serves index.html: a new release must reach the browser
    return HTMLResponse(index_html(), headers={"Cache-Control": "no-cache"})


app = st.App(str(HERE / "app.py"), routes=[Route(f"/{path}", _page, methods=["GET", "HEAD"]) for path in PAGE_PATHS])
