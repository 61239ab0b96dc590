"""The digest against a real SMTP server (aiosmtpd in this process), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from alerts_testkit import (
    DASH,
    NOW,
    PASSWORD,
    SCRIPT_ERROR,
    body,
    make_settings,
    parts,
    smtp_alerts,
)

from alerts.digest import run_digest
from store.schema import anomalies, digests, notifications, runs

# the implicit-TLS server needs AUTH without STARTTLS; aiosmtpd warns about that from its thread
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SUBJECT = (
    "pipepulse daily: 2 failures, 1 missed, 1 below success target, 1 anomaly, 1 collector failing, "
    "spend forecast 12% over budget"
)
FIRST_KEYS = {
    "run:reference:orders-112003",
    "run:reference:orders-112007",
    "freshness:finance_daily:20261120T0600",
    "success_rate:orders",
    "anomaly:a1cost",
    "budget:total:2026-11",
    "collector:ce",
}


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.imgs: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a":
            self.hrefs.append(a["href"])
        if tag == "img":
            self.imgs.append(a["src"])


def hrefs_of(html: str) -> Links:
    p = Links()
    p.feed(html)
    return p


def rows(engine, table, *order):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(*order)).mappings()]


def test_daily_digest_arrives_with_both_parts_the_items_and_working_links(seeded, smtp_server, tmp_path, db_url):
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server))
    result = run_digest(settings, seeded, period="daily", now=NOW)

    assert [d.status for d in result.digests] == ["sent"]
    assert set(result.digests[0].items) == FIRST_KEYS
    [(rcpts, msg)] = smtp_server.recorder.messages
    assert rcpts == ["oncall@example.com"]
    assert msg["Subject"] == SUBJECT
    assert msg["From"] == "pipepulse <alerts@pipepulse.test>"
    assert msg.get_content_type() == "multipart/alternative"
    p = parts(msg)
    assert sorted(p) == ["image/png", "multipart/alternative", "multipart/related", "text/html", "text/plain"]
    png = p["image/png"][0]
    assert png["Content-ID"] == "<spend-sparkline@pipepulse>"
    assert png.get_payload(decode=True)[:8] == b"\x89PNG\r\n\x1a\n"

    html, text = body(msg, "text/html"), body(msg, "text/plain")
    # the error is shown as text, escaped; the raw tag never reaches the HTML
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; KeyError: &#x27;customer_id&#x27; &amp; more" in html
    assert f"TransformError: {SCRIPT_ERROR}" in text
    # most urgent first: failures and the missed run (high) before the anomaly (high) and collectors (medium)
    order = [html.index(h) for h in ("Failed runs (2)", "Late or missed runs (1)", "Anomalies (1)", "Budget (1)",
                                      "Success rate below target (1)", "Collectors failing (1)", "Spend", "Runs in this period")]
    assert order == sorted(order)
    assert "observed <b>$412</b> vs expected $130 (normal $110–$150) <b>+217%</b>" in html
    assert "usage type <b>USE1-Requests-Tier1</b> +$251</li>" in html
    assert "region <b>us-east-1</b> +$31.20</li>" in html
    assert "the 06:00 run has not happened (due 06:00 UTC, 6 h late)" in html
    assert "orders: 92% of runs succeeded" not in html  # the title is used in text; html shows the numbers
    assert "92% succeeded (22 of 24 finished runs in the last 24 h; target 95%)" in html
    assert "Month to date" in html and "$1,710" in html  # sum of 81..99
    assert "<b>$2,912</b>" in html and "(80%: $2,790–$3,050)" in html
    # acknowledged, snoozed and low-severity anomalies are left out
    for left_out in ("orders run duration", "clickstream records per minute", "orders rejected records"):
        assert left_out not in html and left_out not in text

    links = hrefs_of(html)
    assert links.imgs == ["cid:spend-sparkline@pipepulse"]
    assert all(h.startswith(DASH + "/") for h in links.hrefs)
    run_links = [h for h in links.hrefs if h.startswith(f"{DASH}/run?")]
    assert run_links == [
        f"{DASH}/run?run=reference%3Aorders-112007",
        f"{DASH}/run?run=reference%3Aorders-112003",
    ]
    # each run link names a run that exists
    with seeded.connect() as conn:
        for h in run_links:
            run_id = parse_qs(urlsplit(h).query)["run"][0]
            assert conn.execute(sa.select(runs.c.status).where(runs.c.run_id == run_id)).scalar_one() in {"FAILED", "TIMED_OUT"}
    # every page a link names is one of the dashboard's pages (dashboard/app.py url_path)
    assert {urlsplit(h).path for h in links.hrefs} == {
        "/run", "/pipelines", "/anomalies", "/costs", "/collectors", "/"}
    assert f"{DASH}/anomalies?status=open&status=snoozed&fp=a1cost" in links.hrefs
    assert f"{DASH}/costs?range=30d&to=2026-11-20" in links.hrefs  # the spend summary
    assert f"{DASH}/costs?range=30d&to=2026-11-20&view=Forecast" in links.hrefs  # the budget alert
    assert f"{DASH}/collectors?range=7d&to=2026-11-20" in links.hrefs
    assert f"{DASH}/pipelines?range=24h&to=2026-11-20&pipeline=orders" in links.hrefs  # runs table, success rate
    assert f"{DASH}/pipelines?range=7d&to=2026-11-20&pipeline=finance_daily" in links.hrefs  # the missed run
    assert f"{DASH}/?range=24h&to=2026-11-20" in links.hrefs
    assert f"{DASH}/run?run=reference%3Aorders-112003" in text

    [d] = rows(seeded, digests, digests.c.created_at)
    assert (d["status"], d["period"], d["channel"], d["recipients"], d["subject"]) == (
        "sent", "daily", "smtp", "oncall@example.com", SUBJECT)
    n = rows(seeded, notifications, notifications.c.item_key)
    assert {(r["rule"], r["item_key"], r["status"]) for r in n} == {
        ("failures", "run:reference:orders-112003", "sent"),
        ("failures", "run:reference:orders-112007", "sent"),
        ("late", "freshness:finance_daily:20261120T0600", "sent"),
        ("success", "success_rate:orders", "sent"),
        ("anomalies", "anomaly:a1cost", "sent"),
        ("budget", "budget:total:2026-11", "sent"),
        ("collectors", "collector:ce", "sent"),
    }


def test_a_second_pass_sends_nothing_new(seeded, smtp_server, tmp_path, db_url):
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server))
    run_digest(settings, seeded, period="daily", now=NOW)
    again = run_digest(settings, seeded, period="daily", now=NOW + timedelta(hours=1))
    assert again.digests == []
    assert (again.new_items, again.already_sent, again.suppressed) == (0, 7, 0)
    assert len(smtp_server.recorder.messages) == 1
    assert len(rows(seeded, digests, digests.c.created_at)) == 1


def test_a_new_failure_is_sent_alone_and_an_acknowledged_anomaly_is_left_out(seeded, smtp_server, tmp_path, db_url):
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server))
    run_digest(settings, seeded, period="daily", now=NOW)
    later = NOW + timedelta(hours=2)
    with seeded.begin() as conn:
        conn.execute(anomalies.update().where(anomalies.c.fingerprint == "a1cost").values(
            status="acknowledged", status_at=later - timedelta(minutes=30), version=2, severity="critical"))
        conn.execute(runs.update().where(runs.c.run_id == "reference:orders-112012").values(
            status="FAILED", error_type="IOError", error_message="s3://orders-raw/2026/11/20/12.json not found"))
    result = run_digest(settings, seeded, period="daily", now=later)
    [d] = result.digests
    assert set(d.items) == {"run:reference:orders-112012"}
    [_, (_, msg)] = smtp_server.recorder.messages
    assert msg["Subject"] == "pipepulse daily: 1 failure, spend forecast 12% over budget"
    html = body(msg, "text/html")
    assert "s3://orders-raw/2026/11/20/12.json not found" in html
    assert "Amazon S3" not in html  # acknowledged: not new, not "still open"


def test_a_snoozed_anomaly_stays_out_until_its_date(seeded, smtp_server, tmp_path, db_url):
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server))
    first = run_digest(settings, seeded, period="daily", now=NOW)
    assert "anomaly:a3thr" not in first.digests[0].items
    day_before = run_digest(settings, seeded, period="daily", now=datetime(2026, 11, 21, 23, 0, tzinfo=UTC))
    assert all("anomaly:a3thr" not in d.items for d in day_before.digests)
    after = run_digest(settings, seeded, period="daily", now=datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    assert any("anomaly:a3thr" in d.items for d in after.digests)
    html = body(smtp_server.recorder.messages[-1][1], "text/html")
    assert "clickstream records per minute" in html
    assert "observed <b>120</b> vs expected 950" in html


def test_a_severity_increase_is_sent_again_inside_the_suppression_interval(seeded, smtp_server, tmp_path, db_url):
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server))
    run_digest(settings, seeded, period="daily", now=NOW)

    # same severity, new version (the detector updated it): held back inside 24 h
    with seeded.begin() as conn:
        conn.execute(anomalies.update().where(anomalies.c.fingerprint == "a1cost").values(version=2, observed=430.0))
    held = run_digest(settings, seeded, period="daily", now=NOW + timedelta(hours=1))
    assert (held.digests, held.suppressed) == ([], 1)

    # worse: high -> critical goes out at once, alone
    with seeded.begin() as conn:
        conn.execute(anomalies.update().where(anomalies.c.fingerprint == "a1cost").values(version=3, severity="critical"))
    worse = run_digest(settings, seeded, period="daily", now=NOW + timedelta(hours=2))
    [d] = worse.digests
    assert d.items == ("anomaly:a1cost",)
    msg = smtp_server.recorder.messages[-1][1]
    assert msg["Subject"] == "pipepulse daily: 1 anomaly, spend forecast 12% over budget"
    assert ">critical</span>" in body(msg, "text/html")
    versions = {(r["item_version"], r["status"]) for r in rows(seeded, notifications, notifications.c.notification_id)
                if r["item_key"] == "anomaly:a1cost"}
    assert versions == {("v1|high", "sent"), ("v3|critical", "sent")}


def test_a_refused_send_is_recorded_failed_and_retried_next_pass(seeded, smtp_server, tmp_path, db_url):
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server))
    smtp_server.recorder.refuse_data = "554 5.7.1 Message rejected by policy"
    failed = run_digest(settings, seeded, period="daily", now=NOW)
    [d] = failed.digests
    assert d.status == "failed"
    assert d.error == f"the SMTP server 127.0.0.1:{smtp_server.port} refused the message: 554 5.7.1 Message rejected by policy"
    assert not failed.ok
    assert (failed.status, failed.error) == ("failed", f"oncall@example.com: {d.error}")  # what the scheduler reads
    assert smtp_server.recorder.messages == []
    [rec] = rows(seeded, digests, digests.c.created_at)
    assert (rec["status"], rec["error"], rec["sent_at"]) == ("failed", d.error, None)
    assert {r["status"] for r in rows(seeded, notifications, notifications.c.item_key)} == {"failed"}

    # the next daily pass, a day later: the earlier window's failures are still delivered
    smtp_server.recorder.refuse_data = None
    nxt = run_digest(settings, seeded, period="daily", now=NOW + timedelta(days=1))
    [sent] = nxt.digests
    assert (sent.status, nxt.status, nxt.error) == ("sent", "sent", "")
    assert set(sent.items) == {
        "run:reference:orders-112003",
        "run:reference:orders-112007",
        "freshness:finance_daily:20261121T0600",  # today's slot; yesterday's is no longer the one judged
        "anomaly:a1cost",
        "budget:total:2026-11",
        "collector:ce",
    }  # success_rate:orders recovered in the new window, so it is not sent
    html = body(smtp_server.recorder.messages[0][1], "text/html")
    assert "run%3Aorders-112003" not in html  # ids are quoted only inside hrefs...
    assert "reference%3Aorders-112003" in html  # ...and the run link is there
    statuses = {r["item_key"]: r["status"] for r in rows(seeded, notifications, notifications.c.item_key)}
    assert statuses["run:reference:orders-112003"] == "sent"
    assert [r["status"] for r in rows(seeded, digests, digests.c.created_at)] == ["failed", "sent"]


def test_an_unreachable_server_loses_nothing(seeded, smtp_server, tmp_path, db_url):
    from alerts_testkit import free_port

    dead = free_port()
    settings = make_settings(tmp_path, db_url, smtp_alerts(None, port=dead))
    result = run_digest(settings, seeded, period="daily", now=NOW)
    [d] = result.digests
    assert d.status == "failed"
    assert d.error.startswith(f"cannot reach the SMTP server 127.0.0.1:{dead}: ")
    assert d.error.endswith("check [alerts.smtp] host and port and that the server is up")
    assert {r["status"] for r in rows(seeded, notifications, notifications.c.item_key)} == {"failed"}

    ok = run_digest(make_settings(tmp_path, db_url, smtp_alerts(smtp_server)), seeded, period="daily", now=NOW + timedelta(hours=1))
    assert set(ok.digests[0].items) == FIRST_KEYS
    assert len(smtp_server.recorder.messages) == 1


def test_starttls_with_login_and_bad_credentials(seeded, tls_server, tmp_path, db_url):
    pw = tmp_path / "smtp_password"
    pw.write_text("wrong\n")
    conf = smtp_alerts(tls_server, security="starttls", auth=True) + f'\npassword_file = "{pw}"'
    bad = run_digest(make_settings(tmp_path, db_url, conf), seeded, period="daily", now=NOW)
    [d] = bad.digests
    assert d.status == "failed"
    assert d.error == (
        f"the SMTP server 127.0.0.1:{tls_server.port} refused the login for user 'pipepulse' "
        "(535 5.7.8 Authentication credentials invalid); check [alerts.smtp] username and the password"
    )
    assert tls_server.recorder.messages == []

    pw.write_text(PASSWORD + "\n")
    good = run_digest(make_settings(tmp_path, db_url, conf), seeded, period="daily", now=NOW + timedelta(minutes=5))
    assert [x.status for x in good.digests] == ["sent"]
    [(_, msg)] = tls_server.recorder.messages
    assert msg["Subject"] == SUBJECT


def test_implicit_tls_with_login(seeded, ssl_server, tmp_path, db_url):
    conf = smtp_alerts(ssl_server, security="ssl", auth=True) + f'\npassword = "{PASSWORD}"'
    result = run_digest(make_settings(tmp_path, db_url, conf), seeded, period="daily", now=NOW)
    assert [x.status for x in result.digests] == ["sent"]
    assert ssl_server.recorder.messages[0][1]["Subject"] == SUBJECT


def test_a_refused_recipient_is_retried_alone(seeded, smtp_server, tmp_path, db_url):
    rules = """
