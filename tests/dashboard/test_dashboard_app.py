"""Page logic through Streamlit's AppTest: filters from the URL, empty states, the acknowledge
flow, roles and the login wall. (The real browser is in ``test_browser.py``.)"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pandas as pd
import pytest
import sqlalchemy as sa
from dash_paths import APP
from streamlit.testing.v1 import AppTest

from pipepulse.access import hash_password
from store.schema import anomalies

PAGES = ["views/overview.py", "views/pipelines.py", "views/run_detail.py", "views/costs.py", "views/anomalies.py", "views/collectors.py"]


def _open(page: str | None = None, *, query: dict | None = None, secrets: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    if secrets:
        at.secrets = secrets
    at.run()
    if page:
        at.switch_page(page)
    if query:
        at.query_params = dict(query)
    if page or query:
        at.run()
    return at


class _TableParser(HTMLParser):
    """The header and rows of the first <table> under ``data-key=key``, as text."""

    def __init__(self, key: str):
        super().__init__()
        self.key, self.inside, self.rows, self.cell = key, False, [], None

    def handle_starttag(self, tag, attrs):
        if dict(attrs).get("data-key") == self.key:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if self.inside and tag in ("td", "th"):
            self.rows[-1].append(self.cell)
            self.cell = None
        elif tag == "table":
            self.inside = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def _static_table(at: AppTest, key: str) -> pd.DataFrame:
    """A table drawn by ``ui.table(static=True)``: its cells as the user reads them."""
    for element in at.get("html"):
        parser = _TableParser(key)
        parser.feed(element.proto.body)
        if parser.rows:
            return pd.DataFrame(parser.rows[1:], columns=parser.rows[0])
    raise AssertionError(f"no static table {key!r} on the page")


_TILE = re.compile(r'<div class="l">(.*?)</div><div class="v">(.*?)</div>(?:<div class="d[^"]*" data-change="(-?\d)">(.*?)</div>)?')


def _tiles(at: AppTest, key: str = "kpis") -> dict[str, tuple[str, str | None, int | None]]:
    """The KPI tiles drawn by ``ui.tiles(key=key)``: label -> (value, delta, its direction), as the
    user reads them (the delta's arrow stripped)."""
    for element in at.get("html"):
        body = element.proto.body
        if f'data-key="{key}"' in body:
            return {
                html.unescape(m[0]): (html.unescape(m[1]), html.unescape(m[3]).lstrip("\u25b2\u25bc ") if m[2] else None, int(m[2]) if m[2] else None)
                for m in _TILE.findall(body)
            }
    return {}


def _texts(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.info] + [e.value for e in at.success]
    parts += [e.value for e in at.text] + [e.value for e in at.code] + [e.value for e in at.error]
    return "\n".join(str(p) for p in parts)


def test_every_page_renders_the_demo_data(filled_db, app_env):
    url, ds = filled_db
    app_env(url)
    for page in PAGES:
        at = _open(None if page == PAGES[0] else page)
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
    at = _open()
    tiles = _tiles(at)
    assert tiles["Open anomalies"] == ("3", None, None)
    assert tiles["Forecast month end"] == ("3,050 USD", "+450 vs budget 2,600", 1)  # demo.toml: budget 2,600
    deltas = {label: (delta, way) for label, (_, delta, way) in tiles.items() if delta}
    assert len(deltas) == 7
    for label, (delta, way) in deltas.items():  # the arrow follows the shown number's sign
        number = delta.split()[0]
        assert way == (0 if number.strip("+-0.,") == "" else 1 if number.startswith("+") else -1), label
    failures = _static_table(at, "failures")
    # the error as text: escaped in the HTML, read back as typed
    assert "<script>alert(1)</script>" in set(failures["error"])
    assert not any("<script>" in h.proto.body for h in at.get("html"))


def _open_link(query: dict) -> AppTest:
    """The Overview opened from a link with ``query`` (see test_deep_link_applies_filters)."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params = dict(query)
    return at.run()


RUN_TILES = ("Success rate", "p95 duration", "Throughput (records/h)", "Failed runs", "Runs")


def _records_out_and_first_run(url: str, start: datetime, end: datetime) -> tuple[float, datetime]:
    from store.schema import runs

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(runs.c.records_out), 0))
                             .where(runs.c.started_at >= start, runs.c.started_at < end)).scalar_one()
        first = conn.execute(sa.select(sa.func.min(runs.c.started_at))).scalar_one()
    engine.dispose()
    return float(total), first.replace(tzinfo=UTC) if first.tzinfo is None else first


def test_overview_compares_only_with_a_covered_window_and_counts_throughput_from_the_first_run(filled_db, app_env):
    # the dataset holds 30 days of runs: a 90d window reaches 60 days back before them, and the
    # 90d before it hold no runs at all
    url, ds = filled_db
    app_env(url)
    to = ds.end.date() - timedelta(days=1)  # "Up to" yesterday: the window ends at today's midnight
    end = datetime.combine(to + timedelta(days=1), datetime.min.time(), UTC)
    at = _open_link({"range": "90d", "to": to.isoformat()})
    assert not at.exception
    tiles = _tiles(at)
    total, first = _records_out_and_first_run(url, end - timedelta(days=90), end)
    # records per hour over the hours from the first stored run on, not over all 90 days
    assert tiles["Throughput (records/h)"][0] == f"{total / ((end - first).total_seconds() / 3600):,.0f}"
    # no tile shows a change against a window the history does not cover
    assert [tiles[t][1] for t in RUN_TILES] == [None] * len(RUN_TILES)
    assert [c.value for c in at.caption][0] == (
        f"Last 90d. No changes shown: the stored runs start {first:%Y-%m-%d %H:%M} UTC, so the 90d before hold too "
        "little to compare with"
    )

    # a week is covered, as is the week before it: every run tile shows its change, and
    # throughput is over the whole week (the history starts before it)
    at = _open_link({"range": "7d", "to": to.isoformat()})
    tiles = _tiles(at)
    total, _ = _records_out_and_first_run(url, end - timedelta(days=7), end)
    assert tiles["Throughput (records/h)"][0] == f"{total / (7 * 24):,.0f}"
    assert all(tiles[t][1] is not None for t in RUN_TILES), tiles
    assert [c.value for c in at.caption][0] == "Last 7d against the 7d before"


def test_overview_spend_change_only_against_covered_days_of_the_month_before(fresh_filled_db, app_env):
    from store.schema import cost_daily

    url, ds = fresh_filled_db
    app_env(url)
    today = ds.end.date()
    assert _tiles(_open())["Spend month to date"][1].endswith(" vs last month")
    # drop the cost rows of more than half of last month's days 1..today's day: no baseline left
    prev_start = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    cut = prev_start + timedelta(days=min(today.day, 28) // 2 + 1)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(cost_daily.delete().where(cost_daily.c.day < cut))
    engine.dispose()
    app_env(url)
    tiles = _tiles(_open())
    assert tiles["Spend month to date"][0].endswith(" USD") and tiles["Spend month to date"][1] is None


def test_overview_up_to_a_past_month_shows_that_months_bill_against_the_budget(filled_db, app_env):
    from store.costs import daily_cost

    url, ds = filled_db
    app_env(url)
    month = (ds.end.date().replace(day=1) - timedelta(days=1)).replace(day=1)  # last month: the dataset bills all of it
    to = month + timedelta(days=10)
    nxt = (month + timedelta(days=32)).replace(day=1)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        whole = float(daily_cost(conn, month, nxt - timedelta(days=1))["billed_cost"].sum())
        part = float(daily_cost(conn, month, to)["billed_cost"].sum())
    engine.dispose()
    tiles = _tiles(_open_link({"to": to.isoformat()}))
    assert tiles["Spend month to date"][0] == f"{part:,.0f} USD"
    # that month's own bill against the budget (demo.toml: 2,600), not this month's forecast
    assert "Forecast month end" not in tiles
    change = whole - 2600
    assert tiles[f"Spend in {month:%B %Y}"] == (f"{whole:,.0f} USD", f"{change:+,.0f} vs budget 2,600", (change > 0) - (change < 0))


def test_deep_link_applies_filters(filled_db, app_env):
    # AppTest loses sidebar widgets on reruns under st.navigation, so the link is opened on the
    # default page in the first run; test_browser.py opens deep links on every page.
    url, ds = filled_db
    app_env(url)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params = {"pipeline": "orders", "range": "30d"}
    at.run()
    assert not at.exception
    assert at.selectbox(key="range").value == "30d"
    assert at.multiselect(key="pipeline").value == ["orders"]
    # (the dataset's 30 days of runs do not cover the 30 days before: no changes, and the caption says so)
    assert [c.value for c in at.caption][0].startswith("Last 30d. No changes shown: the stored runs start ")
    # the sidebar's caption (Markdown, escaped) says what the Filters popover selects
    summary = [re.sub(r"\\(.)", r"\1", c.value) for c in at.sidebar.caption]
    assert len(summary) == 1 and summary[0].startswith("Last 30d: ") and summary[0].endswith(" UTC; pipelines orders")
    failures = _static_table(at, "failures")
    assert set(failures["pipeline"]) == {"orders"}
    assert len(failures) >= 1


def test_pipelines_page_status_filter_from_the_url(filled_db, app_env):
    url, ds = filled_db
    app_env(url)
    at = _open("views/pipelines.py", query={"status": "FAILED"})
    assert not at.exception
    history = _static_table(at, "history")  # the newest runs as a static table
    assert set(history["status"]) == {"FAILED"}
    assert 1 <= len(history) <= 25
    assert at.multiselect(key="status").value == ["FAILED"]
    assert f"{len(history)} FAILED runs." in [c.value for c in at.caption]
    # a status with no runs says so (the dataset has no cancelled runs)
    at = _open("views/pipelines.py", query={"status": "CANCELLED"})
    assert "No CANCELLED runs in this window." in [i.value for i in at.info]
    assert not any('data-key="history"' in h.proto.body for h in at.get("html"))
    at = _open("views/pipelines.py", query={"status": "FAILED"})
    at.toggle(key="browse").set_value(True).run()  # the interactive grid on request
    history = [d.value for d in at.dataframe if "trigger" in d.value.columns][0]
    assert set(history["status"]) == {"FAILED"}
    assert len(history) >= 1


def test_run_lists_filter_by_region_and_account_from_the_url(filled_db, app_env):
    # opened on the default page in the first run (see test_deep_link_applies_filters)
    url, ds = filled_db
    app_env(url)

    def overview(query: dict) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.query_params = {"range": "30d", **query}
        at.run()
        assert not at.exception
        return at

    # every run of the dataset was read in us-east-1 of its first account; its cost spans two
    # regions and two accounts
    at = overview({"region": "eu-west-1"})
    assert at.multiselect(key="region").value == ["eu-west-1"]
    summary = [re.sub(r"\\(.)", r"\1", c.value) for c in at.sidebar.caption]
    assert summary[0].endswith("; regions eu-west-1")
    assert "No failed runs in this window." in [m.value for m in at.success]
    assert not any('data-key="failures"' in h.proto.body for h in at.get("html"))
    at = overview({"region": "us-east-1"})
    assert len(_static_table(at, "failures")) >= 1
    at = overview({"account": "210987654321"})  # the second account: cost, no runs
    assert at.multiselect(key="account").value == ["210987654321"]
    assert "No failed runs in this window." in [m.value for m in at.success]


def test_run_detail_shows_an_html_error_as_text(filled_db, app_env):
    url, ds = filled_db
    app_env(url)
    at = _open("views/run_detail.py", query={"run": ds.run_ids["script"]})
    assert not at.exception
    assert any("<script>alert(1)</script>" in c.value for c in at.code)
    assert not any("<script>" in m.value for m in at.markdown)  # never through Markdown/HTML
    assert _tiles(at, "run_kpis")["Status"] == ("FAILED", None, None)


def test_retried_run_lists_both_attempts(filled_db, app_env):
    url, ds = filled_db
    app_env(url)
    at = _open("views/run_detail.py", query={"run": ds.run_ids["retried"]})
    steps = [d.value for d in at.dataframe if "stage" in d.value.columns][0]
    assert list(steps.loc[steps["stage"] == "transform", "attempt"]) == [1, 2]
    assert list(steps.loc[steps["stage"] == "transform", "status"]) == ["FAILED", "SUCCEEDED"]


def test_overview_freshness_state_reads_on_one_line(filled_db, app_env):
    # the Overview's narrow freshness table broke "on_time" after its underscore ("on_ / time")
    url, ds = filled_db
    app_env(url)
    at = _open()
    states = list(_static_table(at, "freshness")["state"])
    assert "on_time" in states
    body = next(h.proto.body for h in at.get("html") if 'data-key="freshness"' in h.proto.body)
    table = body.split('data-key="freshness"')[1].split("</table>")[0]
    assert "on_<wbr>time" not in table
    # every state cell is kept on one line
    assert sum(table.count(f'<td class="nb">{s}</td>') for s in set(states)) == len(states)


def test_empty_database_says_what_to_run(db_url, app_env):
    app_env(db_url)
    at = _open()
    assert not at.exception
    text = _texts(at)
    assert "No runs in this window: run `pipepulse collect`" in text
    assert "No costs yet: run `pipepulse collect` or `pipepulse costs import PATH`" in text
    at = _open("views/costs.py")
    assert "No costs yet in this window: run `pipepulse collect` or `pipepulse costs import PATH`" in _texts(at)
    at = _open("views/costs.py", query={"view": "Forecast"})
    assert "No forecast yet: run `pipepulse forecast`" in _texts(at)
    at = _open("views/costs.py", query={"view": "Unit costs"})
    assert "No runs with cost estimates in this window: run `pipepulse collect`" in _texts(at)
    at = _open("views/anomalies.py")
    assert "No anomalies detected yet: run `pipepulse detect`" in _texts(at)


def test_admin_acknowledges_an_anomaly(filled_db, app_env):
    url, ds = filled_db
    app_env(url)
    fp = ds.fingerprints["dur"]
    at = _open("views/anomalies.py", query={"fp": fp})
    assert at.selectbox(key="fp_pick").value == fp
    # the explanation: expected value, band, and how far outside it the observed value is
    shown = [t.value for t in at.text]
    assert "clickstream duration p95\nobserved 1,050 s, expected 420 s (band 336 s to 504 s), score 0.97" in shown
    assert ("why: observed is 546 above the upper edge 504; the band is the expected value ± the threshold learned "
            "from this series' own history") in shown
    at.text_input(key="anomaly_note").input("deploy made it slow; rollback planned")
    at.button(key="ack").click().run()
    assert not at.exception
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(sa.select(anomalies).where(anomalies.c.fingerprint == fp)).mappings().one()
    engine.dispose()
    assert (row["status"], row["status_by"], row["status_note"]) == ("acknowledged", "local", "deploy made it slow; rollback planned")
    assert any("Acknowledged" in s.value for s in at.success)
    # the open list (a static table, and the picker under it, whose labels end in the fingerprint's
    # start) no longer offers it; the others are still there
    table = next(h.proto.body for h in at.get("html") if 'data-key="anomalies"' in h.proto.body)
    assert "<td>" in table
    options = at.selectbox(key="fp_pick").options
    assert options and not [o for o in options if f"({fp[:8]})" in o]
    # listed as acknowledged, the note is on the page with it (it was only in the CSV and the audit)
    at = _open("views/anomalies.py", query={"status": "acknowledged", "fp": fp})
    rows = _static_table(at, "anomalies")
    assert "acknowledged: deploy made it slow; rollback planned" in set(rows["status"])
    caption = next(c for c in (re.sub(r"\\(.)", r"\1", c.value) for c in at.caption) if c.startswith("status:"))
    assert caption.startswith("status: acknowledged: deploy made it slow; rollback planned (set by local at ")


def test_a_snoozed_anomaly_shows_until_when_and_its_note(filled_db, app_env):
    url, ds = filled_db
    app_env(url)
    fp = ds.fingerprints["snz"]
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        until = conn.execute(sa.select(anomalies.c.snoozed_until).where(anomalies.c.fingerprint == fp)).scalar_one()
    engine.dispose()
    at = _open("views/anomalies.py", query={"status": "snoozed", "fp": fp})
    assert not at.exception
    # the snooze's end and the note were only in the CSV and `dashboard audit`
    rows = _static_table(at, "anomalies")
    assert list(rows["status"]) == [f"snoozed until {until:%Y-%m-%d %H:%M}: known partner issue"]


def test_anomalies_list_newest_incident_first_and_act_on_one_preselects_it(fresh_filled_db, app_env):
    # one detect pass gives every anomaly it sees the same last_seen: the list must still be
    # newest incident (window) first, as `pipepulse anomalies list`, and not fingerprint order
    url, ds = fresh_filled_db
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        seen = conn.execute(sa.select(sa.func.max(anomalies.c.last_seen))).scalar_one()
        conn.execute(anomalies.update().values(last_seen=seen))
        # the throughput anomaly (the last fingerprint of the open ones) becomes the newest incident
        newest = conn.execute(sa.select(sa.func.max(anomalies.c.window_start))).scalar_one()
        conn.execute(anomalies.update().where(anomalies.c.fingerprint == ds.fingerprints["thr"])
                     .values(window_start=newest + timedelta(hours=6), window_end=newest + timedelta(hours=7)))
        expected = conn.execute(
            sa.select(anomalies.c.subject, anomalies.c.fingerprint).where(anomalies.c.status == "open")
            .order_by(anomalies.c.window_start.desc(), anomalies.c.fingerprint)
        ).all()
    engine.dispose()
    app_env(url)
    at = _open("views/anomalies.py")
    assert not at.exception
    table = _static_table(at, "anomalies")
    assert [a.split(": ", 1)[1] for a in table["anomaly"]] == [subject for subject, _ in expected]
    assert expected[0][1] == ds.fingerprints["thr"]
    assert at.selectbox(key="fp_pick").value == ds.fingerprints["thr"]


SECRETS = {
    "pipepulse": {
        "users": {
            "ann": {"password_hash": hash_password("admin-pw", salt=b"0123456789abcdef"), "role": "admin"},
            "vic": {"password_hash": hash_password("viewer-pw", salt=b"fedcba9876543210"), "role": "viewer"},
        }
    }
}


def _login(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="_pp_login_name").input(name)
    at.text_input(key="_pp_login_password").input(password)
    return at.button[0].click().run()


def test_public_address_requires_login_and_viewers_cannot_act(filled_db, app_env, monkeypatch):
    import dashboard.auth

    monkeypatch.setattr(dashboard.auth, "FAILED_LOGIN_DELAY", 0)
    url, ds = filled_db
    app_env(url, address="0.0.0.0")
    at = _open(secrets=SECRETS)
    assert not at.exception
    assert [t.value for t in at.title] == ["pipepulse"]
    assert not _tiles(at)  # nothing of the dashboard before signing in
    _login(at, "vic", "wrong")
    assert [e.value for e in at.error] == ["Wrong user name or password."]
    assert not _tiles(at)
    _login(at, "vic", "viewer-pw")
    assert not at.exception
    assert "Open anomalies" in _tiles(at)
    at.switch_page("views/anomalies.py").run()
    assert any("Only admins" in i.value for i in at.info)
    assert not [b for b in at.button if b.key in ("ack", "snooze", "resolve")]


def test_public_address_without_login_configured_shows_nothing(filled_db, app_env):
    url, _ = filled_db
    app_env(url, address="0.0.0.0")
    at = _open()
    assert not _tiles(at)
    assert "without a login configured" in at.error[0].value


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1"])
def test_loopback_needs_no_login(filled_db, app_env, address):
    url, _ = filled_db
    app_env(url, address=address)
    at = _open()
    assert "Open anomalies" in _tiles(at)


def test_auto_refresh_from_the_url(filled_db, app_env):
    url, _ = filled_db
    app_env(url)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params = {"refresh": "true"}
    at.run()
    assert not at.exception
    assert at.toggle(key="refresh").value is True
    assert any(c.value.endswith("every 60 s") for c in at.caption)


OIDC = {
    "auth": {"redirect_uri": "https://pp.example.com/oauth2callback", "cookie_secret": "x" * 32, "client_id": "c",
             "client_secret": "s", "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration"},
    "pipepulse": {"admins": ["ann@example.com"], "allowed_domains": ["example.com"]},
}


def test_oidc_sign_in_with_admins_from_secrets(filled_db, app_env):
    url, _ = filled_db
    app_env(url, address="0.0.0.0")
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.secrets = OIDC
    at.user = {"is_logged_in": False}
    at.run()
    assert not _tiles(at)
    assert [b.label for b in at.button] == ["Sign in"]
    for email, can_act in (("ann@example.com", True), ("bob@example.com", False)):
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.secrets = OIDC
        at.user = {"is_logged_in": True, "email": email, "email_verified": True}
        at.run()
        assert "Open anomalies" in _tiles(at)
        at.switch_page("views/anomalies.py").run()
        assert bool([b for b in at.button if b.key == "ack"]) is can_act, email


def test_costs_page_daily_spend_and_movers_match_the_store(filled_db, app_env):
    # cost_by_day and cost_movers share one read of both windows: same numbers as reading each alone
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from insights.costs import top_movers
    from store import costs as costs_store
    from store.db import connect

    url, _ = filled_db
    app_env(url)
    at = _open("views/costs.py")  # Group by service, billed, the last 7 days
    assert not at.exception
    assert not [d for d in at.dataframe if "cost" in d.value.columns and "day" in d.value.columns]  # drawn on request
    at.toggle(key="by_day_table").set_value(True).run()
    assert not at.exception
    end = datetime.now(UTC).date()
    start = end - timedelta(days=6)
    engine = connect(url)
    with engine.connect() as conn:
        window = costs_store.daily_cost(conn, start, end, by="service")
        both = costs_store.daily_cost(conn, start - timedelta(days=7), end, by="service")
    engine.dispose()
    frames = [d.value for d in at.dataframe]
    by_day = next(f for f in frames if list(f.columns) == ["day", "service", "cost"])
    want = window.groupby(["day", "service"], as_index=False)["billed_cost"].sum()
    assert len(want) >= 7 and want["day"].nunique() == 7
    assert [(d.date(), s, round(c, 6)) for d, s, c in by_day.itertuples(index=False)] == [
        (d, s, round(c, 6)) for d, s, c in want.itertuples(index=False)
    ]
    movers = _static_table(at, "movers")
    assert len(movers) >= 2
    want_movers = top_movers(both, by="service", start=start, end=end + timedelta(days=1), n=10, value="billed_cost")
    # as the table shows them: two decimals, signed change, percent to one decimal, blank when new
    assert list(movers.columns) == ["service", "this window", "previous", "change", "change %"]
    assert movers.values.tolist() == [
        [s, f"{c:.2f}", f"{p:.2f}", f"{d:+.2f}", "" if pd.isna(pct) else f"{pct * 100:.1f}%"]
        for s, c, p, d, pct in want_movers.itertuples(index=False)
    ]


def test_costs_page_draws_only_the_open_view(filled_db, app_env):
    url, _ = filled_db
    app_env(url)
    at = _open("views/costs.py")  # Spend: the daily spend, its movers and the cost anomalies
    assert not at.exception
    subheaders = [h.value for h in at.subheader]
    assert "Cost anomalies" in subheaders and "Cost per run" not in subheaders
    assert len(_static_table(at, "movers")) >= 2
    assert not _tiles(at, "forecast_tiles")
    at = _open("views/costs.py", query={"view": "Forecast"})  # a budget alert's link
    assert not at.exception
    forecast = _tiles(at, "forecast_tiles")
    assert set(forecast) == {"Month end (USD)", "Backtest MAE (model choice)", "Backtest MAPE", "Interval coverage", "Budget crossed"}
    assert forecast["Month end (USD)"][0] == "3,050"
    # which model the series uses, and the backtest error of the model choice (replayed over past
    # days, so not always that model) against the better simple forecast, named (4.20 against
    # seasonal-naive's 5.25: 0.80x, down, which is good)
    assert forecast["Backtest MAE (model choice)"] == ("4.20", "0.80x seasonal-naive's error", -1)
    captions = " ".join(c.value for c in at.caption)
    assert ("model robust\\-ets (chosen today from the series' history; the backtest figures replay the model choice over "
            "past days, where it could pick other models)") in captions  # markdown-escaped
    models = _static_table(at, "forecast_models")
    assert models.values.tolist() == [
        ["total", "robust-ets", "4.20", "0.70x", "0.80x", "79.0%", models.iloc[0, 6]],
        ["pipeline:orders", "last-value", "1.50", "1.00x", "0.75x", "75.0%", models.iloc[1, 6]],
    ]
    # the backtest columns say they measure the model choice: "pipeline:orders" with model last-value
    # at 1.00x last-value is a tie of the replayed choice, not a model against itself
    assert list(models.columns)[2:5] == ["choice's backtest MAE (USD/day)", "choice vs last-value", "choice vs seasonal-naive"]
    assert "Cost anomalies" not in [h.value for h in at.subheader]
    at = _open("views/costs.py", query={"view": "Unit costs"})
    assert not at.exception
    assert [h.value for h in at.subheader] == ["Cost per run", "Lambda right-sizing", "Estimate against bill"]
    assert len(_static_table(at, "unit")) >= 1 and len(_static_table(at, "evb")) >= 1
    assert not _tiles(at, "forecast_tiles")


def test_run_detail_says_why_a_failed_run_has_no_log_lines(db_url, app_env, tmp_path, monkeypatch):
    """A demo run older than CloudWatch Logs' 14 days: the reason instead of an empty table."""
    import json
    from datetime import UTC, datetime, timedelta

    from pipepulse.settings import DEMO_MARKER as MARKER
    from store.db import connect
    from store.schema import collector_runs, runs
    from store.writes import upsert

    built = datetime(2026, 12, 5, 10, 5, tzinfo=UTC)
    rows = [
        {"run_id": f"reference:{rid}", "pipeline": "orders", "source": "reference", "status": status, "trigger": "schedule",
         "attempt": 1, "correlation_id": f"c-{rid}", "started_at": ended - timedelta(minutes=5), "ended_at": ended}
        for rid, status, ended in (("old", "FAILED", built - timedelta(days=40, hours=1)), ("fine", "SUCCEEDED", built - timedelta(days=1)))
    ]
    details = {"lookback_days": 92, "log_groups": {"reference:orders": {"group": "/pipepulse/reference/orders", "retention_days": None, "exists": True}}}
    engine = connect(db_url)
    with engine.begin() as conn:
        upsert(conn, runs, rows, now=built)
        upsert(conn, collector_runs, [{"collector_run_id": 1, "source": "logs", "started_at": built, "ended_at": built, "status": "succeeded",
                                       "details": json.dumps(details)}])
    engine.dispose()
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / MARKER).write_text("demo\n")
    monkeypatch.setenv("PIPEPULSE_DATA_DIR", str(tmp_path / "demo"))
    app_env(db_url)

    at = _open("views/run_detail.py", query={"run": "reference:old"})
    assert not at.exception
    assert [i.value for i in at.info] == [
        "No log lines: this run ended on 2026-10-26 09:05 UTC, 40 days before the demo was built (2026-12-05 10:05 UTC), "
        "older than the 14 days of events CloudWatch Logs accepts, so the demo wrote none for it. "
        "The demo's failed runs of its last 14 days have their log lines."
    ]
    at = _open("views/run_detail.py", query={"run": "reference:fine"})
    assert [i.value for i in at.info] == [
        "No log lines: pipepulse keeps the error and warning lines of failed and timed-out runs, and this run is SUCCEEDED."
    ]


