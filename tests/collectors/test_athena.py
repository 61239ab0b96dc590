"""The ``athena`` cost source (issue 22): its SQL run for real in DuckDB over Parquet (the real
CUR month, and the real FOCUS sample as Parquet with a Tags map) against pandas sums and the file
importer's own daily rows; its boto3 flow against moto's Athena over HTTP, with the results moto
hands back computed by DuckDB running the very query the collector sent."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta

import boto3
import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import requests
import sqlalchemy as sa

from collectors.athena import RESULT_COLUMNS, daily_sql, rows_to_frame, scan_cost
from collectors.costfiles import KEY_COLUMNS, ImportResult, find_files, stream_all
from collectors.runner import collect
from pipepulse.errors import CollectorError
from store.schema import collector_runs, cost_daily

KEYS = list(KEY_COLUMNS)


@pytest.fixture(scope="module")
def cur_path(shared_dir):
    return shared_dir / "data" / "cost" / "aws-cur-2018-10" / "Oct2018-WorkshopCUR-00001.snappy.parquet"


@pytest.fixture(scope="module")
def focus_parquet(shared_dir, tmp_path_factory):
    """The real FOCUS 1.0 sample as Parquet, typed as AWS writes it (Tags a map<string, string>)."""
    frame = pd.read_csv(shared_dir / "data" / "cost" / "focus-1.0-sample" / "focus_sample.csv", na_values=["NULL"], keep_default_na=False,
                        dtype=str)
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)  # no pandas dtypes
    for name in ("BilledCost", "EffectiveCost", "ConsumedQuantity"):
        table = table.set_column(table.schema.get_field_index(name), name, pc.cast(table.column(name), pa.float64()))
    for name in ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd"):
        table = table.set_column(table.schema.get_field_index(name), name, pc.strptime(table.column(name), "%Y-%m-%d %H:%M:%S", "s"))
    tags = [None if t is None else list(json.loads(t).items()) for t in table.column("Tags").to_pylist()]
    table = table.set_column(table.schema.get_field_index("Tags"), "Tags", pa.array(tags, pa.map_(pa.string(), pa.string())))
    path = tmp_path_factory.mktemp("focus") / "focus.parquet"
    pq.write_table(table, path)
    return path


def run_duckdb(sql: str) -> pd.DataFrame:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # Athena's timestamps are UTC
    return con.execute(sql).fetch_df()


def as_athena_rows(frame: pd.DataFrame) -> list[list[str | None]]:
    """A result as Athena's GetQueryResults gives it: every value as text, NULL as absent."""
    return [[None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in r] for r in frame.itertuples(index=False)]


def imported(path, tag_key: str) -> pd.DataFrame:
    """The file importer's daily rows of the same file."""
    files, _ = find_files([str(path)])
    [plan] = stream_all(files, tag_key=tag_key, s3_client=None, result=ImportResult())
    rows = plan.rows.copy()
    rows["day"] = rows["day"].astype(str)
    return rows