[[alerts.rules]]
name = "failures"
kind = "failed_runs"
recipients = ["oncall@example.com", "Data Team <data@example.com>"]
"""
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server), rules=rules)
    smtp_server.recorder.refuse_rcpt = {"data@example.com"}
    first = run_digest(settings, seeded, period="daily", now=NOW)
    [d] = first.digests
    assert (d.status, d.recipients, d.refused) == ("sent", ("Data Team <data@example.com>", "oncall@example.com"),
                                                    ("Data Team <data@example.com>",))
    assert [r for r, _ in smtp_server.recorder.messages] == [["oncall@example.com"]]

    smtp_server.recorder.refuse_rcpt = set()
    second = run_digest(settings, seeded, period="daily", now=NOW + timedelta(hours=1))
    [d2] = second.digests
    assert d2.recipients == ("Data Team <data@example.com>",)
    assert set(d2.items) == {"run:reference:orders-112003", "run:reference:orders-112007"}
    assert smtp_server.recorder.messages[1][0] == ["data@example.com"]


def test_pipeline_filter_and_all_clear(seeded, smtp_server, tmp_path, db_url):
    rules = """
[[alerts.rules]]
name = "finance failures"
kind = "failed_runs"
pipelines = ["finance_daily"]
recipients = ["finance@example.com"]
"""
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server, extra="send_all_clear = true"), rules=rules)
    first = run_digest(settings, seeded, period="daily", now=NOW)
    [d] = first.digests
    assert (d.status, d.items) == ("sent", ())
    msg = smtp_server.recorder.messages[0][1]
    assert msg["Subject"] == "pipepulse daily: all clear, spend forecast 12% over budget"
    html = body(msg, "text/html")
    assert "All clear: no new failures, late runs or anomalies in this period." in html
    assert "orders" not in html.split("Runs in this period")[1]  # the table covers the rule's pipelines only
    assert run_digest(settings, seeded, period="daily", now=NOW + timedelta(hours=3)).digests == []
    assert len(run_digest(settings, seeded, period="daily", now=NOW + timedelta(days=1)).digests) == 1


def test_dry_run_writes_the_html_and_records_nothing(seeded, smtp_server, tmp_path, db_url):
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server))
    out = tmp_path / "preview" / "digest.html"
    result = run_digest(settings, seeded, period="daily", now=NOW, dry_run=True, out=out)
    assert [(d.status, d.subject) for d in result.digests] == [("dry-run", SUBJECT)]
    html = out.read_text()
    assert "data:image/png;base64,iVBORw0KGgo" in html  # the chart inlined for a file preview
    assert "Failed runs (2)" in html
    assert smtp_server.recorder.messages == []
    assert rows(seeded, digests, digests.c.created_at) == [] and rows(seeded, notifications, notifications.c.item_key) == []


def test_weekly_rules_only_run_weekly(seeded, smtp_server, tmp_path, db_url):
    rules = """
