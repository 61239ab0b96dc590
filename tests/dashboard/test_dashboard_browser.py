"""End to end in headless Chromium: the real ``pipepulse dashboard serve`` over a realistic
database (SQLite, and PostgreSQL when ``PIPEPULSE_TEST_DBS`` has it), every page, deep links,
acknowledging an anomaly, HTML shown as text, and the login wall on a non-local address.

Screenshots of every page go to ``artifacts/screenshots/<page>.png`` (``<page>-postgresql.png``),
and over the demo's own data to ``artifacts/screenshots/demo-<page>.png`` (1440 px) and
``demo-fit-<page>-<width>.png`` (1024 and 1440 px).
Needs Debian's ``/usr/bin/chromium``; skipped without it unless ``PIPEPULSE_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, time
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from dash_paths import DEMO_CONFIG, ROOT
from servers import Server, free_port

from pipepulse.access import hash_password
from store.schema import anomalies

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"  # the shared `browser` fixture is in tests/conftest.py
SHOTS = ROOT / "artifacts" / "screenshots"
# page path, screenshot name, plotly charts it draws with the dataset, a text it must show
PAGES = [
    ("/", "overview", 1, "Recent failures"),
    ("/pipelines", "pipelines", 3, "Run history"),
    ("/costs", "costs", 2, "Cost anomalies"),  # the Spend view
    ("/costs?view=Forecast", "costs_forecast", 1, "Interval coverage"),
    ("/costs?view=Unit+costs", "costs_unit", 2, "Estimate against bill"),
    ("/anomalies", "anomalies", 0, "Act on one"),
    ("/collectors", "collectors", 1, "Passes"),
]

if not Path(CHROMIUM).exists():
    if os.environ.get("PIPEPULSE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{CHROMIUM} is missing and PIPEPULSE_REQUIRE_BROWSER=1: install Debian's chromium", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium to run the browser tests)", allow_module_level=True)


@pytest.fixture(scope="module")
def served(shared_db, tmp_path_factory):
    """``(server, Dataset, db_url, kind)``: the dashboard serving the module's dataset."""
    url, ds, kind = shared_db
    server = Server(url, cwd=tmp_path_factory.mktemp(f"browser-{kind}"))
    yield server, ds, url, kind
    server.stop()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 2200})
    pg = ctx.new_page()
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.dialogs = dialogs
    yield pg
    ctx.close()


def _settle(pg, *, plots: int = 0, text: str | None = None, timeout: float = 45_000) -> None:
    """Wait until the script has run and ``plots`` plotly charts are drawn (and ``text`` shows)."""
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)
    if text:
        pg.get_by_text(text).filter(visible=True).first.wait_for(timeout=timeout)
    if plots:
        pg.wait_for_function(
            "n => [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.querySelector('.main-svg')).length >= n",
            arg=plots, timeout=timeout,
        )
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)
    # elements whose code loads lazily (tables, metric tiles) show a grey skeleton until it has
    # arrived; a screenshot taken before then shows placeholders instead of the page
    pg.wait_for_function("() => document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0", timeout=timeout)


def _shot(pg, name: str, kind: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / (f"{name}.png" if kind == "sqlite" else f"{name}-{kind}.png")
    pg.screenshot(path=str(path), full_page=True)
    return path


def test_every_page_draws_without_errors(served, page):
    server, ds, _, kind = served
    for path, name, plots, text in PAGES:
        page.goto(server.base + path)
        _settle(page, plots=plots, text=text)
        assert page.locator('[data-testid="stException"]').count() == 0, name
        assert page.locator('[data-testid="stAlertContentError"]').count() == 0, name
        assert page.locator(".js-plotly-plot").count() == plots, name
        _shot(page, name, kind)
    # the run detail page, for a run that retried a stage
    page.goto(server.base + "/run?run=" + ds.run_ids["retried"])
    _settle(page, plots=1, text="Log lines")
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('.pp-k[data-key="run_kpis"] .v').first.inner_text() == "SUCCEEDED"
    _shot(page, "run_detail", kind)


def test_a_new_sessions_first_load_fetches_nothing_that_fails(served, page):
    # the tab icon, given to Streamlit as PNG bytes, was /media/<hash>.png, which the guard
    # closes: a 404 on the first load of every new browser session; now it is a data: URI
    server, *_ = served
    failed = []
    page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
    page.goto(server.base + "/")
    _settle(page, plots=1, text="Recent failures")
    page.wait_for_timeout(1000)  # the favicon is asked for after the page has drawn
    assert failed == []
    icon = page.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)")
    assert icon and all(h.startswith("data:image/png;base64,") for h in icon)