def compare(athena: pd.DataFrame, importer: pd.DataFrame) -> None:
    merged = athena.merge(importer, on=KEYS, how="outer", suffixes=("_sql", "_file"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"].head()
    for col in ("billed_cost", "effective_cost"):
        assert np.allclose(merged[f"{col}_sql"], merged[f"{col}_file"], rtol=1e-9, atol=1e-9), col
    assert np.allclose(merged["usage_quantity_sql"].fillna(0), merged["usage_quantity_file"].fillna(0), rtol=1e-9, atol=1e-9)


def test_cur_sql_in_duckdb_equals_pandas_and_the_file_import(cur_path):
    columns = set(pq.ParquetFile(cur_path).schema_arrow.names)
    sql = daily_sql("cur", f"read_parquet('{cur_path}')", start=date(2018, 10, 1), end=date(2018, 11, 1), tag_key="workload", columns=columns)
    out = run_duckdb(sql)
    assert list(out.columns) == list(RESULT_COLUMNS)
    raw = pd.read_parquet(cur_path, columns=["line_item_unblended_cost", "line_item_usage_start_date"])
    assert raw["line_item_usage_start_date"].dt.strftime("%Y-%m").eq("2018-10").all()
    assert math.isclose(out["billed_cost"].sum(), raw["line_item_unblended_cost"].sum(), rel_tol=1e-12)
    assert out["line_items"].sum() == len(raw)
    # the same daily rows as importing the file, amortised cost (RIFee, DiscountedUsage) included
    assert set(pq.read_table(cur_path, columns=["line_item_line_item_type"]).column(0).to_pylist()) >= {"DiscountedUsage", "RIFee"}
    compare(out.drop(columns="line_items"), imported(cur_path, "workload"))
    # a window excluding the month gives nothing
    empty = run_duckdb(daily_sql("cur", f"read_parquet('{cur_path}')", start=date(2018, 11, 1), end=date(2018, 12, 1), tag_key="workload", columns=columns))
    assert empty.empty


def test_focus_sql_in_duckdb_equals_pandas_and_the_file_import(focus_parquet):
    columns = set(pq.ParquetFile(focus_parquet).schema_arrow.names)
    sql = daily_sql("focus", f"read_parquet('{focus_parquet}')", start=date(2024, 9, 1), end=date(2024, 10, 1), tag_key="application", columns=columns)
    out = run_duckdb(sql)
    raw = pd.read_parquet(focus_parquet, columns=["BilledCost", "ChargePeriodStart"])
    in_window = raw[(raw["ChargePeriodStart"] >= "2024-09-01") & (raw["ChargePeriodStart"] < "2024-10-01")]
    assert len(in_window) == len(raw)
    assert math.isclose(out["billed_cost"].sum(), raw["BilledCost"].sum(), rel_tol=1e-12)
    assert (out["pipeline"] != "").any() and (out["pipeline"] == "").any()  # tagged and untagged spend
    # SubAccountId holds 85-character OCIDs: stored cut to 64 characters, as the importer cuts them
    assert out["account"].str.len().max() > 64
    checked = rows_to_frame(list(out.columns), as_athena_rows(out), where="duckdb")
    checked["day"] = checked["day"].astype(str)
    compare(checked.drop(columns="line_items"), imported(focus_parquet, "application"))


def test_missing_optional_columns_are_nulls_and_a_missing_required_one_is_named(cur_path):
    columns = set(pq.ParquetFile(cur_path).schema_arrow.names)
    assert "savings_plan_savings_plan_effective_cost" not in columns  # a 2018 account without savings plans
    sql = daily_sql("cur", "t", start=date(2018, 10, 1), end=date(2018, 11, 1), tag_key="workload", columns=columns)
    assert "CAST(NULL AS DOUBLE)" in sql and "savings_plan_" not in sql
    with pytest.raises(CollectorError, match="no column billedcost, billingcurrency"):
        daily_sql("focus", "t", start=date(2018, 10, 1), end=date(2018, 11, 1), tag_key="x", columns={"ChargePeriodStart"})


def test_result_rows_are_checked_by_row_and_column():
    header = list(RESULT_COLUMNS)
    good = ["2026-10-01", "AWS", "1", "S3", "us-east-1", "Requests", "", "USD", "1.5", "1.2", None, "3"]
    frame = rows_to_frame(header, [good], where="q")
    assert frame["billed_cost"].tolist() == [1.5] and frame["day"].tolist() == [date(2026, 10, 1)]
    with pytest.raises(CollectorError, match=r"result row 2: billed_cost 'NaN' is not a finite number"):
        rows_to_frame(header, [good, [*good[:8], "NaN", *good[9:]]], where="q")
    with pytest.raises(CollectorError, match="result row 1: day '10/01/2026' is not a date"):
        rows_to_frame(header, [["10/01/2026", *good[1:]]], where="q")


def test_scan_price_rounds_up_to_the_mb_with_a_10_mb_minimum():
    assert scan_cost(0, 5.0) == pytest.approx(10 * 2**20 / 2**40 * 5.0)
    assert scan_cost(2**40, 5.0) == pytest.approx(5.0)
    assert scan_cost(100 * 2**20 + 1, 5.0) == pytest.approx(101 * 2**20 / 2**40 * 5.0)


# ---- the boto3 flow against moto's Athena over HTTP ----------------------------------------------


def _shifted_cur(cur_path, tmp_path, to_month: date):
    """The real CUR month moved to ``to_month`` (October 2018 and 2026 both have 31 days)."""
    table = pq.read_table(cur_path)
    shift = pa.scalar(np.timedelta64((to_month - date(2018, 10, 1)).days, "D").astype("timedelta64[ms]"))
    for name in ("line_item_usage_start_date", "line_item_usage_end_date", "bill_billing_period_start_date", "bill_billing_period_end_date"):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.add(table.column(i), shift))
    path = tmp_path / "cur.parquet"
    pq.write_table(table, path)
    return path, table.schema


def test_collector_runs_the_query_in_moto_athena_and_stores_the_daily_rows(aws, make_settings, engine, now, cur_path, tmp_path):
    month = date(2026, 10, 1)  # within the first pass's window (backfill_months = 3 before `now`, 2026-11-20)
    path, schema = _shifted_cur(cur_path, tmp_path, month)
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": "cur"})
    glue.create_table(DatabaseName="cur", TableInput={"Name": "cur_table", "StorageDescriptor": {
        "Columns": [{"Name": f.name, "Type": "string"} for f in schema], "Location": "s3://cur-bucket/cur/"}})
    # what Athena would answer: DuckDB runs the query the collector will send (checked below)
    start, end = date(2026, 9, 1), date(2026, 12, 1)
    expected_sql = daily_sql("cur", '"cur"."cur_table"', start=start, end=end, tag_key="workload", columns={f.name for f in schema})
    answer = run_duckdb(expected_sql.replace('"cur"."cur_table"', f"read_parquet('{path}')"))
    assert len(answer) > 100
    rows = [{"Data": [{"VarCharValue": c} for c in RESULT_COLUMNS]}]
    rows += [{"Data": [{} if v is None else {"VarCharValue": v} for v in r]} for r in as_athena_rows(answer)]
    requests.post(f"{aws.endpoint}/moto-api/static/athena/query-results", timeout=30, json={
        "region": "us-east-1", "results": [{"rows": rows, "column_info": [{"Name": c, "Type": "varchar"} for c in RESULT_COLUMNS]}],
    }).raise_for_status()

    settings = make_settings('[collectors]\nsources = ["athena"]\n[collectors.athena]\ndatabase = "cur"\ntable = "cur_table"\n'
                             'output_location = "s3://athena-results/pipepulse/"\ntag_key = "workload"\npoll_seconds = 0.05\n')
    [result] = collect(settings, engine, now=now)
    assert result.status == "succeeded", result.error
    athena = boto3.client("athena")
    [qid] = athena.list_query_executions()["QueryExecutionIds"]
    sent = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    assert sent["Query"] == expected_sql  # the rows moto returned are this query's answer
    assert sent["QueryExecutionContext"]["Database"] == "cur" and sent["ResultConfiguration"]["OutputLocation"].startswith("s3://athena-results/pipepulse/")
    assert result.calls["glue:GetTable"] == 1 and result.calls["athena:StartQueryExecution"] == 1
    assert result.calls["athena:GetQueryResults"] == 1 and result.calls["athena:GetQueryExecution"] >= 1

    with engine.connect() as conn:
        stored = pd.read_sql(sa.select(cost_daily).where(cost_daily.c.source == "athena"), conn)
        run = conn.execute(sa.select(collector_runs).where(collector_runs.c.source == "athena")).mappings().one()
    raw = pd.read_parquet(path, columns=["line_item_unblended_cost"])
    assert math.isclose(stored["billed_cost"].sum(), raw["line_item_unblended_cost"].sum(), rel_tol=1e-9)
    assert len(stored) == len(answer)
    assert pd.to_datetime(stored["day"]).dt.strftime("%Y-%m").eq("2026-10").all()
    details = run["details"] if isinstance(run["details"], dict) else json.loads(run["details"])
    assert details["line_items"] == len(raw) and details["data_scanned_bytes"] == 0  # moto scans nothing
    assert details["scan_usd"] == pytest.approx(scan_cost(0, 5.0), abs=1e-6)

    # the next pass reads the current and previous month only (restatements), replacing them
    requests.post(f"{aws.endpoint}/moto-api/static/athena/query-results", timeout=30, json={
        "region": "us-east-1", "results": [{"rows": rows[:1], "column_info": [{"Name": c, "Type": "varchar"} for c in RESULT_COLUMNS]}],
    }).raise_for_status()
    [again] = collect(settings, engine, now=now + timedelta(hours=6))
    assert again.status == "succeeded", again.error
    queries = [athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]["Query"] for q in athena.list_query_executions()["QueryExecutionIds"]]
    assert any("TIMESTAMP '2026-10-01 00:00:00'" in q and "TIMESTAMP '2026-12-01 00:00:00'" in q for q in queries)
    with engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(cost_daily).where(cost_daily.c.source == "athena")).scalar_one()
    assert left == 0  # Athena answered no rows for October-November: what was stored is replaced


