"""``dashboard/serve.py``: the page routes that answer deep links with Streamlit's own page."""

from __future__ import annotations

import re

from dash_paths import APP

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