def test_overview_by_its_name_opens_the_overview(served, page):
    # /overview (the page's url_path) opened a "Page not found" modal: Streamlit serves the
    # default page at / only; it now opens the Overview there, its filters kept
    server, *_ = served
    page.goto(server.base + "/overview?range=30d")
    _settle(page, plots=1, text="Recent failures")
    assert page.get_by_text("Page not found").count() == 0
    assert page.locator('[data-testid="stDialog"]').count() == 0
    assert page.url == server.base + "/overview?range=30d"
    # the range from the URL reached the page: its KPI caption (which says whether the 30 days
    # before are compared) and the sidebar's summary both start "Last 30d"
    assert page.get_by_text(re.compile(r"^Last 30d[ .]")).count() == 1
    assert page.get_by_text(re.compile(r"^Last 30d: ")).count() == 1


def test_deep_link_applies_its_filters(served, page):
    server, *_ = served
    asked = []
    page.on("request", lambda r: asked.append(r.url))
    page.goto(server.base + "/pipelines?pipeline=orders&range=30d&status=FAILED")
    _settle(page, plots=3, text="Run history")
    # dashboard/serve.py tells the frontend where the root is: no probe of /pipelines/_stcore/health
    # (a 404 and a 100 ms wait) before it asks the root
    assert [u for u in asked if "/_stcore/health" in u] == [server.base + "/_stcore/health"]
    # plotly's chunk is fetched once, from the page's preload hint: before the app asks for its
    # health (so before any chart arrives), and the chart's import reuses it
    plotly = [i for i, u in enumerate(asked) if "/static/js/PlotlyChart." in u]
    assert len(plotly) == 1
    assert plotly[0] < asked.index(server.base + "/_stcore/health")
    assert page.get_by_text("orders, last 30d").count() == 1
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.get_by_text("Last 30d: ").inner_text().endswith("UTC; pipelines orders")
    assert "pipeline=orders" in page.url and "range=30d" in page.url
    # the duration chart has one pipeline: its p95 and p50 lines
    names = page.evaluate("() => document.querySelectorAll('.js-plotly-plot')[0].data.map(t => t.name)")
    assert names[:2] == ["orders p95", "orders p50"]

    # the run history's status filter, in its own popover
    assert page.get_by_text(" FAILED runs").count() == 1
    assert {s.strip() for s in page.locator('[data-key="history"] tbody td:nth-child(4)').all_inner_texts()} == {"FAILED"}
    page.get_by_role("button", name="Status").click()
    page.locator('[data-testid="stPopoverBody"] [data-testid="stMultiSelect"]').get_by_text("FAILED").wait_for()
    page.keyboard.press("Escape")

    # the controls sit in the sidebar's Filters popover, drawn when it is opened, with the link's values
    assert page.locator('[data-testid="stSelectbox"]').count() == 0
    sidebar.get_by_role("button", name="Filters").click()
    popover = page.locator('[data-testid="stPopoverBody"]')
    popover.get_by_text("Time range").wait_for()
    assert popover.locator('[data-testid="stSelectbox"] input').first.input_value() == "30d"
    assert popover.locator('[data-testid="stMultiSelect"]').first.get_by_text("orders").count() == 1
    # changing one there reruns the page with it and puts it in the address bar
    popover.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="90d").click()
    page.get_by_text("orders, last 90d").wait_for()
    page.wait_for_url(lambda u: "range=90d" in u)
    assert "pipeline=orders" in page.url
    assert sidebar.get_by_text("Last 90d: ").count() == 1


