"""The ASGI entry ``pipepulse dashboard serve`` runs: Streamlit's ``st.App`` around ``app.py``,
plus one route per page (and the root) that answers a deep link such as ``/pipelines?range=30d``
at once.

Why: when Streamlit's frontend opens a URL below the root (``/pipelines``), it does not know
where the server's root is, so it first asks ``/pipelines/_stcore/health``, gets a 404, waits
100 ms and then asks ``/_stcore/health``. Every link from an alert email is such a URL. The page
routes here serve Streamlit's own ``index.html`` with ``window.__streamlit.BACKEND_BASE_URL`` set
to the page's parent (the app's root, also behind a proxy that adds a path prefix), which is the
answer the second probe would find: the frontend connects on its first try. Every other path
(static files, ``/_stcore/...``) is Streamlit's.

The same page also asks the browser to fetch and compile Streamlit's plotly chunk
(``PlotlyChart.*.js``, about 4 MB) while the app connects, with ``<link rel="modulepreload">``
for it and for the modules it imports that Streamlit's page does not preload already. Every
pipepulse page draws plotly charts; without the hint the chunk is requested only when the
first chart arrives over the websocket, after the page's reads, so compiling it sat on the
path to the first chart (and a reload right after a first visit often compiled it again: the
browser had not yet recorded the chunk for its code cache). The root (``/``, the Overview) gets
the same page.

The first page request a server answers also starts importing, in a thread, the modules the
app's first script run needs (``APP_MODULES``: pandas, SQLAlchemy and the driver, ``store``,
``insights``; 0.6-0.7 s on the bench machine). The browser then spends a second or more fetching
and compiling Streamlit's scripts before it opens the websocket that starts the script run, and
the server would otherwise sit idle through it; the script run then finds the modules imported
(or waits on Python's import lock for the rest). Nothing is imported before a visitor asks for a
page, and nothing is read from the database.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
import threading
from functools import cache
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from dashboard import downloads
from dashboard.config import served_policy
from dashboard.guard import Guard
from pipepulse.access import AccessPolicy

HERE = Path(__file__).resolve().parent
STATIC = Path(st.__file__).parent / "static"  # Streamlit's frontend: index.html and static/js/
# every page's url_path in app.py's PAGES (a test checks they agree)
PAGE_PATHS = ("overview", "pipelines", "run", "costs", "anomalies", "collectors")
MARKER = "<head>"
PRELOAD_CHUNK = "PlotlyChart"
HEAD_BYTES = 16_384  # of the chunk, read for its imports (Streamlit 1.67's: 20 imports in the first 1 kB)
BOOT = (
    "<script>window.__streamlit = Object.assign(window.__streamlit || {}, "
    '{BACKEND_BASE_URL: new URL(".", window.location.href).href});</script>'
)


def preloads(text: str, static: Path = STATIC) -> str:
    """``<link rel="modulepreload">`` tags for Streamlit's plotly chunk and the modules it
    imports, leaving out those ``text`` (Streamlit's index.html) preloads already; "" when this
    Streamlit has no such chunk."""
    found = sorted((static / "static" / "js").glob(f"{PRELOAD_CHUNK}.*.js"))
    if len(found) != 1:
        return ""
    chunk = found[0]
    # an ES module's static imports come first: its head is enough (the whole chunk is 4.7 MB,
    # and reading and searching it was 0.1-0.25 s of the first visitor's wait for the page)
    with chunk.open("rb") as fh:
        head = fh.read(HEAD_BYTES).decode("utf-8", errors="ignore")
    imports = re.findall(r'(?:from|import)\s*"\./([\w.$-]+\.js)"', head)
    names = [n for n in dict.fromkeys([*imports, chunk.name]) if f"./static/js/{n}" not in text]
    return "".join(f'<link rel="modulepreload" crossorigin href="./static/js/{n}">' for n in names)


@cache
def index_html() -> str:
    """Streamlit's index.html with the backend base URL set before its scripts run and the
    plotly chunk preloaded."""
    text = (STATIC / "index.html").read_text(encoding="utf-8")
    if MARKER not in text:  # a Streamlit whose page this code does not know: serve it as is
        return text
    return text.replace(MARKER, MARKER + BOOT + preloads(text), 1)


# what app.py and the default page (Overview) import on their first run that a started server has
# not imported yet; dashboard.data brings pandas, SQLAlchemy, psycopg, store and insights
APP_MODULES = ("dashboard.data", "dashboard.charts")
_imports_started = threading.Event()


def _import_app_modules() -> None:
    for name in APP_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the script run imports it again and shows the error
            logging.getLogger(__name__).debug("importing %s ahead of the first script run failed", name, exc_info=True)
            return


def start_app_imports() -> threading.Thread | None:
    """Import ``APP_MODULES`` in a thread, the first time only (the thread; None afterwards)."""
    if _imports_started.is_set():
        return None
    _imports_started.set()
    thread = threading.Thread(target=_import_app_modules, name="pipepulse-app-imports", daemon=True)
    thread.start()
    return thread


async def _page(_request: Request) -> HTMLResponse:
    start_app_imports()  # while the browser loads Streamlit's scripts
    # no-cache, as Streamlit serves index.html: a new release must reach the browser
    return HTMLResponse(index_html(), headers={"Cache-Control": "no-cache"})


# the root too: it opens the default page (Overview), which draws charts as well
ROUTES = [Route(f"/{path}", _page, methods=["GET", "HEAD"]) for path in ("", *PAGE_PATHS)]
ROUTES.append(Route(f"/{downloads.PATH}/{{token}}", downloads.serve, methods=["GET"]))
# Started without `pipepulse dashboard serve` (a bare `streamlit run dashboard/serve.py`), the
# strictest policy: no login, local names only.
POLICY = served_policy(sys.argv[1:]) or AccessPolicy(auth="none")
app = st.App(str(HERE / "app.py"), routes=ROUTES, middleware=[Middleware(Guard, policy=POLICY)])
