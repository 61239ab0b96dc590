"""FOCUS 1.2 (AWS Data Exports' FOCUS_1_2_AWS) and CUR 2.0 files built to their specifications:
detected from the file, imported, totals equal to a pandas sum of the same file.

Column lists: FOCUS from the FOCUS_Spec repository (tag v1.2, specification/columns/*.md); CUR
2.0 from AWS's Data Exports table dictionary (fixed snake_case columns; resource_tags, product
and cost_category as map<string, string>, discount as map<string, double>).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from collectors.focus import FOCUS_1_0, NEW_IN_1_2
from jobs.import_costs import import_cost_files
from store.costs import daily_cost

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
START = datetime(2026, 10, 1, tzinfo=UTC)


def focus_1_2(n: int, seed: int = 7) -> pa.Table:
    """``n`` rows with every FOCUS 1.2 column (typed as the spec says), PricingCurrency EUR
    against BillingCurrency USD, and one column that is in no FOCUS version."""
    rng = np.random.default_rng(seed)
    start = [START + timedelta(hours=int(h)) for h in rng.integers(0, 31 * 24, n)]
    billed = np.round(rng.gamma(1.2, 3.0, n), 6)
    cols: dict[str, object] = {c: pa.array([""] * n) for c in sorted(FOCUS_1_0 | NEW_IN_1_2)}
    decimals = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ConsumedQuantity", "PricingQuantity",
                "ListUnitPrice", "ContractedUnitPrice", "CommitmentDiscountQuantity", "PricingCurrencyEffectiveCost",
                "PricingCurrencyListUnitPrice", "PricingCurrencyContractedUnitPrice")
    for c in decimals:
        cols[c] = pa.array(np.round(rng.gamma(1.0, 2.0, n), 6))
    cols["BilledCost"] = pa.array(billed)
    cols["EffectiveCost"] = pa.array(np.round(billed * 0.8, 6))
    cols["PricingCurrencyEffectiveCost"] = pa.array(np.round(billed * 0.8 * 0.93, 6))  # in EUR: not summed
    for c in ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd"):
        cols[c] = pa.array(start if c == "ChargePeriodStart" else [s + timedelta(hours=1) for s in start] if c == "ChargePeriodEnd"
                           else [START] * n if c == "BillingPeriodStart" else [START + timedelta(days=31)] * n, pa.timestamp("ms", "UTC"))
    cols["BillingCurrency"] = pa.array(["USD"] * n)
    cols["PricingCurrency"] = pa.array(["EUR"] * n)
    cols["ProviderName"] = pa.array(["AWS"] * n)
    cols["ServiceName"] = pa.array(rng.choice(["Amazon S3", "AWS Glue", "Amazon EC2"], n))
    cols["ServiceSubcategory"] = pa.array(["Storage"] * n)
    cols["RegionId"] = pa.array(rng.choice(["us-east-1", "eu-west-1"], n))
    cols["SubAccountId"] = pa.array(rng.choice(["111111111111", "222222222222"], n))
    cols["BillingAccountId"] = pa.array(["999999999999"] * n)
    cols["InvoiceId"] = pa.array(["INV-1"] * n)
    cols["SkuMeter"] = pa.array(["Requests"] * n)
    cols["CapacityReservationStatus"] = pa.array([""] * n)
    cols["ChargeCategory"] = pa.array(["Usage"] * n)
    cols["SkuPriceDetails"] = pa.array(['{"CoreCount": 2}'] * n)
    cols["Tags"] = pa.array([json.dumps({"pipeline": p}) for p in rng.choice(["orders", "clicks", "billing"], n)])
    cols["x_ServiceCode"] = pa.array(["AmazonS3"] * n)  # AWS's own custom column
    cols["SomethingNew"] = pa.array(["?"] * n)  # in no FOCUS version: ignored with a note
    return pa.table(cols)


def test_focus_1_2_parquet_and_csv_import_to_the_pandas_total(engine, tmp_path):
    table = focus_1_2(2000)
    pq.write_table(table, tmp_path / "focus12.parquet")
    frame = table.to_pandas()
    expected = frame["BilledCost"].sum()
    result = import_cost_files(engine, [str(tmp_path / "focus12.parquet")], tag_key="pipeline", now=NOW)
    assert result.ok and result.rows_rejected == 0
    assert result.versions == {str(tmp_path / "focus12.parquet"): "FOCUS 1.2"}
    assert result.notes == [f"{tmp_path / 'focus12.parquet'}: ignored 1 column(s) that are not FOCUS 1.0-1.2: SomethingNew"]
    with engine.connect() as conn:
        got = daily_cost(conn, START.date(), (START + timedelta(days=31)).date(), source="focus", by="pipeline")
    assert math.isclose(got["billed_cost"].sum(), expected, abs_tol=1e-6)
    assert math.isclose(got["effective_cost"].sum(), frame["EffectiveCost"].sum(), abs_tol=1e-6)
    want = frame.assign(pipeline=frame["Tags"].map(lambda t: json.loads(t)["pipeline"])).groupby("pipeline")["BilledCost"].sum().round(6).to_dict()
    assert got.groupby("pipeline")["billed_cost"].sum().round(6).to_dict() == want
    assert set(got["currency"]) == {"USD"}
    # the same rows as CSV (what Data Exports writes gzipped): the same total
    csv_path = tmp_path / "csv" / "focus12.csv"
    csv_path.parent.mkdir()
    frame.to_csv(csv_path, index=False)
    again = import_cost_files(engine, [str(csv_path)], tag_key="pipeline", now=NOW)
    assert again.ok and again.versions[str(csv_path)] == "FOCUS 1.2" and again.rows_stored == 0


def cur_2_0(n: int, seed: int = 11) -> pa.Table:
    """``n`` line items in CUR 2.0's fixed schema (a subset of its columns, with all four maps)."""
    rng = np.random.default_rng(seed)
    start = [START + timedelta(hours=int(h)) for h in rng.integers(0, 31 * 24, n)]
    smap = pa.map_(pa.string(), pa.string())
    products = [[("product_name", p), ("servicename", p)] for p in rng.choice(["Amazon Simple Storage Service", "AWS Glue"], n)]
    tags = [[("user_pipeline", p)] if p else [] for p in rng.choice(["orders", "clicks", ""], n)]
    ts = pa.timestamp("ms", "UTC")
    return pa.table({
        "bill_bill_type": ["Anniversary"] * n,
        "bill_billing_period_start_date": pa.array([START] * n, ts),
        "bill_payer_account_id": ["999999999999"] * n,
        "bill_payer_account_name": ["payer"] * n,
        "identity_line_item_id": [f"id{i:08d}" for i in range(n)],
        "identity_time_interval": [f"{s:%Y-%m-%dT%H}:00:00Z/{s + timedelta(hours=1):%Y-%m-%dT%H}:00:00Z" for s in start],
        "line_item_usage_account_id": rng.choice(["111111111111", "222222222222"], n),
        "line_item_usage_account_name": ["dev"] * n,
        "line_item_line_item_type": ["Usage"] * n,
        "line_item_usage_start_date": pa.array(start, ts),
        "line_item_product_code": ["AmazonS3"] * n,
        "line_item_usage_type": rng.choice(["TimedStorage-ByteHrs", "Requests-Tier1"], n),
        "line_item_usage_amount": np.round(rng.gamma(1.0, 10.0, n), 6),
        "line_item_currency_code": ["USD"] * n,
        "line_item_unblended_cost": np.round(rng.gamma(1.2, 2.0, n), 8),
        "product_region_code": rng.choice(["us-east-1", "eu-west-1"], n),
        "product": pa.array(products, smap),
        "resource_tags": pa.array(tags, smap),
        "cost_category": pa.array([[("team", "data")]] * n, smap),
        "discount": pa.array([[("bundled_discount", 0.0)]] * n, pa.map_(pa.string(), pa.float64())),
    })