def test_costs_tabs_draw_one_view_and_keep_it_in_the_url(served, page):
    server, *_ = served
    page.goto(server.base + "/costs?range=30d&by=region&amount=effective")
    _settle(page, plots=2, text="Cost anomalies")
    assert page.get_by_text("Estimate against bill").count() == 0  # the other views are not drawn

    def selectors() -> list[str]:
        return [x.input_value() for x in page.locator('[data-testid="stSelectbox"] input').all()]

    # each view draws the selectors it uses: Spend both, Forecast the amount, Unit costs none
    assert selectors() == ["region", "effective"]
    page.get_by_role("tab", name="Forecast").click()
    page.wait_for_url("**view=Forecast**")
    _settle(page, plots=1, text="Interval coverage")
    assert page.locator(".js-plotly-plot").count() == 1
    assert page.get_by_text("Cost anomalies").count() == 0
    assert "range=30d" in page.url and "amount=effective" in page.url
    assert selectors() == ["effective"]
    tiles = page.locator('[data-key="forecast_tiles"] > div')
    assert tiles.count() == 5 and tiles.nth(1).locator(".l").inner_text() == "Backtest MAE (model choice)"
    assert page.get_by_text("model robust-ets (chosen today from the series' history; the backtest figures replay", exact=False).count() == 1
    assert page.locator('[data-key="forecast_models"] tbody tr').count() == 2
    page.get_by_role("tab", name="Unit costs").click()
    page.wait_for_url("**view=Unit+costs**")
    _settle(page, plots=2, text="Estimate against bill")
    assert page.get_by_text("Interval coverage").count() == 0
    assert selectors() == []
    # back on Spend, its selectors have kept their values, and the URL has them again
    page.get_by_role("tab", name="Spend").click()
    _settle(page, plots=2, text="Cost anomalies")
    page.wait_for_function("() => location.search.includes('by=region') && location.search.includes('amount=effective')")
    assert "view=" not in page.url
    assert selectors() == ["region", "effective"]
    page.get_by_role("tab", name="Unit costs").click()
    page.wait_for_url("**view=Unit+costs**")
    _settle(page, plots=2, text="Estimate against bill")
    # the link opens the same view in a new page
    unit_url = page.url
    page.goto(unit_url)
    _settle(page, plots=2, text="Estimate against bill")
    assert page.get_by_role("tab", selected=True).inner_text() == "Unit costs"


def test_overview_tiles(served, page):
    server, *_ = served
    page.goto(server.base + "/")
    _settle(page, plots=1, text="Recent failures")
    tiles = page.locator('[data-key="kpis"] > div')
    labels = [tiles.nth(i).locator(".l").inner_text() for i in range(tiles.count())]
    assert labels == ["Success rate", "p95 duration", "Throughput (records/h)", "Failed runs", "Spend month to date",
                      "Forecast month end", "Open anomalies", "Runs"]
    assert tiles.nth(6).locator(".v").inner_text() == "3"
    # four to a row
    tops = [tiles.nth(i).bounding_box()["y"] for i in range(8)]
    assert len(set(tops[:4])) == 1 and len(set(tops[4:])) == 1 and tops[4] > tops[0]


