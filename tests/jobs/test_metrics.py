"""`/metrics`: the scheduler's real registry served over HTTP, scraped after a real collect pass
against the local AWS; every metric the example Grafana dashboard reads is in the scrape."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import boto3
from prometheus_client.parser import text_string_to_metric_families

from alerts.digest import DigestResult, SentDigest
from jobs.metrics import METRIC_NAMES, Metrics, serve
from jobs.scheduler import JobOutcome, Scheduler, build_jobs

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "pipepulse.json"
OFF = '[schedule]\ndetect = ""\nforecast = ""\nalerts_immediate = ""\ndigest_daily = ""\ndigest_weekly = ""\nretention = ""\nbackup = ""\n'


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_metrics_after_a_real_collect_pass(aws, engine, make_settings, now):
    glue = boto3.client("glue", region_name="us-east-1")
    glue.create_job(Name="nightly", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://b/j.py"})
    for _ in range(2):
        glue.start_job_run(JobName="nightly")
    settings = make_settings('[collectors]\nsources = ["glue"]\n' + OFF)
    jobs = build_jobs(settings, engine)
    up = {"ok": True}
    clock = {"t": 1000.0}
    down: dict = {"since": None}
    metrics = Metrics(sources=["glue"], clock=lambda: clock["t"], database_probe=lambda: up["ok"],
                      down_since=lambda: down["since"])
    server, _ = serve(metrics, host="127.0.0.1", port=0)
    try:
        scheduler = Scheduler(engine, jobs, on_outcome=metrics.observe)
        outcome = scheduler.run_job(jobs[0], now)
        p = outcome.result
        assert (outcome.status, p.status) == ("ran", "succeeded") and p.rows_written > 0 and p.api_calls > 0
        # a digest pass: one email sent, one webhook message failed after 3 tries
        digest = DigestResult(period="daily", now=now, digests=[
            SentDigest("d1", ("a@example.com",), "s", "sent", ()),
            SentDigest("d2", ("webhook:ops",), "s", "failed", (), channel="webhook:ops", attempts=3)])
        metrics.observe(JobOutcome("digest_daily", now, "failed", "x", digest), 0.25)
        clock["t"] += 42
        got = _scrape(server.server_port)
        g = (("source", "glue"),)
        assert got[("pipepulse_collector_passes_total", (("source", "glue"), ("status", "succeeded")))] == 1
        assert got[("pipepulse_collector_passes_total", (("source", "glue"), ("status", "failed")))] == 0
        assert got[("pipepulse_collector_rows_written_total", g)] == p.rows_written
        assert got[("pipepulse_collector_api_calls_total", g)] == p.api_calls
        assert abs(got[("pipepulse_collector_api_cost_usd_total", g)] - p.api_cost_usd) < 1e-12
        assert got[("pipepulse_collector_lag_seconds", g)] == 42
        assert got[("pipepulse_job_runs_total", (("job", "glue"), ("status", "ran")))] == 1
        assert got[("pipepulse_job_duration_seconds_count", (("job", "glue"),))] == 1
        assert got[("pipepulse_notifications_total", (("channel", "email"), ("period", "daily"), ("status", "sent")))] == 1
        assert got[("pipepulse_notifications_total", (("channel", "webhook"), ("period", "daily"), ("status", "failed")))] == 1
        assert got[("pipepulse_notification_attempts_total", (("channel", "webhook"),))] == 3
        assert got[("pipepulse_database_up", ())] == 1
        assert got[("pipepulse_database_down_since_timestamp_seconds", ())] == 0
        up["ok"] = False
        assert _scrape(server.server_port)[("pipepulse_database_up", ())] == 0
        # the scheduler's own state: its jobs found the database unreachable (the probe may still pass)
        up["ok"], down["since"] = True, now
        scheduler.database_down_since = now
        assert scheduler.health() == f"database unreachable since {now:%Y-%m-%d %H:%M:%S} UTC"
        later = _scrape(server.server_port)
        assert later[("pipepulse_database_up", ())] == 0
        assert later[("pipepulse_database_down_since_timestamp_seconds", ())] == now.timestamp()
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics") as r:
            assert f"now: database unreachable since {now:%Y-%m-%d %H:%M:%S} UTC" in r.read().decode()

        # every metric the Grafana dashboard reads is served, and every served metric is on the dashboard
        names = {n for n, _ in got}
        exprs = [t["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for t in panel["targets"]]
        used = {m for e in exprs for m in re.findall(r"\bpipepulse_[a-z_]+", e)}
        assert used and used <= names, used - names
        assert {re.sub(r"_bucket$", "", u) for u in used} == set(METRIC_NAMES)
    finally:
        server.shutdown()
        server.server_close()
