"""Legacy CUR import: the real October 2018 month to the cent, other column sets, CSV headers, rejections."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from jobs.import_costs import import_cost_files
from store.costs import daily_cost

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cur_path(shared_dir):
    return shared_dir / "data" / "cost" / "aws-cur-2018-10" / "Oct2018-WorkshopCUR-00001.snappy.parquet"


@pytest.fixture(scope="module")
def cur_frame(cur_path) -> pd.DataFrame:
    cols = ["line_item_usage_start_date", "line_item_unblended_cost", "line_item_usage_account_id",
            "resource_tags_user_workload", "product_product_name", "line_item_line_item_type"]
    f = pq.read_table(cur_path, columns=cols).to_pandas()
    f["day"] = f["line_item_usage_start_date"].dt.tz_convert("UTC").dt.date
    return f


def _stored(engine, **kw) -> pd.DataFrame:
    with engine.connect() as conn:
        return daily_cost(conn, date(2018, 10, 1), date(2018, 10, 31), source="cur", **kw)


def test_real_month_reconciles_to_the_cent(engine, cur_path, cur_frame):
    result = import_cost_files(engine, [str(cur_path)], tag_key="workload", now=NOW)
    assert result.ok and (result.rows_read, result.rows_rejected) == (119_307, 0)
    total = cur_frame["line_item_unblended_cost"].sum()
    assert round(total, 2) == 4064.48
    assert round(result.months[("cur", "2018-10")]["billed_cost"], 2) == round(total, 2)
    got = _stored(engine)
    assert len(got) == 31
    assert round(got["billed_cost"].sum(), 2) == round(total, 2)
    assert got.set_index("day")["billed_cost"].round(6).to_dict() == cur_frame.groupby("day")["line_item_unblended_cost"].sum().round(6).to_dict()
    by_account = _stored(engine, by="account").groupby("account")["billed_cost"].sum().round(2).to_dict()
    assert by_account == cur_frame.groupby("line_item_usage_account_id")["line_item_unblended_cost"].sum().round(2).to_dict()
    assert len(by_account) == 2  # the two usage accounts
    by_pipe = _stored(engine, by="pipeline").groupby("pipeline")["billed_cost"].sum().round(6).to_dict()
    assert by_pipe == cur_frame.groupby("resource_tags_user_workload")["line_item_unblended_cost"].sum().round(6).to_dict()
    # re-import: nothing new
    again = import_cost_files(engine, [str(cur_path)], tag_key="workload", now=NOW)
    assert again.rows_stored == 0


def test_amortized_cost_follows_line_item_types(engine, cur_path):
    cols = ["line_item_line_item_type", "line_item_unblended_cost", "reservation_effective_cost",
            "reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_recurring_fee",
            "reservation_reservation_a_r_n"]
    f = pq.read_table(cur_path, columns=cols).to_pandas()
    kind = f["line_item_line_item_type"]
    amortized = f["line_item_unblended_cost"].where(~kind.isin(["DiscountedUsage", "RIFee"]), 0.0)
    amortized = amortized.where(~((kind == "Fee") & (f["reservation_reservation_a_r_n"] != "")), 0.0)
    amortized += f["reservation_effective_cost"].where(kind == "DiscountedUsage", 0.0)
    amortized += (f["reservation_unused_amortized_upfront_fee_for_billing_period"] + f["reservation_unused_recurring_fee"]).where(kind == "RIFee", 0.0)
    import_cost_files(engine, [str(cur_path)], tag_key="workload", now=NOW)
    assert round(_stored(engine)["effective_cost"].sum(), 2) == round(amortized.sum(), 2)
    assert set(kind) >= {"DiscountedUsage", "RIFee", "Usage"}  # the month exercises the rule


def test_other_column_sets_still_import(engine, cur_path, cur_frame, tmp_path):
    """A month without product_region, product_product_name and reservation columns, columns reordered."""
    table = pq.read_table(cur_path)
    drop = [c for c in table.column_names if c.startswith("reservation_") or c in ("product_region", "product_product_name")]
    thin = table.drop_columns(drop)
    thin = thin.select(sorted(thin.column_names, reverse=True))
    path = tmp_path / "thin.parquet"
    pq.write_table(thin, path)
    result = import_cost_files(engine, [str(path)], tag_key="workload", now=NOW)
    assert result.ok and result.rows_rejected == 0
    got = _stored(engine, by="service")
    assert round(got["billed_cost"].sum(), 2) == 4064.48
    # service falls back to the product code, region to the availability zone's region
    assert "AmazonEC2" in set(got["service"])
    regions = set(_stored(engine, by="region")["region"])
    azs = set(pc.unique(table.column("line_item_availability_zone")).to_pylist())
    # an AZ ("us-east-1d") loses its letter; some rows carry a region there already ("us-east-2")
    assert regions == {a[:-1] if a[-1].isalpha() else a for a in azs if a} | {""}


def test_csv_headers_and_malformed_rows(engine, cur_path, tmp_path):
    table = pq.read_table(cur_path).slice(0, 200)
    frame = table.to_pandas()
    frame = frame.rename(columns={
        "line_item_usage_start_date": "lineItem/UsageStartDate", "line_item_unblended_cost": "lineItem/UnblendedCost",
        "line_item_usage_account_id": "lineItem/UsageAccountId", "line_item_usage_type": "lineItem/UsageType",
        "resource_tags_user_workload": "resourceTags/user:workload",
    })
    frame["lineItem/UsageStartDate"] = frame["lineItem/UsageStartDate"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame["lineItem/UnblendedCost"] = frame["lineItem/UnblendedCost"].map(repr)
    frame.loc[9, "lineItem/UnblendedCost"] = "n/a"
    frame.loc[19, "lineItem/UsageStartDate"] = "2018-13-45"
    frame.loc[29, "lineItem/UnblendedCost"] = ""
    path = tmp_path / "cur.csv"
    frame.to_csv(path, index=False)
    result = import_cost_files(engine, [str(path)], tag_key="workload", now=NOW)
    assert [str(r) for r in result.rejections] == [
        f"{path}:11: line_item_unblended_cost 'n/a' is not a number",
        f"{path}:21: line_item_usage_start_date '2018-13-45' is not a timestamp",
        f"{path}:31: line_item_unblended_cost is empty",
    ]
    kept = table.to_pandas().drop(index=[9, 19, 29])
    assert round(_stored(engine)["billed_cost"].sum(), 6) == round(kept["line_item_unblended_cost"].sum(), 6)
    by_pipe = _stored(engine, by="pipeline").groupby("pipeline")["billed_cost"].sum().round(6).to_dict()
    assert by_pipe == kept.groupby("resource_tags_user_workload")["line_item_unblended_cost"].sum().round(6).to_dict()


def test_tags_as_parquet_maps(engine, tmp_path):
    """CUR 2.0 keeps tags in a ``resource_tags`` map; FOCUS Parquet may keep Tags as a map."""
    tags = pa.array([[("user_pipeline", "orders")], [("user_team", "x")], None], type=pa.map_(pa.string(), pa.string()))
    starts = pa.array([datetime(2026, 9, 1, 5, tzinfo=UTC)] * 3, type=pa.timestamp("ms", tz="UTC"))
    cur2 = pa.table({"line_item_usage_start_date": starts, "line_item_unblended_cost": [1.25, 2.0, 4.0], "resource_tags": tags})
    pq.write_table(cur2, tmp_path / "cur2.parquet")
    focus_tags = pa.array([[("pipeline", "orders")], [("team", "x")], None], type=pa.map_(pa.string(), pa.string()))
    focus = pa.table({"ChargePeriodStart": starts, "BilledCost": [0.5, 1.0, 2.0], "BillingCurrency": ["USD"] * 3, "Tags": focus_tags})
    pq.write_table(focus, tmp_path / "focus.parquet")
    result = import_cost_files(engine, [str(tmp_path)], tag_key="pipeline", now=NOW)
    assert result.ok and result.rows_rejected == 0
    with engine.connect() as conn:
        cur_rows = daily_cost(conn, date(2026, 9, 1), date(2026, 9, 1), by="pipeline", source="cur")
        focus_rows = daily_cost(conn, date(2026, 9, 1), date(2026, 9, 1), by="pipeline", source="focus")
    assert cur_rows[["pipeline", "billed_cost"]].values.tolist() == [["", 6.0], ["orders", 1.25]]
    assert focus_rows[["pipeline", "billed_cost"]].values.tolist() == [["", 3.0], ["orders", 0.5]]