[[alerts.rules]]
name = "weekly spend"
kind = "budget"
frequency = "weekly"
recipients = ["finops@example.com"]
"""
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server), rules=rules)
    assert run_digest(settings, seeded, period="daily", now=NOW).digests == []
    [d] = run_digest(settings, seeded, period="weekly", now=NOW).digests
    assert d.items == ("budget:total:2026-11",)
    assert smtp_server.recorder.messages[0][1]["Subject"] == "pipepulse weekly: spend forecast 12% over budget"


def test_the_cli_digest_dry_run(seeded, tmp_path, db_url, monkeypatch, capsys, smtp_server):
    from cli.main import main

    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server))
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", db_url)
    out = tmp_path / "d.html"
    status = main(["--config", str(settings.config_path), "digest", "--dry-run", "--out", str(out)])
    captured = capsys.readouterr().out
    assert status == 0
    assert "would send to oncall@example.com: pipepulse daily: " in captured
    assert f"wrote {out}" in captured
    assert out.read_text().startswith("<!doctype html>")
    assert smtp_server.recorder.messages == []


def test_an_acknowledged_anomaly_that_is_reopened_is_sent_again_at_once(seeded, smtp_server, tmp_path, db_url):
    from store.anomalies import set_status

    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server))
    run_digest(settings, seeded, period="daily", now=NOW)
    with seeded.begin() as conn:
        set_status(conn, "a1cost", "acknowledged", by="ana", note="looking", now=NOW + timedelta(minutes=30))
    assert run_digest(settings, seeded, period="daily", now=NOW + timedelta(hours=1)).digests == []
    with seeded.begin() as conn:
        set_status(conn, "a1cost", "open", by="ana", note="it came back", now=NOW + timedelta(hours=2))
    again = run_digest(settings, seeded, period="daily", now=NOW + timedelta(hours=3))
    [d] = again.digests
    assert d.items == ("anomaly:a1cost",)  # inside the 24 h suppression interval, but reopened
    assert "Daily cost of Amazon S3 for orders" in body(smtp_server.recorder.messages[-1][1], "text/html")


def test_immediate_rules_send_as_an_alert(seeded, smtp_server, tmp_path, db_url):
    rules = """
