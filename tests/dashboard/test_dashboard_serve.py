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
    # the rest is Streamlit's page unchanged
    assert html.replace(serve.BOOT, "") == (serve.Path(serve.st.__file__).parent / "static" / "index.html").read_text()