def test_tables_download_as_csv_with_every_row(served, page):
    import pandas as pd

    server, *_ = served
    # the run history shows the newest 25 runs; its CSV has every run of the window (up to 1,000)
    page.goto(server.base + "/pipelines?range=90d")
    _settle(page, plots=3, text="Run history")
    shown = page.locator('[data-key="history"] tbody tr a').evaluate_all("a => a.map(x => x.getAttribute('href'))")
    assert len(shown) == 25
    with page.expect_download() as dl:
        page.locator('a[data-key="csv_history"]').click()
    assert dl.value.suggested_filename == "runs.csv"
    runs = pd.read_csv(dl.value.path())
    assert len(runs) > 25
    assert ["run?run=" + quote(r, safe="") for r in runs["run_id"][:25]] == shown
    assert {"pipeline", "status", "duration_seconds", "cost_usd", "error_message"} <= set(runs.columns)

    # on the root page too (the link is relative to the page), with the error as the text it is
    page.goto(server.base + "/")
    _settle(page, plots=1, text="Recent failures")
    with page.expect_download() as dl:
        page.locator('a[data-key="csv_failures"]').click()
    assert dl.value.suggested_filename == "failures.csv"
    failures = pd.read_csv(dl.value.path())
    assert len(failures) == page.locator('[data-key="failures"] tbody tr').count()
    assert "<script>alert(1)</script>" in set(failures["error_message"])


def test_html_in_an_error_is_shown_as_text(served, page):
    server, ds, _, _ = served
    page.goto(server.base + "/run?run=" + ds.run_ids["script"])
    _settle(page, plots=1, text="Log lines")
    code = page.locator('[data-testid="stCode"]').first.inner_text()
    assert "<script>alert(1)</script>" in code
    assert page.evaluate("() => [...document.scripts].some(s => s.textContent.includes('alert(1)'))") is False
    assert page.dialogs == []


def test_acknowledge_as_admin_is_stored(served, page):
    server, ds, url, _ = served
    fp = ds.fingerprints["thr"]
    page.goto(server.base + "/anomalies?fp=" + fp)
    _settle(page, text="Act on one")
    page.get_by_label("Note").fill("seasonal dip, expected")
    page.get_by_label("Note").press("Enter")
    _settle(page)
    page.get_by_role("button", name="Acknowledge").click()
    page.get_by_text("Acknowledged: orders records out").wait_for(timeout=30_000)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(sa.select(anomalies).where(anomalies.c.fingerprint == fp)).mappings().one()
    engine.dispose()
    assert (row["status"], row["status_by"], row["status_note"]) == ("acknowledged", "local", "seasonal dip, expected")