def test_run_detail_shows_times_to_the_second_and_a_dash_for_what_is_missing(db_url, app_env):
    """No raw datetimes (microseconds, "+00:00") and no grey "None" cells: times read
    YYYY-MM-DD HH:MM:SS (UTC, said once), a missing time, count or stage reads as a dash."""
    from store.db import connect
    from store.schema import run_logs, run_steps, runs
    from store.writes import upsert

    arn = "arn:aws:states:us-east-1:123456789012:execution:customer-etl:demo-20261207T0100-08"
    run_id = f"stepfunctions:{arn}"
    started = datetime(2026, 12, 6, 6, 30, 24, 20_000, tzinfo=UTC)
    ended = datetime(2026, 12, 6, 6, 36, 1, 100_000, tzinfo=UTC)
    engine = connect(db_url)
    with engine.begin() as conn:
        upsert(conn, runs, [{"run_id": run_id, "pipeline": "sfn_customer_etl", "source": "stepfunctions", "status": "FAILED",
                             "trigger": "schedule", "attempt": 1, "correlation_id": "demo-20261207T0100-08",
                             "started_at": started, "ended_at": ended}], now=ended)
        upsert(conn, run_steps, [
            {"run_id": run_id, "stage": "Extract", "attempt": 1, "status": "SUCCEEDED", "started_at": started,
             "ended_at": started + timedelta(seconds=95), "records_in": 1294, "error_type": None, "error_message": None},
            {"run_id": run_id, "stage": "RejectBatch", "attempt": 1, "status": "FAILED", "started_at": ended,
             "ended_at": ended, "records_in": None, "error_type": "DataQualityError", "error_message": "null customer_id"},
        ], now=ended)
        upsert(conn, run_logs, [
            {"log_id": "g:1", "run_id": run_id, "correlation_id": "demo-20261207T0100-08", "ts": ended, "level": "ERROR",
             "stage": None, "message": "run failed"},
            {"log_id": "g:2", "run_id": run_id, "correlation_id": "demo-20261207T0100-08", "ts": started + timedelta(seconds=95),
             "level": "WARN", "stage": "Extract", "message": "slow"},
        ])
    engine.dispose()
    app_env(db_url)

    at = _open("views/run_detail.py", query={"run": run_id})
    assert not at.exception
    meta = dict(_static_table(at, "run_meta").itertuples(index=False, name=None))
    assert meta["run id"] == run_id  # the whole id (a static table wraps it)
    assert (meta["started at"], meta["ended at"]) == ("2026-12-06 06:30:24", "2026-12-06 06:36:01")
    assert meta["queued at"] == meta["scheduled for"] == "\u2014"
    assert "Times are UTC." in [c.value for c in at.caption]
    steps = next(d.value for d in at.dataframe if "stage" in d.value.columns and "attempt" in d.value.columns)
    assert steps[["stage", "queued_at", "started_at", "ended_at", "records_in", "records_out", "error_type"]].values.tolist() == [
        ["Extract", "\u2014", "2026-12-06 06:30:24", "2026-12-06 06:31:59", "1294", "\u2014", "\u2014"],
        ["RejectBatch", "\u2014", "2026-12-06 06:36:01", "2026-12-06 06:36:01", "\u2014", "\u2014", "DataQualityError"],
    ]
    logs = next(d.value for d in at.dataframe if "message" in d.value.columns and "level" in d.value.columns)
    assert logs[["ts", "level", "stage"]].values.tolist() == [
        ["2026-12-06 06:31:59", "WARN", "Extract"], ["2026-12-06 06:36:01", "ERROR", "\u2014"]]