def test_cur_2_0_imports_to_the_pandas_total_with_maps(engine, tmp_path):
    table = cur_2_0(3000)
    path = tmp_path / "cur2.parquet"
    pq.write_table(table, path)
    frame = table.select(["line_item_usage_start_date", "line_item_unblended_cost", "product_region_code"]).to_pandas()
    frame["service"] = [dict(p)["product_name"] for p in table.column("product").to_pylist()]
    frame["pipeline"] = [dict(t).get("user_pipeline", "") for t in table.column("resource_tags").to_pylist()]
    result = import_cost_files(engine, [str(path)], tag_key="pipeline", now=NOW)
    assert result.ok and result.rows_rejected == 0 and result.duplicates == 0
    assert result.versions == {str(path): "CUR 2.0"}
    with engine.connect() as conn:
        end = (START + timedelta(days=31)).date()
        by_service = daily_cost(conn, START.date(), end, source="cur", by="service").groupby("service")["billed_cost"].sum().round(6).to_dict()
        by_pipeline = daily_cost(conn, START.date(), end, source="cur", by="pipeline").groupby("pipeline")["billed_cost"].sum().round(6).to_dict()
        by_region = daily_cost(conn, START.date(), end, source="cur", by="region").groupby("region")["billed_cost"].sum().round(6).to_dict()
    assert by_service == frame.groupby("service")["line_item_unblended_cost"].sum().round(6).to_dict()
    assert by_pipeline == frame.groupby("pipeline")["line_item_unblended_cost"].sum().round(6).to_dict()
    assert by_region == frame.groupby("product_region_code")["line_item_unblended_cost"].sum().round(6).to_dict()
    assert math.isclose(sum(by_service.values()), float(pd.Series(frame["line_item_unblended_cost"]).sum()), abs_tol=1e-6)