def test_login_wall_on_a_non_local_address(served, page, tmp_path):
    server, _, url, kind = served
    if kind != "sqlite":
        pytest.skip("the login wall does not depend on the database")
    # without a login configured, serve refuses to start
    refused = subprocess.run(
        [sys.executable, "-m", "cli", "--config", str(DEMO_CONFIG), "dashboard", "serve", "--address", "0.0.0.0",
         "--port", str(free_port())],
        cwd=tmp_path, env={**os.environ, "PIPEPULSE_DATABASE_URL": url, "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 1
    assert "refusing to serve the dashboard on 0.0.0.0 without a login" in refused.stderr
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        f'[pipepulse.users.ann]\npassword_hash = "{hash_password("admin-pw")}"\nrole = "admin"\n'
        f'[pipepulse.users.vic]\npassword_hash = "{hash_password("viewer-pw")}"\nrole = "viewer"\n'
    )
    # off loopback it also needs the names users reach it by (the test's: 127.0.0.1, always allowed)
    guarded = Server(url, cwd=tmp_path, address="0.0.0.0", secrets=secrets, args=("--allowed-host", "dash.example.com"))
    try:
        page.goto(guarded.base + "/costs?range=30d")
        _settle(page, text="Sign in to see the dashboard")
        page.get_by_label("User name").wait_for(timeout=30_000)
        assert page.locator(".js-plotly-plot").count() == 0
        assert page.locator('[data-testid="stMetric"]').count() == 0 and page.locator(".pp-k").count() == 0
        _shot(page, "login", kind)
        page.get_by_label("User name").fill("vic")
        page.get_by_label("Password", exact=True).fill("nope")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Wrong user name or password.").wait_for(timeout=30_000)
        assert page.locator(".js-plotly-plot").count() == 0
        page.get_by_label("User name").fill("vic")
        page.get_by_label("Password", exact=True).fill("viewer-pw")
        page.get_by_role("button", name="Sign in").click()
        _settle(page, plots=2, text="Cost anomalies")
        assert page.get_by_text("Signed in as vic (viewer)").count() == 1
        # a viewer sees anomalies but cannot act on them
        page.goto(guarded.base + "/anomalies")
        _settle(page, text="Sign in to see the dashboard")  # a new page load is a new session
        page.get_by_label("User name").fill("vic")
        page.get_by_label("Password", exact=True).fill("viewer-pw")
        page.get_by_role("button", name="Sign in").click()
        _settle(page, text="Only admins can acknowledge")
        assert page.get_by_role("button", name="Acknowledge").count() == 0
    finally:
        guarded.stop()
    shutil.rmtree(tmp_path / ".streamlit", ignore_errors=True)


def test_screenshots_of_the_demo(aws, _sqlite_template, tmp_path, browser):
    """The demo's own data (``pipepulse demo build``: backfill with its faults, AWS sources,
    collection, detection, forecasts), three weeks of it ending now, on every page at 1024 and
    1440 px through the same visual check as the test dataset (``_fit_problems``): no cut KPI
    value, no "None", no table scrolling sideways, the partial day marked. Screenshots
    ``artifacts/screenshots/demo-fit-<page>-<width>.png``, and ``demo-<page>.png`` at 1440 px.
    In SQLite, as ``make demo`` serves it (the pages on PostgreSQL are the other tests'), once per run."""

    from devkit.demo import build_demo
    from pipepulse.settings import load_settings
    from store.db import connect
    from store.schema import runs

    shutil.copy(_sqlite_template, tmp_path / "demo.db")
    db_url = f"sqlite:///{tmp_path / 'demo.db'}"
    engine = connect(db_url)

    settings = load_settings(
        {"PIPEPULSE_DATA_DIR": str(tmp_path / "demo"), "PIPEPULSE_DATABASE_URL": db_url, "AWS_ENDPOINT_URL": aws.endpoint},
        config_path=DEMO_CONFIG,
    )
    aws.enable_stepfunctions_execution()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    build_demo(settings, engine, days=21, end=end, local_aws=aws)
    with engine.connect() as conn:
        failed = conn.execute(sa.select(runs.c.run_id).where(runs.c.status == "FAILED", runs.c.source == "reference")
                              .order_by(runs.c.started_at.desc()).limit(1)).scalar_one()
    engine.dispose()
    kind = "sqlite"
    walked: list[str] = []

    def demo_checks(pg, name: str, width: int) -> None:
        assert pg.locator('[data-testid="stException"]').count() == 0, name
        assert pg.locator('[data-testid="stAlertContentError"]').count() == 0, name
        # the demo has every kind of data: no page shows an empty state ("No costs yet: run ...")
        assert pg.locator('[data-testid="stAlertContentInfo"]').filter(has_text=" yet").count() == 0, name
        if name == "run_detail":
            assert pg.locator('.pp-k[data-key="run_kpis"] .v').first.inner_text() == "FAILED"
        if width == 1440:
            _shot(pg, f"demo-{name}", kind)
            walked.append(name)

    server = Server(db_url, cwd=tmp_path)
    try:
        problems, outside = _walk_fit(browser, server.base, failed, "demo-fit", kind, end, on_page=demo_checks)
    finally:
        server.stop()
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())
    assert outside == []
    # every page of the walk of the test dataset, and the run detail
    assert {name for _, name, _, _ in PAGES} | {"run_detail"} <= set(walked)


