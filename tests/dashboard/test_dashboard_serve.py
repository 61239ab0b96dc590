"""``dashboard/serve.py``: the page routes that answer deep links with Streamlit's own page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from dash_paths import APP, ROOT

from dashboard import serve


def test_every_page_of_the_app_has_a_route():
    # app.py's st.Page url_paths: a page added there without a route here would still work,
    # but its deep links would pay the frontend's probe again
    paths = re.findall(r'url_path="([^"]+)"', APP.read_text())
    assert len(paths) >= 6
    assert sorted(paths) == sorted(serve.PAGE_PATHS)


def test_the_page_is_streamlits_with_the_backend_root_set_before_its_scripts():
    html = serve.index_html()
    assert html.count(serve.BOOT) == 1
    boot = html.index(serve.BOOT)
    assert boot < html.index("<script type=\"module\"")  # before the bundle reads it
    # the rest is Streamlit's page unchanged, but for the preload hints
    original = (serve.STATIC / "index.html").read_text()
    assert html.replace(serve.BOOT, "").replace(serve.preloads(original), "") == original


def test_the_page_preloads_plotlys_chunk_once_and_only_files_that_exist():
    html = serve.index_html()
    hrefs = re.findall(r'<link rel="modulepreload" crossorigin href="\./([^"]+)">', html)
    chunk = [h for h in hrefs if re.fullmatch(r"static/js/PlotlyChart\.[\w-]+\.js", h)]
    assert len(chunk) == 1
    assert len(hrefs) == len(set(hrefs))  # nothing Streamlit preloads already is asked twice
    for href in hrefs:
        assert (serve.STATIC / href).is_file(), href
    # each module the chunk imports is preloaded (by Streamlit's page or by the hint)
    imported = re.findall(r'(?:from|import)\s*"\./([\w.$-]+\.js)"', (serve.STATIC / chunk[0]).read_text())
    assert imported
    for name in imported:
        assert f"static/js/{name}" in html, name


def test_preloads_leave_out_what_the_page_has_and_give_nothing_without_the_chunk(tmp_path):
    js = tmp_path / "static" / "js"
    js.mkdir(parents=True)
    page = '<link rel="modulepreload" crossorigin href="./static/js/a.AAA.js">'
    assert serve.preloads(page, tmp_path) == ""  # a Streamlit without the chunk: no hint
    (js / "PlotlyChart.XYZ.js").write_text('import{o as e}from"./a.AAA.js";import"./b.BBB.js";export{e};')
    assert serve.preloads(page, tmp_path) == (
        '<link rel="modulepreload" crossorigin href="./static/js/b.BBB.js">'
        '<link rel="modulepreload" crossorigin href="./static/js/PlotlyChart.XYZ.js">'
    )


def test_the_root_and_every_page_path_are_routed():
    # and the pages' CSV downloads (dashboard/downloads.py)
    assert sorted(r.path for r in serve.ROUTES) == sorted(["/", *(f"/{p}" for p in serve.PAGE_PATHS), "/export/{token}"])


# Run in a fresh interpreter: this test process has imported the app's modules long since.
FIRST_VISIT = """
import asyncio, json, sys, threading
from starlette.requests import Request
from dashboard import serve

HEAVY = ("dashboard.data", "dashboard.charts", "pandas", "sqlalchemy", "store.schema", "insights.freshness")
started = [m for m in HEAVY if m in sys.modules]
page = {r.path: r for r in serve.ROUTES}["/pipelines"]
scope = {"type": "http", "method": "GET", "path": "/pipelines", "headers": [], "query_string": b""}
first = asyncio.run(page.endpoint(Request(scope)))
workers = [t for t in threading.enumerate() if t.name == "pipepulse-app-imports"]
for t in workers:
    t.join(timeout=60)
after_first = [m for m in HEAVY if m in sys.modules]
asyncio.run(page.endpoint(Request(scope)))
again = [t.name for t in threading.enumerate() if t.name == "pipepulse-app-imports"]
print(json.dumps({"started": started, "status": first.status_code, "workers": len(workers),
                  "after_first": after_first, "again": again}))
"""


def test_the_first_page_request_imports_the_apps_modules_once_and_nothing_before_it():
    out = subprocess.run([sys.executable, "-c", FIRST_VISIT], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=120, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["started"] == []  # a started server has not paid for them
    assert got["status"] == 200 and got["workers"] == 1
    # imported while the browser loads Streamlit's scripts, before the first script run needs them
    assert got["after_first"] == ["dashboard.data", "dashboard.charts", "pandas", "sqlalchemy", "store.schema", "insights.freshness"]
    assert got["again"] == []  # later visits start no import