def test_costs_page_shows_lambda_rightsizing_as_an_estimate(db_url, app_env):
    from store.db import connect
    from store.schema import lambda_invocations
    from store.writes import upsert

    end = datetime.now(UTC) - timedelta(hours=1)
    engine = connect(db_url)
    try:
        with engine.begin() as conn:
            upsert(conn, lambda_invocations, [
                dict(log_group="/aws/lambda/load", request_id=f"r{i}", function_name="load", pipeline="orders",
                     ended_at=end - timedelta(hours=i), duration_ms=59_999.2, billed_duration_ms=60_000.0,
                     memory_size_mb=1024, max_memory_used_mb=190 + i, init_duration_ms=None, status=None, log_stream="s")
                for i in range(10)])
    finally:
        engine.dispose()
    app_env(db_url)
    at = _open("views/costs.py", query={"view": "Unit costs"})
    assert not at.exception
    table = _static_table(at, "rightsizing")
    row = table.iloc[0].tolist()
    # max used 199 MB -> 239 MB suggested (+20%)
    assert row[:5] == ["load", "10", "1,024", "199", "239"]
    assert any(c.value.startswith("An estimate: up to") for c in at.caption)


def test_an_unreachable_database_is_one_clear_line_and_a_retry(filled_db, app_env, monkeypatch):
    """The database went away after the engine was made (a PostgreSQL restart): the app says
    "database unreachable: ... (retrying ...)", not a raw OperationalError, and reads again later."""
    import dashboard.data as data

    url, _ = filled_db
    app_env(url)
    at = _open()
    assert not at.exception and not at.error
    dead = sa.create_engine("postgresql+psycopg://pp:secret@127.0.0.1:1/gone", connect_args={"connect_timeout": 2})
    monkeypatch.setattr(data, "engine", lambda: dead)  # every read now meets a refused connection
    import streamlit as st

    st.cache_data.clear()
    at.run()
    assert not at.exception
    [error] = [e.value for e in at.error]
    assert error.startswith("database unreachable: ")
    assert error.endswith(f"(retrying every {data.RETRY_SECONDS} s)")
    assert "OperationalError" not in error and "secret" not in error
    monkeypatch.undo()  # the database is back: the next run reads again
    app_env(url)
    at.run()
    assert not at.exception and not at.error