[[alerts.rules]]
name = "page me"
kind = "failed_runs"
frequency = "immediate"
pipelines = ["orders"]
recipients = ["pager@example.com"]
"""
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server, extra="send_all_clear = true"), rules=rules)
    [d] = run_digest(settings, seeded, period="immediate", now=NOW).digests
    msg = smtp_server.recorder.messages[0][1]
    assert msg["Subject"] == "pipepulse alert: 2 failures, spend forecast 12% over budget"
    assert "pipepulse alert · Thu 19 Nov 12:00 UTC – Fri 20 Nov 12:00 UTC" in body(msg, "text/html")
    # five minutes later: nothing new, and no all-clear for immediate rules
    assert run_digest(settings, seeded, period="immediate", now=NOW + timedelta(minutes=5)).digests == []


def test_the_cli_says_when_a_period_has_no_rules(seeded, tmp_path, db_url, monkeypatch, capsys, smtp_server):
    from cli.main import main

    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server))
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", db_url)
    assert main(["--config", str(settings.config_path), "alerts", "digest", "--period", "weekly"]) == 0
    assert capsys.readouterr().out == (
        f'weekly: no [[alerts.rules]] with frequency = "weekly" in {settings.config_path}; nothing to do\n'
    )
    assert main(["--config", str(settings.config_path), "alerts", "rules"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"channel smtp via 127.0.0.1:{smtp_server.port} (none), sender pipepulse <alerts@pipepulse.test>, suppression 24 h"
    assert out[1].split() == ["failures", "failed_runs", "daily", "all", "pipelines;", "to", "oncall@example.com"]


def test_pipeline_names_and_anomaly_subjects_are_escaped(seeded, smtp_server, tmp_path, db_url):
    evil = '<img src=x onerror="alert(1)">'
    with seeded.begin() as conn:
        conn.execute(runs.update().where(runs.c.run_id == "reference:orders-112003").values(pipeline=evil))
        conn.execute(anomalies.update().where(anomalies.c.fingerprint == "a1cost").values(subject=f"cost of {evil}"))
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server))
    run_digest(settings, seeded, period="daily", now=NOW)
    html = body(smtp_server.recorder.messages[0][1], "text/html")
    assert "<img src=x" not in html
    escaped = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
    assert f"<b>{escaped}</b>" in html  # the failure's pipeline
    assert f">{escaped}</a>" in html  # the runs table
    assert f"<b>cost of {escaped}</b>" in html  # the anomaly
    assert hrefs_of(html).imgs == ["cid:spend-sparkline@pipepulse"]  # no image but the chart


def test_a_change_held_back_by_the_suppression_interval_goes_out_after_it(seeded, smtp_server, tmp_path, db_url):
    rules = """