def test_a_failed_query_names_the_table_and_what_to_check(aws, make_settings, engine, now):
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": "cur"})
    glue.create_table(DatabaseName="cur", TableInput={"Name": "focus_table", "StorageDescriptor": {
        "Columns": [{"Name": c, "Type": "string"} for c in ("ChargePeriodStart", "BilledCost")]}})
    settings = make_settings('[collectors]\nsources = ["athena"]\n[collectors.athena]\ndatabase = "cur"\ntable = "focus_table"\nformat = "focus"\n')
    [result] = collect(settings, engine, now=now)
    assert result.status == "failed" and "no column billingcurrency" in result.error


def test_result_pages_are_followed_and_the_header_row_dropped_once():
    """GetQueryResults pages (1000 rows each) through NextToken; botocore's Stubber checks each
    request against Athena's API model (moto answers in one page)."""
    from botocore.stub import Stubber

    from collectors.athena import AthenaCollector

    client = boto3.client("athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    meta = {"ColumnInfo": [{"Name": c, "Type": "varchar"} for c in RESULT_COLUMNS]}
    row = ["2026-10-01", "AWS", "1", "S3", "us-east-1", "Requests", "", "USD", "1.5", "1.2", "3", "3"]

    def page(rows):
        return {"Rows": [{"Data": [{"VarCharValue": v} for v in r]} for r in rows], "ResultSetMetadata": meta}

    with Stubber(client) as stub:
        stub.add_response("get_query_results", {"ResultSet": page([list(RESULT_COLUMNS), row]), "NextToken": "t1"},
                          {"QueryExecutionId": "q", "MaxResults": 1000})
        stub.add_response("get_query_results", {"ResultSet": page([row, row])}, {"QueryExecutionId": "q", "MaxResults": 1000, "NextToken": "t1"})
        header, rows, pages = AthenaCollector._results(client, "q")
        stub.assert_no_pending_responses()
    assert pages == 2 and header == list(RESULT_COLUMNS) and len(rows) == 3
