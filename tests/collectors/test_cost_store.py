"""store/costs.py: one source per day by priority, CE shapes never summed twice, atomic replace."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from store.costs import (
    ALL,
    cost_sources,
    daily_cost,
    month_to_date,
    replace_cost_rows,
)
from store.forecasts import latest_forecast, save_forecast
from store.schema import cost_daily, forecast_snapshots

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)


def _row(day, service, billed, *, region="us-east-1", usage_type="", pipeline="", provider="AWS", account="1"):
    return {"day": day, "provider": provider, "account": account, "service": service, "region": region,
            "usage_type": usage_type, "pipeline": pipeline, "billed_cost": billed, "effective_cost": billed / 2,
            "currency": "USD"}


def _ce(day, service, billed, region, usage_type, pipeline):
    """One group in each CE shape carries the same money."""
    return [
        _row(day, service, billed, region=region, usage_type=ALL, pipeline=ALL, account=""),
        _row(day, service, billed, region=ALL, usage_type=usage_type, pipeline=ALL, account=""),
        _row(day, service, billed, region=ALL, usage_type=ALL, pipeline=pipeline, account=""),
    ]


@pytest.fixture
def seeded(engine):
    with engine.begin() as conn:
        replace_cost_rows(conn, "ce", D1, D3 + timedelta(days=1), [
            *_ce(D1, "S3", 10.0, "us-east-1", "TimedStorage", "orders"),
            *_ce(D1, "Glue", 5.0, "eu-west-1", "DPU", ""),
            *_ce(D2, "S3", 11.0, "us-east-1", "TimedStorage", "orders"),
            *_ce(D3, "S3", 12.0, "us-east-1", "TimedStorage", "orders"),
        ], now=NOW)
        replace_cost_rows(conn, "cur", D2, D3, [_row(D2, "S3", 11.5, usage_type="TimedStorage", pipeline="orders")], now=NOW)
        replace_cost_rows(conn, "focus", D3, D3 + timedelta(days=1), [
            _row(D3, "S3", 12.25, usage_type="TimedStorage", pipeline="orders"),
            _row(D3, "VM", 3.0, provider="Microsoft", region="eastus", usage_type="D2", pipeline="clickstream"),
        ], now=NOW)
    return engine


def test_one_source_per_day_by_priority(seeded):
    with seeded.connect() as conn:
        got = daily_cost(conn, D1, D3)
    assert got[["day", "source", "billed_cost"]].values.tolist() == [
        [D1, "ce", 15.0], [D2, "cur", 11.5], [D3, "focus", 15.25]]
    assert got["effective_cost"].tolist() == [7.5, 5.75, 7.625]


@pytest.mark.parametrize(
    ("by", "want"),
    [
        ("service", [[D1, "Glue", 5.0], [D1, "S3", 10.0]]),
        ("region", [[D1, "eu-west-1", 5.0], [D1, "us-east-1", 10.0]]),
        ("usage_type", [[D1, "DPU", 5.0], [D1, "TimedStorage", 10.0]]),
        ("pipeline", [[D1, "", 5.0], [D1, "orders", 10.0]]),
    ],
)
def test_ce_days_read_one_shape(seeded, by, want):
    with seeded.connect() as conn:
        got = daily_cost(conn, D1, D1, by=by)
    assert got[["day", by, "billed_cost"]].values.tolist() == want


def test_filters_and_explicit_source(seeded):
    with seeded.connect() as conn:
        ce_only = daily_cost(conn, D1, D3, source="ce")
        orders = daily_cost(conn, D1, D3, pipeline="orders")
        by_provider = daily_cost(conn, D3, D3, by="provider")
    assert ce_only["billed_cost"].tolist() == [15.0, 11.0, 12.0]
    assert orders[["day", "source", "billed_cost"]].values.tolist() == [[D1, "ce", 10.0], [D2, "cur", 11.5], [D3, "focus", 12.25]]
    assert by_provider[["provider", "billed_cost"]].values.tolist() == [["AWS", 12.25], ["Microsoft", 3.0]]
    with pytest.raises(ValueError, match="by must be one of"):
        with seeded.connect() as conn:
            daily_cost(conn, D1, D3, by="colour")


def test_replace_is_exact_and_idempotent(seeded):
    new = [_row(D3, "S3", 12.25, usage_type="TimedStorage", pipeline="orders")]
    with seeded.begin() as conn:
        assert replace_cost_rows(conn, "focus", D3, D3 + timedelta(days=1), new, now=NOW) == 1  # VM row deleted
    with seeded.begin() as conn:
        assert replace_cost_rows(conn, "focus", D3, D3 + timedelta(days=1), new, now=NOW) == 0
    with seeded.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cost_daily).where(cost_daily.c.source == "focus")).scalar_one() == 1
    with pytest.raises(ValueError, match="outside"):
        with seeded.begin() as conn:
            replace_cost_rows(conn, "focus", D1, D2, new, now=NOW)
    # daily_cost picks each day's source among the known ones: an unknown source is refused
    with pytest.raises(ValueError, match="source must be one of focus, cur, athena, ce, estimate"):
        with seeded.begin() as conn:
            replace_cost_rows(conn, "billing", D3, D3 + timedelta(days=1), [], now=NOW)


def test_replace_rolls_back_with_the_transaction(seeded):
    with pytest.raises(RuntimeError):
        with seeded.begin() as conn:
            replace_cost_rows(conn, "cur", D2, D3, [], now=NOW)
            raise RuntimeError("killed mid-pass")
    with pytest.raises(RuntimeError):
        with seeded.begin() as conn:  # the bulk insert path too
            replace_cost_rows(conn, "cur", D1, D2, [_row(D1, "S3", 99.0)], now=NOW)
            raise RuntimeError("killed mid-pass")
    with seeded.connect() as conn:
        assert daily_cost(conn, D2, D2, source="cur")["billed_cost"].tolist() == [11.5]
        assert daily_cost(conn, D1, D1, source="cur").empty


def test_sources_and_month_to_date(seeded):
    with seeded.connect() as conn:
        sources = cost_sources(conn)
        mtd = month_to_date(conn, D2)
    assert sources[["source", "first_day", "last_day", "days", "rows", "billed_cost"]].values.tolist() == [
        ["ce", D1, D3, 3, 12, 38.0], ["cur", D2, D2, 1, 1, 11.5], ["focus", D3, D3, 1, 2, 15.25]]
    assert mtd["billed_cost"].tolist() == [15.0, 11.5]


def test_forecast_one_snapshot_per_day(engine):
    points = pd.DataFrame({"day": [D2, D3], "mean": [1.0, 2.0], "lower": [0.5, 1.0], "upper": [1.5, 3.0]})
    kw = dict(method="aws", subject="total", level=0.8, month_end_mean=3.0, month_end_lower=1.5, month_end_upper=4.5)
    with engine.begin() as conn:
        assert save_forecast(conn, created_at=NOW, points=points, **kw) == 3
    with engine.begin() as conn:
        assert save_forecast(conn, created_at=NOW + timedelta(hours=2), points=points, **kw) == 0
    with engine.begin() as conn:
        assert save_forecast(conn, created_at=NOW + timedelta(hours=3), points=points.assign(mean=[1.0, 2.5]), **kw) == 3
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(forecast_snapshots)).scalar_one() == 1
        snap, pts = latest_forecast(conn, "aws")
    assert pts["mean"].tolist() == [1.0, 2.5] and snap["month_end_mean"] == 3.0