# what the visual check finds wrong on a page: KPI values cut (wider than their box, or ending in
# an ellipsis), static tables or the page itself wider than the window (scrolling sideways)
_LAYOUT_PROBLEMS = """() => {
  const out = [];
  const cut = el => el.scrollWidth > el.clientWidth + 1;
  for (const v of document.querySelectorAll('.pp-k .v, [data-testid="stMetricValue"], [data-testid="stMetricValue"] *')) {
    const text = v.innerText.trim();
    if (cut(v)) out.push(`KPI value cut: "${text}" (${v.scrollWidth} px in ${v.clientWidth} px)`);
    if (/(\\u2026|\\.\\.\\.)$/.test(text)) out.push(`KPI value ends in an ellipsis: "${text}"`);
  }
  for (const t of document.querySelectorAll('.pp-t')) {
    if (cut(t)) out.push(`table ${t.dataset.key} scrolls sideways (${t.scrollWidth} px in ${t.clientWidth} px)`);
    for (const th of t.querySelectorAll('th')) {
      if (th.innerText.includes('_')) out.push(`table ${t.dataset.key}: snake_case header "${th.innerText}"`);
    }
  }
  const main = document.querySelector('[data-testid="stMain"]');
  if (main && cut(main)) out.push(`page scrolls sideways (${main.scrollWidth} px in ${main.clientWidth} px)`);
  if (cut(document.scrollingElement)) out.push('window scrolls sideways');
  return out;
}"""
# what makes a chart's text cramped: tick labels, titles, legend entries and notes that run into
# each other, or out of the chart (the top movers' long usage types at 1024 px did both)
_CHART_TEXT_PROBLEMS = """() => {
  const out = [];
  const boxes = sel => [...sel].map(t => [t, t.getBoundingClientRect()])
    .filter(([t, r]) => r.width > 0 && t.textContent.trim());
  const meets = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  for (const p of document.querySelectorAll('.js-plotly-plot')) {
    const name = (p.querySelector('.gtitle') || {}).textContent || '(untitled chart)';
    const frame = p.getBoundingClientRect();
    const texts = boxes(p.querySelectorAll('.xtick text, .ytick text, .gtitle, .legendtext, .annotation-text'));
    for (const [t, r] of texts) {
      if (r.left < frame.left - 1 || r.right > frame.right + 1) out.push(`${name}: "${t.textContent}" runs out of the chart`);
    }
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        if (meets(texts[i][1], texts[j][1])) out.push(`${name}: "${texts[i][0].textContent}" overlaps "${texts[j][0].textContent}"`);
      }
    }
  }
  return out;
}"""
# the pages of the visual check: path, screenshot name, charts drawn, a text it shows
_VISUAL_PAGES = [
    ("/", "overview", 1, "Recent failures"),
    ("/pipelines?range=30d", "pipelines", 3, "Run history"),
    ("/pipelines?range=24h", "pipelines_24h", 3, "Run history"),
    ("/costs", "costs", 2, "Cost anomalies"),
    ("/costs?view=Forecast", "costs_forecast", 1, "Interval coverage"),
    ("/costs?view=Unit+costs", "costs_unit", 2, "Estimate against bill"),
    ("/anomalies", "anomalies", 0, "Act on one"),
    ("/collectors", "collectors", 1, "Passes"),
    ("/run?run={failed}", "run_detail", 1, "Log lines"),
]


