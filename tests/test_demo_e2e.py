"""The demo end to end: a short history through every real part, then a second, quiet pass."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from clocks import AWS_NOW

from collectors.runner import collect
from devkit.demo import build_demo
from insights.rightsizing import rightsize
from pipepulse.settings import load_settings
from store import schema
from store.costs import daily_cost
from store.invocations import function_usage

ROOT = Path(__file__).resolve().parents[1]
# the backfill's metrics and log events must be inside CloudWatch's 14 days (tests/clocks.py);
# 01:00, as a `make demo` just after midnight: today has one hour, and tonight's 02:00 Glue run
# has not happened
END = AWS_NOW.replace(hour=1)
pytestmark = pytest.mark.aws_clock


def test_demo_builds_collects_and_a_second_pass_is_quiet(aws, db_url, engine, tmp_path):
    settings = load_settings(
        {
            "PIPEPULSE_DATA_DIR": str(tmp_path / "demo"),
            "PIPEPULSE_DATABASE_URL": db_url,
            "AWS_ENDPOINT_URL": aws.endpoint,
        },
        config_path=ROOT / "examples" / "demo.toml",
    )
    aws.enable_stepfunctions_execution()
    heard: list[str] = []
    bars: list[tuple[str, int, int]] = []
    summary = build_demo(settings, engine, days=4, end=END, local_aws=aws, announce=heard.append,
                         bar=lambda line, done, total: bars.append((line, done, total)))
    assert "failed_sources" not in summary.extra, summary.extra
    # each step named when it starts, then with its counts and elapsed time (issue #21)
    names = ["Step Functions and Glue", "pipeline backfill", "Lambda REPORT lines", "Cost Explorer data", "collect",
             "Airflow (recorded)", "detect anomalies", "forecasts"]
    assert heard[0::2] == [f"demo [{i}/8] {n} ..." for i, n in enumerate(names, 1)]
    assert [h.split(":")[0] for h in heard[1::2]] == [f"demo [{i}/8] {n}" for i, n in enumerate(names, 1)]
    assert re.fullmatch(r"demo \[1/8\] Step Functions and Glue: \d+ Step Functions executions, \d+ Glue job runs \(.*", heard[1])
    assert heard[3].startswith("demo [2/8] pipeline backfill: ") and " runs (" in heard[3] and heard[3].endswith(" s so far)")
    # the steps of known size draw a bar: the backfill's days, the collectors' sources (by name)
    backfill_bars = [b for b in bars if b[0].startswith("demo [2/8] pipeline backfill [")]
    assert [b[1:] for b in backfill_bars] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert re.fullmatch(r"demo \[2/8\] pipeline backfill \[#{30}\] 4/4 days, \d+ s", backfill_bars[-1][0])
    collect_bars = [b[0] for b in bars if b[0].startswith("demo [5/8] collect [")]
    assert collect_bars[0].startswith("demo [5/8] collect [" + "." * 30 + "] 0/")
    assert {re.search(r"\((\w+)\)", line).group(1) for line in collect_bars[:-1]} >= {"reference", "stepfunctions", "ce"}
    assert all(line.isprintable() for line, _, _ in bars)

    with engine.connect() as conn:
        runs = pd.DataFrame(conn.execute(sa.select(schema.runs)).mappings().all())
        steps = pd.DataFrame(conn.execute(sa.select(schema.run_steps)).mappings().all())
        costs = pd.DataFrame(conn.execute(sa.select(schema.cost_daily)).mappings().all())
        n_points = conn.execute(sa.select(sa.func.count()).select_from(schema.metric_points)).scalar_one()
        n_logs = conn.execute(sa.select(sa.func.count()).select_from(schema.run_logs)).scalar_one()
        n_rollup = conn.execute(sa.select(sa.func.count()).select_from(schema.run_daily)).scalar_one()

    # every source delivered: reference runs, Step Functions and Glue runs, with failures
    assert set(runs["source"]) == {"reference", "stepfunctions", "glue", "airflow"}
    assert (runs["status"] == "FAILED").sum() > 0
    assert runs.loc[runs["status"] == "FAILED", "error_type"].notna().all()
    # step timelines with retries: some stage ran more than once in a run
    assert steps["attempt"].max() >= 2
    assert set(steps.loc[steps["run_id"].str.startswith("reference:"), "stage"]) >= {"ingest", "validate", "load"}
    assert n_points > 0 and n_logs > 0 and n_rollup > 0
    # the reference pipeline's Lambdas have REPORT lines with more memory than they use: right-sizing shows
    with engine.connect() as conn:
        usage = function_usage(conn, END - timedelta(days=14), END + timedelta(hours=1))
    sized = rightsize(usage, days=14, price_gb_second=settings.prices.lambda_gb_second).set_index("function_name")
    assert sized.loc["pipepulse-orders-ingest", "memory_size_mb"] == 1024
    assert (sized["suggested_mb"] < sized["memory_size_mb"]).all() and (sized["monthly_saving_usd"] > 0).all()
    # the bill arrived twice (export and Cost Explorer) and the two agree on the total per day
    assert set(costs["source"]) >= {"ce", "focus"}
    with engine.connect() as conn:
        first, last = END.date() - timedelta(days=4), END.date() - timedelta(days=1)
        by_ce = daily_cost(conn, first, last, source="ce").set_index("day")["billed_cost"]
        by_focus = daily_cost(conn, first, last, source="focus").set_index("day")["billed_cost"]
        by_service = daily_cost(conn, first, last, source="ce", by="service")
    assert len(by_focus) == 4 and (by_focus > 0).all()
    pd.testing.assert_series_equal(by_ce.round(2), by_focus.round(2), check_names=False)
    assert by_service.groupby("day")["billed_cost"].sum().round(2).tolist() == by_ce.round(2).tolist()
    # today is billed for its first hour only (about a 24th of a day; the runs of that hour as
    # they ran), not as a whole day
    with engine.connect() as conn:
        today = daily_cost(conn, END.date(), END.date(), source="focus")["billed_cost"].sum()
    assert 0 < today < by_focus.min() / 12
    # the bill's Step Functions line is what the demo's executions bill, day by day: their run
    # estimates (transitions x the Standard price) equal it (tolerance: the export rounds each
    # row's cost to 1e-10 USD), and no day without executions is billed for Step Functions
    sfn = runs[runs["pipeline"] == "sfn_customer_etl"]
    estimate = sfn.groupby(pd.to_datetime(sfn["started_at"]).dt.date)["cost_usd"].sum()
    with engine.connect() as conn:
        billed = daily_cost(conn, END.date() - timedelta(days=4), END.date(), source="focus", by="service")
    billed = billed[billed["service"] == "AWS Step Functions"].set_index("day")["billed_cost"]
    assert len(estimate) >= 3 and (estimate > 0).all()
    assert billed.index.tolist() == estimate.index.tolist()
    assert billed.tolist() == pytest.approx(estimate.tolist(), rel=1e-6)
    # the Glue job has a run every night its bill line covers, and each succeeded night's estimate
    # is that day's glue_nightly bill within 12% (the bill meters with its own noise, 3% a day);
    # the night that ran into the timeout is billed as the line is, not as the run
    glue = runs[runs["pipeline"] == "glue_nightly"]
    glue_days = pd.to_datetime(glue["started_at"]).dt.date
    with engine.connect() as conn:
        glue_bill = daily_cost(conn, END.date() - timedelta(days=4), END.date(), source="focus", pipeline="glue_nightly")
    glue_bill = glue_bill.set_index("day")["billed_cost"]
    assert sorted(glue_days) == glue_bill.index.tolist() and len(glue_bill) == 4
    ok = glue[glue["status"] == "SUCCEEDED"].groupby(glue_days)["cost_usd"].sum()
    assert len(ok) == 3
    assert ok.tolist() == pytest.approx(glue_bill[ok.index].tolist(), rel=0.12)

    # A second pass with nothing new stores nothing.
    second = collect(settings, engine, now=END + timedelta(minutes=20))
    assert {p.source: p.status for p in second} == {p: "succeeded" for p in ("reference", "stepfunctions", "glue", "cloudwatch", "logs", "ce", "focus")}
    assert {p.source: p.rows_written for p in second if p.source not in ("ce",)} == {
        "reference": 0, "stepfunctions": 0, "glue": 0, "cloudwatch": 0, "logs": 0, "focus": 0
    }
    # ... and makes only the minimum calls: one listing per resource kind, one Cost Explorer
    # request per query shape for the restated days, one GetMetricData for < 500 series.
    calls = {p.source: p.calls for p in second}
    # logs: one FilterLogEvents per Lambda function of [collectors.logs.lambda_functions]
    assert calls["reference"] == {} and calls["logs"] == {"logs:FilterLogEvents": 2}
    assert calls["stepfunctions"] == {"states:ListStateMachines": 1, "states:ListExecutions": 1}
    assert calls["glue"] == {"glue:GetJobs": 1, "glue:GetJobRuns": 1}
    assert calls["ce"] == {"ce:GetCostAndUsage": 3}
    assert calls["focus"] == {"s3:ListObjectsV2": 1}
    assert calls["cloudwatch"]["monitoring:GetMetricData"] == 1