[[alerts.rules]]
name = "anomalies"
kind = "anomalies"
recipients = ["oncall@example.com"]
suppression_hours = 6
"""
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server), rules=rules)
    run_digest(settings, seeded, period="daily", now=NOW)
    with seeded.begin() as conn:
        conn.execute(anomalies.update().where(anomalies.c.fingerprint == "a1cost").values(version=2, observed=530.0))
    held = run_digest(settings, seeded, period="daily", now=NOW + timedelta(hours=5, minutes=59))
    assert (held.digests, held.suppressed) == ([], 1)
    [d] = run_digest(settings, seeded, period="daily", now=NOW + timedelta(hours=6)).digests
    assert d.items == ("anomaly:a1cost",)
    assert "observed <b>$530</b>" in body(smtp_server.recorder.messages[-1][1], "text/html")


def test_a_pipeline_failing_every_run_does_not_bury_the_rest(seeded, smtp_server, tmp_path, db_url):
    with seeded.begin() as conn:
        conn.execute(runs.update().where(runs.c.pipeline == "orders", runs.c.started_at >= NOW - timedelta(hours=6),
                                         runs.c.started_at < NOW).values(status="FAILED", error_message="disk full"))
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server))
    [d] = run_digest(settings, seeded, period="daily", now=NOW).digests
    assert sum(k.startswith("run:") for k in d.items) == 7  # 03:00, and the six runs from 06:00 to 11:00
    msg = smtp_server.recorder.messages[0][1]
    assert msg["Subject"].startswith("pipepulse daily: 7 failures, ")
    html, text = body(msg, "text/html"), body(msg, "text/plain")
    assert "Failed runs (7)" in html
    assert html.count("Open the run →") == 3  # the three newest
    assert "…and 4 more failed runs of orders. " in html
    assert f"…and 4 more failed runs of orders: {DASH}/pipelines?range=24h&to=2026-11-20&pipeline=orders" in text


def test_tls_problems_say_what_to_check(seeded, smtp_server, tls_server, tmp_path, db_url):
    # the plain server offers no STARTTLS
    conf = smtp_alerts(smtp_server, security="starttls")
    [d] = run_digest(make_settings(tmp_path, db_url, conf), seeded, period="daily", now=NOW).digests
    assert d.error == (
        f'the SMTP server 127.0.0.1:{smtp_server.port} does not offer STARTTLS; set [alerts.smtp] security = "ssl" '
        '(implicit TLS, usually port 465) or "none" on a trusted network'
    )
    # a certificate nobody told us to trust
    conf = smtp_alerts(None, security="starttls", port=tls_server.port, auth=True) + f'\npassword = "{PASSWORD}"'
    [d] = run_digest(make_settings(tmp_path, db_url, conf), seeded, period="daily", now=NOW + timedelta(minutes=1)).digests
    assert d.error.startswith(f"TLS with the SMTP server 127.0.0.1:{tls_server.port} failed: [SSL: CERTIFICATE_VERIFY_FAILED]")
    assert d.error.endswith("; check [alerts.smtp] security and ca_file")
    assert smtp_server.recorder.messages == [] and tls_server.recorder.messages == []


def test_an_older_open_anomaly_is_listed_compactly_until_it_gets_worse(seeded, smtp_server, tmp_path, db_url):
    from alerts_testkit import _anomaly

    old = _anomaly("e0old", "throughput", "partner_feed records per run", "medium", "open",
                   observed=12_400.0, expected=48_000.0, lower=-1_500.0, upper=56_000.0)
    old.update(window_start=NOW - timedelta(days=3), window_end=NOW - timedelta(days=3) + timedelta(hours=1),
               first_seen=NOW - timedelta(days=3))
    with seeded.begin() as conn:
        conn.execute(anomalies.insert().values(**old))
    settings = make_settings(tmp_path, db_url, smtp_alerts(smtp_server))
    [d] = run_digest(settings, seeded, period="daily", now=NOW).digests
    assert "anomaly:e0old" in d.items  # reported (and recorded) once...
    msg = smtp_server.recorder.messages[0][1]
    assert msg["Subject"] == (
        "pipepulse daily: 2 failures, 1 missed, 1 below success target, 1 anomaly, 1 collector failing, "
        "1 older anomaly open, spend forecast 12% over budget"
    )
    html = body(msg, "text/html")
    assert "Anomalies (1)" in html  # ...but not as news
    assert "Still open anomalies (1)" in html
    assert (f'<li><a href="{DASH}/anomalies?status=open&amp;status=snoozed&amp;fp=e0old" style="color:#1d4ed8;'
            'text-decoration:none">partner_feed records per run</a>') in html

    # it gets worse: now it is news again, in full
    with seeded.begin() as conn:
        conn.execute(anomalies.update().where(anomalies.c.fingerprint == "e0old").values(severity="high", version=2))
    [d2] = run_digest(settings, seeded, period="daily", now=NOW + timedelta(hours=1)).digests
    assert d2.items == ("anomaly:e0old",)
    html = body(smtp_server.recorder.messages[1][1], "text/html")
    assert "Anomalies (1)" in html
    assert "Still open anomalies (1)" in html  # yesterday's news, not acknowledged yet
    assert "Daily cost of Amazon S3 for orders</a> <span style='color:#6b7280'>(high, since Fri 20 Nov 04:00 UTC, reported before)" in html
    assert "observed <b>12,400</b> vs expected 48,000 (normal 0–56,000) <b>-74%</b>" in html