def _marks(pg) -> list[str]:
    """The texts of the partial-period marks ("today so far") on the page's charts."""
    return pg.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .flatMap(p => (p.layout.annotations || []).filter(a => a.name === 'partial').map(a => a.text))""")


def _fit_problems(pg, url: str, name: str, plots: int, text: str, width: int, data_end: datetime) -> list[str]:
    """Open ``url`` (a page of ``_VISUAL_PAGES``) in ``pg`` at ``width`` px and return what the
    visual check finds wrong: cut KPI values, tables or the page wider than the window, cramped
    chart text, "None" shown; the page's own checks (partial-period marks, hourly ticks, MAPE/MASE
    in words, units, run-detail deltas) are asserted here. ``data_end``: where the stored rows end
    (the dataset's or the demo's ``end``)."""

    # the page's window ends at now floored to the minute: in an hour's (a day's) first minute it
    # ends on the bucket's edge and nothing is partial, so no mark is drawn
    clocks = [datetime.now(UTC)]
    pg.goto(url)
    _settle(pg, plots=plots, text=text)
    clocks.append(datetime.now(UTC))
    hour_edge = any(c.minute == 0 for c in clocks)
    day_edge = any(c.minute == 0 and c.hour == 0 for c in clocks)
    # the rows were written up to ``data_end``: when the day turned after it (a run across
    # midnight UTC), today has no cost rows yet, so the cost chart has no partial day to mark
    no_cost_today = any(data_end <= datetime.combine(c.date(), time(0), UTC) for c in clocks)
    found = pg.evaluate(_LAYOUT_PROBLEMS) + pg.evaluate(_CHART_TEXT_PROBLEMS)
    shown = pg.locator('[data-testid="stMain"]').inner_text()
    found += [f'"None" shown: ...{m.group(0)}...' for m in re.finditer(r".{0,30}\bNone\b.{0,30}", shown)]
    if name == "pipelines":
        assert _marks(pg) == ["today so far"] * 3 or (day_edge and _marks(pg) == []), width
    if name == "pipelines_24h":
        assert _marks(pg) == ["this hour so far"] * 3 or (hour_edge and _marks(pg) == []), width
        ticks = pg.locator(".js-plotly-plot .xtick text").all_text_contents()
        assert ticks and not [t for t in ticks if "." in t or ":59" in t], ticks
    if name == "costs":
        assert (_marks(pg) or day_edge or no_cost_today) and set(_marks(pg)) <= {"today so far", "not over (partial)"}, width
    if name == "costs_forecast":  # MAPE and MASE said in words, on the page and on the tile
        assert "MAPE (mean absolute percentage error)" in shown and "MASE (mean absolute scaled error)" in shown
        tile = pg.locator(".pp-k > div").filter(has_text="Backtest MAPE")
        assert "MASE" in tile.inner_text() and "MASE (mean absolute scaled error)" in tile.get_attribute("title")
    if name == "anomalies":  # each observed value with its unit (s, USD, %, records ...)
        cells = pg.locator('.pp-t[data-key="anomalies"] tbody tr td:nth-child(4)').all_inner_texts()
        assert cells, "no anomalies listed"
        bare = [c for c in cells if not re.match(r"^[\d,.]+ ?(%|[A-Za-z/]+) \(expected [\d,.]+ ?(%|[A-Za-z/]+)", c)]
        assert not bare, bare
    if name == "run_detail":  # the cost against the day's average: never "+-0.0000" or a signed zero
        delta = pg.locator('.pp-k[data-key="run_kpis"] .d').all_inner_texts()
        assert delta and not [d for d in delta if re.search(r"\+-|[+-]0\.0+\b", d)], delta
    return found


def _walk_fit(
    browser, base: str, failed: str, shot_prefix: str, kind: str, data_end: datetime, on_page=None
) -> tuple[dict[str, list[str]], list[str]]:
    """Every page of ``_VISUAL_PAGES`` at 1024 and 1440 px, offline, through ``_fit_problems``
    (``failed``: the run the run detail opens; ``data_end``: where the stored rows end), each screenshot ``<shot_prefix>-<page>-<width>.png``;
    ``on_page(pg, name, width)`` runs after each page's check. Returns the problems by page and
    width, and the requests that left the server (aborted)."""
    outside: list[str] = []

    def offline(route) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    problems: dict[str, list[str]] = {}
    for width in (1024, 1440):
        ctx = browser.new_context(viewport={"width": width, "height": 1000})
        ctx.route("**/*", offline)
        pg = ctx.new_page()
        try:
            for path, name, plots, text in _VISUAL_PAGES:
                if name == "pipelines_24h" and width != 1024:
                    continue  # the layout of /pipelines at 30d; its hourly marks and ticks do not depend on the width
                found = _fit_problems(pg, base + path.format(failed=failed), name, plots, text, width, data_end)
                if found:
                    problems[f"{name} at {width} px"] = found
                if on_page is not None:
                    on_page(pg, name, width)
                _shot(pg, f"{shot_prefix}-{name}-{width}", kind)
        finally:
            ctx.close()
    return problems, outside


def test_pages_fit_at_1024_and_1440_px_offline(served, browser):
    """At 1024 and 1440 px every page of the dataset shows its KPI values whole and its tables
    without sideways scroll, no "None", and the unfinished day (or hour) marked; the browser asks
    nothing of the internet (an icon font from a CDN would fail offline).
    Screenshots: ``artifacts/screenshots/fit-<page>-<width>.png``."""
    server, ds, _, kind = served
    if kind != "sqlite":
        pytest.skip("the layout does not depend on the database")
    problems, outside = _walk_fit(browser, server.base, ds.run_ids["failed"], "fit", kind, ds.end)
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())
    assert outside == []


def test_pipelines_beyond_the_named_six_are_one_band_in_the_browser(tmp_path, browser):
    """Eight pipelines: the six slowest (busiest) are named lines, the other two one grey band from
    their lowest to their highest value per day around their median, as plotly.js received them."""
    from datetime import timedelta

    from store.db import connect, upgrade
    from store.rollups import refresh_run_daily
    from store.schema import runs
    from store.writes import upsert

    day1 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=10)
    # (pipeline, day 1 and day 2 durations, day 1 and day 2 records out); one run a day: p95 = p50 = its duration
    shape = [("small_a", (10.0, 20.0), (5, 7)), ("small_b", (30.0, 12.0), (9, 1))]
    shape += [(f"big_{i}", (100.0 + i, 100.0 + i), (100 + i, 100 + i)) for i in range(6)]
    rows = [
        {"run_id": f"{name}-{d}", "pipeline": name, "source": "reference", "status": "SUCCEEDED",
         "started_at": day1 + timedelta(days=d, hours=1), "ended_at": day1 + timedelta(days=d, hours=1, seconds=secs[d]),
         "duration_seconds": secs[d], "records_out": out[d]}
        for name, secs, out in shape for d in (0, 1)
    ]
    url = f"sqlite:///{tmp_path / 'band.db'}"
    engine = connect(url)
    upgrade(engine)
    with engine.begin() as conn:
        upsert(conn, runs, rows, now=day1 + timedelta(days=3))
        refresh_run_daily(conn, days={day1.date(), (day1 + timedelta(days=1)).date()})
    engine.dispose()
    server = Server(url, cwd=tmp_path)
    try:
        ctx = browser.new_context(viewport={"width": 1400, "height": 2200})
        page = ctx.new_page()
        page.goto(server.base + "/pipelines?range=30d&to=" + (day1 + timedelta(days=2)).date().isoformat())
        _settle(page, plots=3, text="Run history")
        # numeric arrays arrive base64-packed ({dtype, bdata}); plotly.js keeps the decoded values in _inputArray
        read = """i => {
            const a = v => v == null ? null : Array.from(v._inputArray || v);
            return document.querySelectorAll('.js-plotly-plot')[i].data.slice(0, 3).map(
                t => [t.name, a(t.y), t.customdata ? a(t.customdata).map(a) : null, t.fill || null]);
        }"""
        band = ["2 other pipelines: highest", "2 other pipelines: range and median", "2 other pipelines: median"]
        # duration: small_a (10, 20) and small_b (30, 12); the count of pipelines and the range ride on the median
        assert page.evaluate(read, 0) == [
            [band[0], [30, 20], None, None], [band[1], [10, 12], None, "tonexty"], [band[2], [20, 16], [[2, 10, 30], [2, 12, 20]], None],
        ]
        # throughput: small_a (5, 7) and small_b (9, 1)
        assert page.evaluate(read, 1) == [
            [band[0], [9, 7], None, None], [band[1], [5, 1], None, "tonexty"], [band[2], [7, 4], [[2, 5, 9], [2, 1, 7]], None],
        ]
        # the legend says what the band is; the six named pipelines each have their own entry
        legend = page.locator(".js-plotly-plot").first.locator(".legendtext").all_text_contents()
        assert legend == ["2 other pipelines: range and median", *(f"big_{i} p95" for i in range(6))]
        _shot(page, "pipelines_band", "sqlite")
        ctx.close()
    finally:
        server.stop()
