from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from insights.costs import (
    daily_spend,
    estimate_vs_bill,
    month_to_date,
    run_cost_summary,
    top_movers,
    unit_costs,
)


@pytest.fixture
def costs():
    rows = []
    # service x day: S3 flat, Glue jumps in the second week, Lambda disappears
    for d in range(1, 15):
        day = date(2026, 11, d)
        rows.append({"day": day, "service": "Amazon S3", "billed_cost": 10.0})
        rows.append({"day": day, "service": "AWS Glue", "billed_cost": 5.0 if d <= 7 else 20.0})
        if d <= 7:
            rows.append({"day": day, "service": "AWS Lambda", "billed_cost": 1.0})
    return pd.DataFrame(rows)


def test_daily_and_month_to_date(costs):
    d = daily_spend(costs)
    assert len(d) == 14 and d.loc[0, "cost"] == 16.0 and d.loc[13, "cost"] == 30.0
    by = daily_spend(costs, by="service")
    assert len(by) == 14 * 3  # Lambda filled with zeros after day 7
    assert by[(by["service"] == "AWS Lambda") & (by["day"] == date(2026, 11, 10))]["cost"].item() == 0.0
    mtd = month_to_date(costs, date(2026, 11, 10), by="service")
    # days 1-10: S3 10 x 10, Glue 5 x 7 + 20 x 3, Lambda 1 x 7
    assert list(mtd["service"]) == ["Amazon S3", "AWS Glue", "AWS Lambda"]
    assert list(mtd["cost"]) == [100.0, 95.0, 7.0]
    assert mtd["share"].tolist() == pytest.approx([100 / 202, 95 / 202, 7 / 202])
    assert mtd["cost"].sum() == 202.0
    total = month_to_date(costs, date(2026, 11, 10))
    assert total["cost"].item() == 202.0


def test_top_movers(costs):
    m = top_movers(costs, by="service", start=date(2026, 11, 8), end=date(2026, 11, 15))
    assert list(m["service"]) == ["AWS Glue", "AWS Lambda", "Amazon S3"]
    glue = m.iloc[0]
    assert (glue["current"], glue["previous"], glue["change"], glue["change_pct"]) == (140.0, 35.0, 105.0, 3.0)
    lam = m.iloc[1]
    assert (lam["current"], lam["previous"], lam["change"], lam["change_pct"]) == (0.0, 7.0, -7.0, -1.0)
    assert m.iloc[2]["change"] == 0.0


def test_unit_costs_and_waste():
    runs = pd.DataFrame([
        {"pipeline": "orders", "status": "SUCCEEDED", "attempt": 1, "trigger": "schedule", "records_out": 500_000, "cost_usd": 1.0},
        {"pipeline": "orders", "status": "FAILED", "attempt": 1, "trigger": "schedule", "records_out": 0, "cost_usd": 0.5},
        {"pipeline": "orders", "status": "SUCCEEDED", "attempt": 2, "trigger": "retry", "records_out": 1_500_000, "cost_usd": 1.5},
        {"pipeline": "clicks", "status": "SUCCEEDED", "attempt": 1, "trigger": "interval", "records_out": 4_000_000, "cost_usd": 2.0},
    ])
    s = run_cost_summary(runs).set_index("pipeline")
    assert s.loc["orders"].tolist() == [3, 2, 1, 2_000_000.0, 3.0, 0.5, 1.5]
    billed = pd.DataFrame({"pipeline": ["orders", ""], "billed_cost": [4.5, 99.0]})
    u = unit_costs(run_cost_summary(runs), billed).set_index("pipeline")
    o = u.loc["orders"]
    assert o["basis"] == "bill" and o["cost"] == 4.5
    assert o["cost_per_run"] == 1.5 and o["cost_per_successful_run"] == 2.25
    assert o["cost_per_million_records"] == 2.25
    assert o["failed_cost_usd"] == 0.5 and o["retry_cost_usd"] == 1.5
    assert o["wasted_share"] == pytest.approx(2.0 / 3.0)
    c = u.loc["clicks"]
    assert c["basis"] == "estimate" and c["cost_per_million_records"] == 0.5 and c["cost_per_run"] == 2.0


def test_estimate_vs_bill_gap():
    summary = pd.DataFrame({"pipeline": ["orders", "clicks"], "cost_usd": [3.0, 2.0]})
    billed = pd.DataFrame({"pipeline": ["orders", "partner", ""], "billed_cost": [4.5, 1.0, 50.0]})
    g = estimate_vs_bill(summary, billed)
    assert list(g["pipeline"]) == ["clicks", "orders", "partner"]
    assert g.set_index("pipeline").loc["orders"].tolist() == [3.0, 4.5, 1.5, 1 / 3]
    clicks = g.set_index("pipeline").loc["clicks"]
    assert clicks["billed"] == 0.0 and clicks["gap"] == -2.0 and pd.isna(clicks["gap_pct"])
