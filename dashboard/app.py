"""pipepulse dashboard: the entry point (``pipepulse dashboard serve`` runs it with Streamlit).

Signs the user in (``auth``), draws the global controls (``state``, kept in the URL) and runs the
selected page from ``views/``. Pages get the filters from ``state.current()``.

The pages live in ``views/``, not ``pages/``: Streamlit maps a URL such as ``/costs`` straight to
``pages/costs.py`` when that folder exists, which would run a page without this script (and so
without the login wall).
"""

from __future__ import annotations

import time
from datetime import timedelta

import streamlit as st

from dashboard import auth, data, state
from pipepulse.errors import PipepulseError


@st.cache_resource
def _icon() -> str:
    """The tab's icon, drawn here (a pulse line on a red square), as a ``data:`` URI: a
    ``:material/...:`` page icon makes the browser fetch its SVG from fonts.gstatic.com, which an
    offline network refuses; given as bytes, Streamlit serves it as ``/media/<hash>.png``, which
    the request guard closes (``guard.CLOSED_PATHS``): a 404 in the console on a new browser
    session's first load. A data URI needs no request at all."""
    import base64
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((2, 2, 61, 61), radius=12, fill=(255, 75, 75, 255))
    draw.line([(8, 34), (20, 34), (26, 18), (34, 48), (40, 30), (44, 34), (56, 34)], fill="white", width=5, joint="curve")
    out = io.BytesIO()
    img.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


st.set_page_config(page_title="pipepulse", page_icon=_icon(), layout="wide")


PAGES = [
    st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", url_path="", default=True),
    st.Page("views/pipelines.py", title="Pipelines", icon=":material/account_tree:", url_path="pipelines"),
    st.Page("views/run_detail.py", title="Run detail", icon=":material/receipt_long:", url_path="run"),
    st.Page("views/costs.py", title="Costs", icon=":material/payments:", url_path="costs"),
    st.Page("views/anomalies.py", title="Anomalies", icon=":material/crisis_alert:", url_path="anomalies"),
    st.Page("views/collectors.py", title="Collectors", icon=":material/cloud_sync:", url_path="collectors"),
    # /overview, the Overview by its name: Streamlit serves the default page at / only, and
    # answered /overview with "Page not found" (a hidden page runs the same script there; a
    # switch to / would lose the filters in the URL, which a switch may not set)
    st.Page("views/overview.py", title="Overview", url_path="overview", visibility="hidden"),
]


def _cannot_read(exc: Exception) -> None:
    """Say why the data cannot be read and stop this run: while the database is unreachable, one
    line and a rerun every ``data.RETRY_SECONDS`` (it recovers by itself when the database is back);
    any other error that is not pipepulse's own goes on up."""
    down = data.database_down(exc)
    if down is None and not isinstance(exc, PipepulseError):
        raise exc
    if down is None:
        st.error(f"The dashboard cannot read its data: {exc}")
        st.stop()
    st.error(f"database unreachable: {down} (retrying every {data.RETRY_SECONDS} s)")
    st.session_state["_pp_down_since"] = time.monotonic()  # this full run; the timer's calls rerun

    @st.fragment(run_every=data.RETRY_SECONDS)
    def _retry() -> None:
        if time.monotonic() - st.session_state.get("_pp_down_since", 0) >= data.RETRY_SECONDS - 1:
            st.rerun(scope="app")

    _retry()
    st.stop()


user = auth.require_user([p.url_path for p in PAGES])
page = st.navigation(PAGES)

try:
    cfg = data.config()
    now_day = state.now_minute().date()
    pipeline_options = data.pipeline_options(now_day.replace(day=1).replace(year=now_day.year - 1))
    # accounts billed in the last two weeks: a year of cost rows is millions of rows to scan
    account_options = data.account_options(now_day - timedelta(days=14))
    region_options = data.region_options(now_day - timedelta(days=14))
except Exception as exc:  # noqa: BLE001 - _cannot_read raises again what is not a data error
    _cannot_read(exc)

filters = state.controls(
    pipeline_options, account_options, default_range=cfg.default_range, refresh_seconds=cfg.refresh_seconds,
    region_options=region_options,
)
st.session_state["_pp_filters"] = filters
st.sidebar.caption(state.summary(filters))

if filters.refresh:
    st.session_state["_pp_last_full_run"] = time.monotonic()

    @st.fragment(run_every=cfg.refresh_seconds)
    def _auto_refresh() -> None:
        # The first call happens within the full run; later calls come from the timer.
        if time.monotonic() - st.session_state.get("_pp_last_full_run", 0) >= cfg.refresh_seconds - 1:
            st.rerun(scope="app")

    with st.sidebar:
        _auto_refresh()
        st.caption(f"Refreshed {filters.now:%H:%M} UTC; every {cfg.refresh_seconds} s")

auth.sign_out_button(user)

try:
    page.run()
except Exception as exc:  # noqa: BLE001 - _cannot_read raises again what is not a data error
    _cannot_read(exc)
