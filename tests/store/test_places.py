"""``places``: where runs and cost rows came from, per day, kept by the run rollup and the cost
writes, and read by the dashboard's account and region lists."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from store import dashboard_reads as reads
from store.costs import replace_cost_rows
from store.places import refresh_places
from store.rollups import refresh_run_daily
from store.schema import places, runs
from store.writes import upsert


def _places(conn) -> set[tuple]:
    return {(r.day, r.kind, r.account, r.region) for r in conn.execute(sa.select(places))}


def _cost(day: date, account: str, region: str, service: str = "S3") -> dict:
    return {"day": day, "provider": "AWS", "account": account, "service": service, "region": region, "usage_type": "u",
            "pipeline": "", "billed_cost": 1.0, "effective_cost": 1.0}


def test_the_run_rollup_recomputes_the_days_places(engine, now):
    today, yesterday = now.date(), now.date() - timedelta(days=1)
    # the 00:30 run is on today's UTC date; the 23:30 one on yesterday's
    midnight = pd.Timestamp(today, tz="UTC").to_pydatetime()
    rows = [
        {"run_id": "a", "pipeline": "p", "source": "glue", "status": "SUCCEEDED", "started_at": midnight + timedelta(minutes=30),
         "account": "111", "region": "eu-west-1"},
        {"run_id": "b", "pipeline": "p", "source": "glue", "status": "SUCCEEDED", "started_at": midnight - timedelta(minutes=30),
         "account": "222", "region": "us-east-1"},
        {"run_id": "c", "pipeline": "p", "source": "glue", "status": "FAILED", "started_at": midnight + timedelta(hours=2),
         "account": "111", "region": "eu-west-1"},  # the same place again: one row
        {"run_id": "d", "pipeline": "p", "source": "glue", "status": "QUEUED", "started_at": None,
         "account": "333", "region": "ap-south-1"},  # not started: on no day
    ]
    with engine.begin() as conn:
        upsert(conn, runs, rows, now=now)
        refresh_run_daily(conn, days={today, yesterday}, now=now)
        assert _places(conn) == {(today, "runs", "111", "eu-west-1"), (yesterday, "runs", "222", "us-east-1")}
        assert reads.accounts(conn, since=today) == ["111"]
        assert reads.accounts(conn, since=yesterday) == ["111", "222"]
        assert reads.regions(conn, since=yesterday) == ["eu-west-1", "us-east-1"]
        # the 111 runs move to another account: refreshing today forgets 111, keeps yesterday's 222
        conn.execute(runs.update().where(runs.c.account == "111").values(account="444"))
        refresh_run_daily(conn, days={today}, now=now)
        assert _places(conn) == {(today, "runs", "444", "eu-west-1"), (yesterday, "runs", "222", "us-east-1")}


def test_cost_writes_keep_the_days_places_and_the_lists_skip_ce_wildcards(engine, now):
    d0, d1, d2 = (now.date() - timedelta(days=i) for i in (2, 1, 0))
    with engine.begin() as conn:
        n = replace_cost_rows(conn, "focus", d0, d2, [_cost(d0, "111", "eu-west-1"), _cost(d1, "222", "us-east-1")], now=now)
        assert n == 2
        assert _places(conn) == {(d0, "cost", "111", "eu-west-1"), (d1, "cost", "222", "us-east-1")}
        # Cost Explorer's '*' (a dimension its query did not break down) is no account or region to pick
        replace_cost_rows(conn, "ce", d1, d2, [_cost(d1, "*", "ap-south-1"), _cost(d1, "333", "*", "EC2")], now=now)
        assert reads.accounts(conn, since=d1) == ["222", "333"]
        assert reads.regions(conn, since=d1) == ["ap-south-1", "us-east-1"]
        assert reads.accounts(conn, since=d0) == ["111", "222", "333"]
        # a restated export without the 222 row: d1 keeps only what the rows still say
        replace_cost_rows(conn, "focus", d0, d2, [_cost(d0, "111", "eu-west-1")], now=now)
        assert reads.accounts(conn, since=d1) == ["333"]
        # a re-import that changes nothing leaves places as they are (and does not recompute them)
        conn.execute(places.delete())
        assert replace_cost_rows(conn, "focus", d0, d2, [_cost(d0, "111", "eu-west-1")], now=now) == 0
        assert _places(conn) == set()
        refresh_places(conn, "cost", d0, d2)  # what the migration's fill and a bulk load do
        assert reads.accounts(conn, since=d0) == ["111", "333"]


def test_refresh_places_knows_two_kinds(engine, now):
    with engine.begin() as conn, pytest.raises(ValueError, match="kind must be one of runs, cost"):
        refresh_places(conn, "metrics", now.date(), now.date())
