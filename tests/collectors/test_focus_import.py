"""FOCUS 1.0 import: totals to the cent against the shared sample, rejections, re-import, restatement."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, date, datetime, timedelta

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from collectors.runner import collect
from jobs.import_costs import import_cost_files
from store.costs import cost_periods, daily_cost
from store.schema import cost_daily

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def sample(shared_dir):
    return shared_dir / "data" / "cost" / "focus-1.0-sample" / "focus_sample.csv"


def _expected(path) -> pd.DataFrame:
    """The file read independently: pandas, NULL as missing."""
    f = pd.read_csv(path, na_values=["NULL"], keep_default_na=False, dtype=str)
    f["BilledCost"] = pd.to_numeric(f["BilledCost"])
    f["EffectiveCost"] = pd.to_numeric(f["EffectiveCost"])
    f["day"] = pd.to_datetime(f["ChargePeriodStart"]).dt.date
    return f


def _stored(engine, **kw) -> pd.DataFrame:
    with engine.connect() as conn:
        return daily_cost(conn, date(2000, 1, 1), date(2100, 1, 1), source="focus", **kw)


def test_sample_totals_reconcile_to_the_cent(engine, sample):
    want = _expected(sample)
    result = import_cost_files(engine, [str(sample)], tag_key="application", now=NOW)
    assert result.ok and (result.rows_read, result.rows_rejected) == (1000, 0)
    assert round(want["BilledCost"].sum(), 2) == 20.52
    got = _stored(engine)
    assert round(got["billed_cost"].sum(), 2) == round(want["BilledCost"].sum(), 2)
    assert round(got["effective_cost"].sum(), 2) == round(want["EffectiveCost"].sum(), 2)
    # per provider (AWS, Microsoft, Oracle) and per day, to the cent
    by_provider = _stored(engine, by="provider").groupby("provider")["billed_cost"].sum().round(2).to_dict()
    assert by_provider == want.groupby("ProviderName")["BilledCost"].sum().round(2).to_dict()
    assert set(by_provider) == {"AWS", "Microsoft", "Oracle"}
    per_day = got.set_index("day")["billed_cost"].round(6).to_dict()
    assert per_day == want.groupby("day")["BilledCost"].sum().round(6).to_dict()
    # per billing month as the file says (one Oracle row belongs to October's bill)
    assert {m: round(t["billed_cost"], 2) for (_k, m), t in result.months.items()} == {
        m[:7]: round(v, 2) for m, v in want.groupby("BillingPeriodStart")["BilledCost"].sum().items()}
    # pipeline = the tag named by the key; untagged rows ('NULL' Tags) are ''
    tags = want["Tags"].map(lambda t: json.loads(t).get("application", "") if isinstance(t, str) else "")
    by_pipe = _stored(engine, by="pipeline").groupby("pipeline")["billed_cost"].sum().round(6).to_dict()
    assert by_pipe == want.groupby(tags)["BilledCost"].sum().round(6).to_dict()
    with engine.connect() as conn:
        months = cost_periods(conn, "focus")
    assert months["month"].tolist() == ["2024-09"]


def test_reimport_stores_nothing_new(engine, sample):
    first = import_cost_files(engine, [str(sample)], tag_key="application", now=NOW)
    assert first.rows_stored == first.daily_rows > 0
    with engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.max(cost_daily.c.updated_at), sa.func.count()).select_from(cost_daily)).one()
    again = import_cost_files(engine, [str(sample)], tag_key="application", now=NOW + timedelta(hours=1))
    assert (again.rows_stored, again.daily_rows) == (0, first.daily_rows)
    with engine.connect() as conn:
        after = conn.execute(sa.select(sa.func.max(cost_daily.c.updated_at), sa.func.count()).select_from(cost_daily)).one()
    assert after == before


def test_malformed_rows_rejected_with_line_numbers(engine, sample, tmp_path):
    rows = list(csv.reader(sample.read_text().splitlines()))
    assert len(rows) == 1001  # one line per row: line n is rows[n - 1]
    col = {name: i for i, name in enumerate(rows[0])}

    def corrupt(line_no: int, column: str, value: str) -> None:
        rows[line_no - 1][col[column]] = value

    bad_cost, bad_day, bad_tags, bad_currency, short = 5, 12, 22, 32, 42
    corrupt(bad_cost, "BilledCost", "12;5")
    corrupt(bad_day, "ChargePeriodStart", "yesterday")
    corrupt(bad_tags, "Tags", "{not json")
    corrupt(bad_currency, "BillingCurrency", "NULL")
    rows[short - 1] = rows[short - 1][:5]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    lines = out.getvalue().splitlines()
    path = tmp_path / "focus_bad.csv"
    path.write_text("\n".join(lines) + "\n")

    result = import_cost_files(engine, [str(path)], tag_key="application", now=NOW)
    assert result.ok
    assert [str(r) for r in result.rejections] == sorted([
        f"{path}:{bad_cost}: BilledCost '12;5' is not a number",
        f"{path}:{bad_day}: ChargePeriodStart 'yesterday' is not a timestamp",
        f"{path}:{bad_tags}: Tags '{{not json' is not a JSON object",
        f"{path}:{bad_currency}: BillingCurrency is empty",
        f"{path}:{short}: expected 44 fields, found 5",
    ], key=lambda s: int(s.split(":")[1]))
    assert (result.rows_read, result.rows_rejected) == (1000, 5)
    # the good rows are stored, to the cent
    want = _expected(sample)
    kept = want.drop(index=[n - 2 for n in (bad_cost, bad_day, bad_tags, bad_currency, short)])
    assert round(_stored(engine)["billed_cost"].sum(), 2) == round(kept["BilledCost"].sum(), 2)
    assert round(_stored(engine)["billed_cost"].sum(), 6) == round(kept["BilledCost"].sum(), 6)


def test_restated_file_replaces_its_month(engine, sample, tmp_path):
    import_cost_files(engine, [str(sample)], tag_key="application", now=NOW)
    f = pd.read_csv(sample, keep_default_na=False, dtype=str)
    # another month from another export stays untouched
    other = f.head(3).copy()
    other["ChargePeriodStart"] = "2024-08-05 00:00:00"
    other["BillingPeriodStart"] = "2024-08-01 00:00:00"
    other_path = tmp_path / "aug.csv"
    other.to_csv(other_path, index=False)
    import_cost_files(engine, [str(other_path)], tag_key="application", now=NOW)
    # the restated September: AWS rows doubled, Microsoft rows gone
    restated = f[f["ProviderName"] != "Microsoft"].copy()
    aws = restated["ProviderName"] == "AWS"
    restated.loc[aws, "BilledCost"] = (pd.to_numeric(restated.loc[aws, "BilledCost"]) * 2).map(repr)
    path = tmp_path / "focus_restated.csv"
    restated.to_csv(path, index=False)
    result = import_cost_files(engine, [str(path)], tag_key="application", now=NOW + timedelta(days=1))
    assert result.rows_stored > 0
    by_provider = _stored(engine, by="provider")
    sept = by_provider[by_provider["day"] >= date(2024, 9, 1)].groupby("provider")["billed_cost"].sum().round(6).to_dict()
    want = restated.assign(b=pd.to_numeric(restated["BilledCost"])).groupby("ProviderName")["b"].sum().round(6).to_dict()
    assert sept == want and "Microsoft" not in sept
    aug = by_provider[by_provider["day"] < date(2024, 9, 1)]
    assert round(aug["billed_cost"].sum(), 6) == round(pd.to_numeric(other["BilledCost"]).sum(), 6)


def test_gzip_and_parquet_give_the_same_rows(engine, sample, tmp_path):
    gz = tmp_path / "part-00001.csv.gz"
    gz.write_bytes(gzip.compress(sample.read_bytes()))
    frame = pd.read_csv(sample, na_values=["NULL"], keep_default_na=False)
    for c in ("BillingPeriodStart", "ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodEnd"):
        frame[c] = pd.to_datetime(frame[c]).dt.tz_localize("UTC")
    for c in ("SubAccountId", "BillingAccountId"):
        frame[c] = frame[c].astype(str)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "sample.parquet")
    result_gz = import_cost_files(engine, [str(gz)], tag_key="application", now=NOW)
    from_gz = _stored(engine, by="service")
    with engine.begin() as conn:
        conn.execute(cost_daily.delete())
    result_pq = import_cost_files(engine, [str(tmp_path / "sample.parquet")], tag_key="application", now=NOW)
    from_pq = _stored(engine, by="service")
    assert (result_gz.rows_read, result_pq.rows_read) == (1000, 1000)
    pd.testing.assert_frame_equal(from_gz, from_pq)
    assert round(from_pq["billed_cost"].sum(), 2) == 20.52


def test_unreadable_file_is_reported_and_the_rest_imported(engine, sample, tmp_path):
    (tmp_path / "broken.csv.gz").write_bytes(b"not gzip at all")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    import shutil

    shutil.copy(sample, tmp_path / "good.csv")
    result = import_cost_files(engine, [str(tmp_path)], tag_key="application", now=NOW)
    assert not result.ok
    reasons = dict(result.unreadable)
    assert reasons[str(tmp_path / "other.csv")].startswith("neither FOCUS")
    assert reasons[str(tmp_path / "broken.csv.gz")].startswith("not a readable gzip file")
    assert round(_stored(engine)["billed_cost"].sum(), 2) == 20.52


def test_s3_export_prefix_and_collector_pass(engine, sample, aws, make_settings):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="exports")
    key = "focus/pipepulse-demo/data/BILLING_PERIOD=2024-09/pipepulse-demo-00001.csv.gz"
    s3.put_object(Bucket="exports", Key=key, Body=gzip.compress(sample.read_bytes()))
    settings = make_settings(
        '[pipepulse]\ncost_tag_key = "application"\n[collectors]\nsources = ["focus"]\n'
        '[collectors.focus]\npaths = ["s3://exports/focus/pipepulse-demo/data/"]\n'
    )
    [first] = collect(settings, engine, now=NOW)
    assert first.status == "succeeded", first.error
    assert first.calls == {"s3:ListObjectsV2": 1, "s3:GetObject": 1}
    assert round(_stored(engine)["billed_cost"].sum(), 2) == 20.52
    [second] = collect(settings, engine, now=NOW + timedelta(hours=6))
    assert (second.rows_written, second.calls) == (0, {"s3:ListObjectsV2": 1})
    # the export is rewritten as the month goes on: the period is read and replaced again
    f = pd.read_csv(sample, keep_default_na=False, dtype=str).head(10)
    s3.put_object(Bucket="exports", Key=key, Body=gzip.compress(f.to_csv(index=False).encode()))
    [third] = collect(settings, engine, now=NOW + timedelta(hours=12))
    assert third.calls == {"s3:ListObjectsV2": 1, "s3:GetObject": 1}
    assert round(_stored(engine)["billed_cost"].sum(), 6) == round(pd.to_numeric(f["BilledCost"]).sum(), 6)


def test_export_collector_unknown_region_and_no_credentials(engine, make_settings, monkeypatch):
    toml = '[collectors]\nsources = ["focus"]\n[collectors.focus]\npaths = ["s3://exports/focus/"]\n'
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    [result] = collect(make_settings(toml, PIPEPULSE_AWS_REGION="mars-north-9"), engine, now=NOW)
    assert result.status == "failed"
    assert result.error == "focus: unknown AWS region 'mars-north-9' for s3; set [aws] region (e.g. us-east-1)"


def test_export_collector_needs_paths(engine, make_settings):
    [result] = collect(make_settings('[collectors]\nsources = ["focus"]\n'), engine, now=NOW)
    assert result.status == "failed"
    assert "[collectors.focus] paths: expected a list of s3://bucket/prefix or folder paths, got None" in result.error


def test_cli_reports_a_missing_bucket(aws, db_url, tmp_path, monkeypatch, capsys):
    from cli.main import main

    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    assert main(["costs", "import", "s3://no-such-bucket/focus/"]) == 1
    assert capsys.readouterr().err.strip() == (
        "pipepulse: error: s3://no-such-bucket/focus/: cannot list: NoSuchBucket: The specified bucket does not exist")
