"""Lambda right-sizing: hand-computed suggestions and savings, the store's aggregate, the weekly digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from alerts.collect import Context, Spend
from alerts.render import render_digest
from insights.rightsizing import rightsize, suggested_mb
from store.invocations import function_usage, invocations_frame
from store.schema import lambda_invocations
from store.writes import upsert

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PRICE = 0.00001  # a round price per GB-second, so the savings below are easy to check by hand


@pytest.mark.parametrize(("used", "want"), [(200, 240), (50, 128), (120, 144), (9000, 10240), (10240, 10240),
                                            (201, 242)])
def test_suggested_size_has_headroom_stays_in_lambdas_limits_and_never_below_use(used, want):
    assert suggested_mb(used) == want
    assert suggested_mb(used) >= used


def _usage(rows):
    return pd.DataFrame(rows, columns=["function_name", "memory_size_mb", "invocations", "max_memory_used_mb",
                                       "billed_duration_ms", "last_at"])


def test_rightsize_by_hand():
    usage = _usage([
        # "load": 1024 MB now (the 2048 MB rows are older and do not count); 3,600 billed seconds in 30 days
        ("load", 1024, 100, 200, 3_600_000.0, T),
        ("load", 2048, 50, 900, 1_000_000.0, T - timedelta(days=20)),
        ("tiny", 256, 10, 50, 1_000_000.0, T),   # 1,000 s at 256 MB; 128 MB is Lambda's least
        ("full", 128, 5, 120, 500_000.0, T),     # used 120 of 128: suggest more, save nothing
    ])
    got = rightsize(usage, days=30, price_gb_second=PRICE).set_index("function_name")
    # load: 3,600 s x (1024 - 240) / 1024 GB = 2,756.25 GB-s -> 0.0275625; today 3,600 GB-s -> 0.036
    assert got.loc["load", ["memory_size_mb", "max_memory_used_mb", "suggested_mb", "invocations"]].tolist() == [1024, 200, 240, 100]
    assert got.loc["load", "monthly_saving_usd"] == pytest.approx(0.0275625)
    assert got.loc["load", "monthly_cost_usd"] == pytest.approx(0.036)
    # tiny: 1,000 s x 128 / 1024 GB = 125 GB-s -> 0.00125
    assert got.loc["tiny", "suggested_mb"] == 128
    assert got.loc["tiny", "monthly_saving_usd"] == pytest.approx(0.00125)
    assert (got.loc["full", "suggested_mb"], got.loc["full", "monthly_saving_usd"]) == (144, 0.0)
    assert "near its limit" in got.loc["full", "note"]
    # a week of data is scaled to 30 days
    week = rightsize(usage.iloc[:1], days=7.5, price_gb_second=PRICE)
    assert week["monthly_saving_usd"].iloc[0] == pytest.approx(0.0275625 * 4)


def test_store_aggregates_invocations_per_function_and_size(engine):
    rows = [dict(log_group="/aws/lambda/load", request_id=f"r{i}", function_name="load", pipeline="orders",
                 ended_at=T - timedelta(hours=i), duration_ms=999.5, billed_duration_ms=1000.0, memory_size_mb=1024,
                 max_memory_used_mb=150 + i, init_duration_ms=500.0 if i == 0 else None, status=None, log_stream="s")
            for i in range(4)]
    with engine.begin() as conn:
        upsert(conn, lambda_invocations, rows, now=T)
    with engine.connect() as conn:
        usage = function_usage(conn, T - timedelta(days=1), T + timedelta(minutes=1))
        listed = invocations_frame(conn, T - timedelta(hours=2, minutes=30), T + timedelta(minutes=1), pipeline="orders")
    assert usage[["function_name", "memory_size_mb", "invocations", "max_memory_used_mb", "billed_duration_ms"]].values.tolist() == [
        ["load", 1024, 4, 153, 4000.0]]
    assert usage["last_at"].iloc[0] == T
    assert listed["request_id"].tolist() == ["r2", "r1", "r0"] and listed["cold_start"].tolist() == [False, False, True]
    sized = rightsize(usage, days=1, price_gb_second=PRICE)
    # 4 s a day -> 120 s a month, x (1024 - 184) / 1024 GB -> 98.4375 GB-s
    assert (sized["suggested_mb"].iloc[0], sized["monthly_saving_usd"].iloc[0]) == (184, pytest.approx(0.000984375))


def test_weekly_digest_shows_the_saving_and_says_it_is_an_estimate():
    sizing = rightsize(_usage([("pipepulse-orders-ingest", 1024, 100, 200, 3_600_000.0, T)]), days=30,
                       price_gb_second=PRICE * 1000)
    spend = Spend(month="2026-11", month_to_date=None, forecast_mean=None, forecast_lower=None, forecast_upper=None,
                  budget=None, budget_cross_day=None, daily=[], link="http://x/costs")
    ctx = Context(period="weekly", start=T - timedelta(days=7), end=T, dashboard_url="http://x", currency="USD",
                  summary=pd.DataFrame(), spend=spend, rightsizing=sizing)
    out = render_digest([], ctx)
    assert "LAMBDA RIGHT-SIZING (ESTIMATE)" in out.text
    assert "pipepulse-orders-ingest" in out.text and "1024 MB -> 240 MB (max used 200 MB)" in out.text
    assert "$27.56" in out.text or "27.56" in out.text
    assert "Lambda right-sizing" in out.html and "Estimate" in out.html
    # nothing to save: no section
    ctx.rightsizing = sizing.assign(monthly_saving_usd=0.0)
    assert "RIGHT-SIZING" not in render_digest([], ctx).text
