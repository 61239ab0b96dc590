"""The Cost Explorer collector against the stand-in over HTTP, on both databases."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
import requests
import sqlalchemy as sa

from collectors.costexplorer import SHAPES, minimum_requests
from collectors.runner import collect
from devkit.localaws.costexplorer import CostExplorerStandIn
from store.costs import daily_cost
from store.forecasts import latest_forecast
from store.schema import collector_runs, cost_daily

TODAY = date(2026, 11, 20)  # the `now` fixture's day
SERVICES = [("Amazon S3", "us-east-1", "TimedStorage-ByteHrs"), ("AWS Glue", "eu-west-1", "EUW1-ETL-DPU-Hour"),
            ("AWS Glue", "us-east-1", "ETL-DPU-Hour"), ("AWS Lambda", "us-east-1", "Request")]


def _items(start: date, days: int) -> list[dict]:
    """Deterministic line items: 4 service/region/usage combos x 2 pipelines (+ untagged)."""
    out = []
    for d in range(days):
        day = start + timedelta(days=d)
        for i, (svc, region, ut) in enumerate(SERVICES):
            for j, pipe in enumerate(["orders", "clickstream", None]):
                cost = round(0.5 + i * 1.25 + j * 0.1 + (d % 7) * 0.01, 2)
                out.append({"date": day.isoformat(), "service": svc, "region": region, "usage_type": ut,
                            "tags": {"pipeline": pipe} if pipe else {}, "unblended_cost": cost,
                            "amortized_cost": round(cost * 0.9, 4), "usage_quantity": 10.0 + i})
    return out


@pytest.fixture
def ce(aws):
    standin = aws.app(CostExplorerStandIn)
    standin.configure(today=TODAY, page_size=50)
    return standin


def _settings(make_settings, extra: str = ""):
    return make_settings('[collectors]\nsources = ["ce"]\n[collectors.ce]\nbackfill_days = 10\n' + extra)


def test_first_pass_minimum_requests_and_totals(make_settings, engine, ce, now):
    items = _items(TODAY - timedelta(days=40), 41)
    ce.load_line_items(items)
    frame = pd.DataFrame(items)
    [result] = collect(_settings(make_settings), engine, now=now)
    assert result.status == "succeeded", result.error
    # window: 1..20 Nov (backfill_days is 10, but the first pass covers the month so far); per
    # day 4 service x region groups, 4 service x usage type groups, 3 services x 3 tag values
    units = {"region": 80, "usage": 80, "pipeline": 180}
    assert minimum_requests(units, page_size=50) == 2 + 2 + 4
    assert result.calls == {"ce:GetCostAndUsage": 8, "ce:GetCostForecast": 1}
    assert ce.requests == {"GetCostAndUsage": 8, "GetCostForecast": 1}
    assert result.api_calls == 9
    assert result.api_cost_usd == pytest.approx(0.09)

    start = TODAY.replace(day=1)
    window = frame[pd.to_datetime(frame["date"]).dt.date >= start]
    want_by_service = window.groupby("service")["unblended_cost"].sum().round(6).to_dict()
    with engine.connect() as conn:
        got = daily_cost(conn, start, TODAY, by="service")
        assert got.groupby("service")["billed_cost"].sum().round(6).to_dict() == want_by_service
        assert set(got["source"]) == {"ce"}
        by_pipe = daily_cost(conn, start, TODAY, by="pipeline").groupby("pipeline")["billed_cost"].sum().round(6).to_dict()
        tags = window["tags"].map(lambda t: t.get("pipeline", ""))
        assert by_pipe == window.groupby(tags)["unblended_cost"].sum().round(6).to_dict()
        by_ut = daily_cost(conn, start, TODAY, by="usage_type").groupby("usage_type")["effective_cost"].sum().round(6).to_dict()
        assert by_ut == window.groupby("usage_type")["amortized_cost"].sum().round(6).to_dict()
        by_region = daily_cost(conn, start, TODAY, by="region").groupby("region")["billed_cost"].sum().round(6).to_dict()
        assert by_region == window.groupby("region")["unblended_cost"].sum().round(6).to_dict()
        total = daily_cost(conn, start, TODAY)
        assert len(total) == 20
        assert round(total["billed_cost"].sum(), 6) == round(window["unblended_cost"].sum(), 6)
        # the forecast, stored beside pipepulse's own
        snap, points = latest_forecast(conn, "aws")
        assert snap["subject"] == "total" and snap["level"] == 0.8
        assert list(points["day"]) == [TODAY + timedelta(days=i) for i in range(11)]  # 20..30 Nov
        history = frame[(pd.to_datetime(frame["date"]).dt.date < TODAY) & (pd.to_datetime(frame["date"]).dt.date >= TODAY - timedelta(days=28))]
        mean = history.groupby("date")["unblended_cost"].sum().mean()
        assert points["mean"].round(6).tolist() == [round(mean, 6)] * 11
        mtd = frame[(pd.to_datetime(frame["date"]).dt.date >= TODAY.replace(day=1)) & (pd.to_datetime(frame["date"]).dt.date < TODAY)]["unblended_cost"].sum()
        assert snap["month_end_mean"] == pytest.approx(mtd + 11 * mean, abs=1e-6)


def test_steady_state_restatement_window_only(make_settings, engine, ce, now):
    ce.load_line_items(_items(TODAY - timedelta(days=40), 41))
    settings = _settings(make_settings)
    collect(settings, engine, now=now)
    ce.requests.clear()
    [second] = collect(settings, engine, now=now + timedelta(hours=6))
    assert second.status == "succeeded", second.error
    assert (second.rows_written, second.calls) == (0, {"ce:GetCostAndUsage": len(SHAPES)})
    with engine.connect() as conn:
        runs = conn.execute(sa.select(collector_runs.c.window_start, collector_runs.c.window_end).order_by(collector_runs.c.collector_run_id)).all()
        assert [(r[0].date(), r[1].date()) for r in runs] == [(TODAY.replace(day=1), TODAY + timedelta(days=1)),
                                                             (TODAY - timedelta(days=2), TODAY + timedelta(days=1))]


def test_restated_day_changes_stored_value(make_settings, engine, ce, now):
    ce.load_line_items(_items(TODAY - timedelta(days=40), 41))
    settings = _settings(make_settings)
    collect(settings, engine, now=now)
    day = TODAY - timedelta(days=1)
    # AWS restates yesterday: S3 doubles, Lambda disappears
    restated = [i for i in _items(day, 1) if i["service"] != "AWS Lambda"]
    for i in restated:
        if i["service"] == "Amazon S3":
            i["unblended_cost"] *= 2
    ce.load_line_items(restated, replace_days=True)
    [second] = collect(settings, engine, now=now + timedelta(hours=6))
    assert second.rows_written > 0
    want = pd.DataFrame(restated).groupby("service")["unblended_cost"].sum().round(6).to_dict()
    with engine.connect() as conn:
        got = daily_cost(conn, day, day, by="service")
        assert got.set_index("service")["billed_cost"].round(6).to_dict() == want
        lambda_rows = conn.execute(sa.select(sa.func.count()).select_from(cost_daily).where(
            cost_daily.c.day == day, cost_daily.c.service == "AWS Lambda")).scalar_one()
        assert lambda_rows == 0


def test_paging_follows_next_page_token(make_settings, engine, ce, now):
    ce.load_line_items(_items(TODAY - timedelta(days=40), 41))
    ce.configure(page_size=7)
    [result] = collect(_settings(make_settings, "forecast = false\n"), engine, now=now)
    assert result.calls == {"ce:GetCostAndUsage": minimum_requests({"region": 80, "usage": 80, "pipeline": 180}, page_size=7)}
    assert result.calls["ce:GetCostAndUsage"] == 12 + 12 + 26
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(cost_daily)).scalar_one()
    assert n == 80 + 80 + 180


def test_access_denied_names_the_action(make_settings, engine, ce, now):
    ce.configure(deny=["GetCostAndUsage"])
    [result] = collect(_settings(make_settings), engine, now=now)
    assert result.status == "failed"
    assert "grant ce:GetCostAndUsage" in result.error
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cost_daily)).scalar_one() == 0


def test_too_little_history_for_forecast_is_not_a_failure(make_settings, engine, ce, now):
    ce.load_line_items(_items(TODAY - timedelta(days=5), 6))
    [result] = collect(_settings(make_settings), engine, now=now)
    assert result.status == "succeeded", result.error
    assert result.calls["ce:GetCostForecast"] == 1
    with engine.connect() as conn:
        assert latest_forecast(conn, "aws") is None
        details = conn.execute(sa.select(collector_runs.c.details)).scalar_one()
    assert "DataUnavailableException" in details


def test_unexpected_answer_shape_is_a_collector_error(make_settings, engine, ce, now, monkeypatch):
    original = CostExplorerStandIn.get_cost_and_usage

    def broken(self, req):
        answer = original(self, req)
        for r in answer["ResultsByTime"]:
            for g in r["Groups"]:
                g["Metrics"].pop("AmortizedCost")
        return answer

    ce.load_line_items(_items(TODAY - timedelta(days=3), 4))
    monkeypatch.setattr(CostExplorerStandIn, "get_cost_and_usage", broken)
    [result] = collect(_settings(make_settings), engine, now=now)
    assert result.status == "failed"
    # the window starts on the 1st; the first day with data (the 17th) is ResultsByTime[16]
    assert result.error == "ce: GetCostAndUsage answer has an unexpected shape: ResultsByTime[16].Groups[0].Metrics lacks AmortizedCost"


def test_missing_credentials_is_clear(make_settings, engine, ce, now, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    [result] = collect(_settings(make_settings), engine, now=now)
    assert result.status == "failed"
    assert "no AWS credentials" in result.error


def test_seeding_over_http(aws, ce):
    r = requests.post(f"{aws.endpoint}/pipepulse-api/ce/line-items", json={"items": _items(TODAY, 1)}, timeout=10)
    assert r.json() == {"loaded": 12}
    assert requests.get(f"{aws.endpoint}/pipepulse-api/ce/requests", timeout=10).json() == {}


def test_throttling_and_5xx_are_retried_and_counted(make_settings, engine, ce, aws, now):
    from devkit.localaws.faults import FaultInjector

    items = _items(TODAY - timedelta(days=40), 41)
    ce.load_line_items(items)
    faults = aws.app(FaultInjector)
    faults.add(service="ce", operation="GetCostAndUsage", code="LimitExceededException", status=400, times=2)
    faults.add(service="ce", operation="GetCostForecast", code="InternalServerError", status=500, times=1)
    [result] = collect(_settings(make_settings), engine, now=now)
    assert result.status == "succeeded", result.error
    # every HTTP attempt is a billed request: the 8 answered + 2 throttled, the forecast twice
    assert result.calls == {"ce:GetCostAndUsage": 10, "ce:GetCostForecast": 2}
    assert result.retries == {"ce:GetCostAndUsage": 2, "ce:GetCostForecast": 1}
    assert ce.requests == {"GetCostAndUsage": 8, "GetCostForecast": 1}  # what reached the stand-in
    window = pd.DataFrame(items)
    window = window[pd.to_datetime(window["date"]).dt.date >= TODAY.replace(day=1)]
    with engine.connect() as conn:
        got = daily_cost(conn, TODAY.replace(day=1), TODAY)
    assert round(got["billed_cost"].sum(), 6) == round(window["unblended_cost"].sum(), 6)


def test_failing_pass_stores_nothing_and_the_next_resumes(make_settings, engine, ce, aws, now):
    from devkit.localaws.faults import FaultInjector

    ce.load_line_items(_items(TODAY - timedelta(days=40), 41))
    faults = aws.app(FaultInjector)
    # Cost Explorer keeps throttling: the pass fails after its bounded retries, storing nothing
    faults.add(service="ce", operation="GetCostAndUsage", code="LimitExceededException", status=400, times=-1)
    settings = _settings(make_settings)
    [failed] = collect(settings, engine, now=now)
    assert failed.status == "failed"
    assert "gave up after 5 attempts" in failed.error
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cost_daily)).scalar_one() == 0
    faults.reset()
    [resumed] = collect(settings, engine, now=now + timedelta(hours=1))
    assert resumed.status == "succeeded"
    assert resumed.calls["ce:GetCostAndUsage"] == 8  # the full first window again
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cost_daily)).scalar_one() == 80 + 80 + 180