def test_a_metric_anomaly_reads_in_its_metric():
    """CloudWatch's GetMetricData gives no unit: a metric anomaly's values say what they count
    (issue #21: "anomaly values without units", seen on the demo's Pipepulse/Reference metrics)."""
    from dashboard.data import metric_unit, value_text

    subject = "Pipepulse/Reference/RecordsRejected{Pipeline=orders}"
    assert metric_unit(subject) == "RecordsRejected"
    assert value_text("metric", 1089.2, unit=metric_unit(subject)) == "1,089 RecordsRejected"
    assert value_text("metric", 1.0, unit=metric_unit("AWS/Lambda/Errors{FunctionName=f}")) == "1 Errors"
    assert value_text("duration", 12.5) == "12.5 s"


def _open_filtered(page: str, query: dict) -> AppTest:
    """``page`` opened with ``query`` in the URL from the first run: the filters' widgets are drawn
    by the main page, and AppTest loses them when the query is set after it (as
    ``test_deep_link_applies_filters`` says)."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params = dict(query)
    at.run()
    at.switch_page(page)
    at.run()
    return at


def _chart(at: AppTest, key: str) -> list[dict]:
    """The traces of the plotly figure drawn with ``st.plotly_chart(key=key)``, its typed arrays
    (``{"dtype", "bdata"}``, as plotly writes numpy arrays) decoded to lists."""
    import base64
    import json

    import numpy as np

    def plain(v):
        if isinstance(v, dict) and set(v) >= {"dtype", "bdata"}:
            return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
        return v

    for element in at.get("plotly_chart"):
        if key in element.proto.id:
            return [{k: plain(v) for k, v in t.items()} for t in json.loads(element.proto.spec)["data"]]
    raise AssertionError(f"no chart {key!r} on the page")


def test_costs_forecast_follows_the_pipelines_filter(fresh_filled_db, app_env):
    # /costs?view=Forecast&pipeline=orders drew the account's total forecast (and its actual spend)
    # under a sidebar saying "pipelines orders"; now it draws orders' own forecast and spend, and a
    # selected pipeline without a forecast says so instead of borrowing the total's
    from store import costs as costs_store
    from store.db import connect
    from store.schema import forecast_points, forecast_snapshots

    url, ds = fresh_filled_db
    engine = connect(url)
    with engine.begin() as conn:
        conn.execute(sa.update(forecast_snapshots).where(forecast_snapshots.c.subject == "pipeline:orders").values(
            month_end_mean=181.59, month_end_lower=170.2, month_end_upper=195.8, budget=260.0))
        conn.execute(sa.insert(forecast_points), [
            {"snapshot_id": 2, "day": ds.end.date() + timedelta(days=i), "mean": 6.0, "lower": 5.0, "upper": 7.0} for i in range(5)
        ])
        end = ds.end.date()
        orders = costs_store.daily_cost(conn, end - timedelta(days=6), end, pipeline="orders")
        total = costs_store.daily_cost(conn, end - timedelta(days=6), end)
    engine.dispose()
    app_env(url)
    at = _open_filtered("views/costs.py", {"view": "Forecast", "pipeline": "orders"})
    assert not at.exception
    assert not _tiles(at, "forecast_tiles")  # the total's
    tiles = _tiles(at, "forecast_tiles_orders")
    assert tiles["Month end (USD)"][:2] == ("182", "170 to 196")
    assert tiles["Backtest MAE (model choice)"] == ("1.50", "1.00x last-value's error", 0)
    assert "The forecast of each selected pipeline's tagged spend (not the account's total)" in [c.value for c in at.caption]
    traces = _chart(at, "forecast_orders")
    assert [t["y"] for t in traces if t.get("name") == "forecast"] == [[6.0] * 5]
    spent = sum(sum(t["y"]) for t in traces if t.get("name") not in (None, "80% band", "forecast"))
    assert round(spent, 4) == round(float(orders["billed_cost"].sum()), 4) != round(float(total["billed_cost"].sum()), 4)

    at = _open_filtered("views/costs.py", {"view": "Forecast", "pipeline": ["orders", "clickstream"]})
    assert not at.exception
    assert [h.value for h in at.subheader][:2] == ["Pipeline orders", "Pipeline clickstream"]
    assert _tiles(at, "forecast_tiles_orders") and not _tiles(at, "forecast_tiles_clickstream") and not _tiles(at, "forecast_tiles")
    assert "No forecast of pipeline clickstream's spend" in _texts(at)


def test_cost_anomalies_follow_the_pipelines_filter_and_the_window_end(fresh_filled_db, app_env):
    # "Cost anomalies" listed every cost anomaly since the window's start: other pipelines' under
    # a pipeline filter, and ones after an "Up to" day
    from store.db import connect
    from store.writes import upsert

    url, ds = fresh_filled_db
    day = ds.end.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = []
    for pipe, ago in (("orders", 4), ("clickstream", 4)):
        ws = day - timedelta(days=ago)
        rows.append({
            "fingerprint": f"fp-cost-{pipe}", "kind": "cost", "subject": f"cost:pipeline={pipe}", "pipeline": pipe,
            "window_start": ws, "window_end": ws + timedelta(days=1), "observed": 30.0, "expected": 10.0, "lower": 8.0,
            "upper": 12.0, "score": 0.97, "severity": "high", "status": "open", "detector": "pipepulse", "version": 1,
            "first_seen": ws + timedelta(hours=1), "last_seen": ws + timedelta(hours=5),
        })
    engine = connect(url)
    with engine.begin() as conn:
        upsert(conn, anomalies, rows, now=ds.end)
    engine.dispose()
    app_env(url)
    at = _open_filtered("views/costs.py", {"pipeline": "orders", "range": "30d"})
    assert not at.exception
    assert _static_table(at, "cost_anomalies")["subject"].tolist() == ["cost:pipeline=orders"]
    # the account-wide one (AWS Glue's daily spend, two days ago) is left out, and the page says so
    assert any(c.value.startswith("Anomalies in the selected pipelines' tagged spend. 1 account-wide cost anomaly in this window")
               for c in at.caption)
    # "Up to" three days ago: the window ends before the AWS Glue anomaly's day
    to = (day - timedelta(days=3)).date().isoformat()
    at = _open_filtered("views/costs.py", {"range": "30d", "to": to})
    assert not at.exception
    assert sorted(_static_table(at, "cost_anomalies")["subject"]) == ["cost:pipeline=clickstream", "cost:pipeline=orders"]
    at = _open_filtered("views/costs.py", {"range": "30d"})
    assert sorted(_static_table(at, "cost_anomalies")["subject"]) == [
        "cost:pipeline=clickstream", "cost:pipeline=orders", "daily spend AWS Glue"]


def test_costs_by_pipeline_names_untagged_spend_one_way(filled_db, app_env):
    # the legend said "(untagged)", the movers chart "(none)" and the movers table an empty cell
    url, _ = filled_db
    app_env(url)
    at = _open_filtered("views/costs.py", {"by": "pipeline", "range": "30d"})
    assert not at.exception
    movers = _static_table(at, "movers")
    assert "(untagged)" in movers["pipeline"].tolist() and "" not in movers["pipeline"].tolist()
    chart = _chart(at, "movers")[0]["customdata"]
    legend = [t["name"] for t in _chart(at, "cost_stacked")]
    assert "(untagged)" in chart and "(untagged)" in legend and "(none)" not in chart + legend
    at.toggle(key="by_day_table").set_value(True).run()
    by_day = next(d.value for d in at.dataframe if list(d.value.columns) == ["day", "pipeline", "cost"])
    assert "(untagged)" in set(by_day["pipeline"]) and "" not in set(by_day["pipeline"])
