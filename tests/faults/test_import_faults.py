"""Cost imports that cannot double count or store nonsense (issue 23): every case checks that the
stored total equals the expected one (0 doubled, 0 lost) and that the message names file/row/field.

Inputs are small slices of the real samples in ../shared/data/cost, so the module runs in seconds.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from jobs.import_costs import import_cost_files
from store.schema import cost_daily

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


# ---- helpers shared by this module (no conftest: tests/faults is shared with other work) ------


@pytest.fixture(scope="module")
def focus_lines(shared_dir) -> list[str]:
    """Header and the first 40 data lines of the real FOCUS 1.0 sample."""
    return (shared_dir / "data" / "cost" / "focus-1.0-sample" / "focus_sample.csv").read_text().splitlines()[:41]


@pytest.fixture(scope="module")
def cur_slice(shared_dir) -> pa.Table:
    """The first 500 line items of the real October 2018 CUR."""
    path = shared_dir / "data" / "cost" / "aws-cur-2018-10" / "Oct2018-WorkshopCUR-00001.snappy.parquet"
    return pq.ParquetFile(path).read_row_group(0).slice(0, 500)


def stored_total(engine, source: str) -> float:
    with engine.connect() as conn:
        return float(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(cost_daily.c.billed_cost), 0.0)).where(cost_daily.c.source == source)).scalar_one())


def focus_total(path) -> float:
    return float(pd.read_csv(path, usecols=["BilledCost"])["BilledCost"].sum())


def write_focus(tmp_path, lines: list[str], name: str = "focus.csv"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def set_field(lines: list[str], line_no: int, column: str, value: str) -> None:
    """Set ``column`` of CSV line ``line_no`` (1 = header) in place."""
    import csv
    import io

    header = next(csv.reader([lines[0]]))
    row = next(csv.reader([lines[line_no - 1]]))
    row[header.index(column)] = value
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="").writerow(row)
    lines[line_no - 1] = buf.getvalue()


# ---- the same file twice, overlapping folders ------------------------------------------------------


def test_the_same_file_given_twice_is_read_once(engine, focus_lines, tmp_path):
    path = write_focus(tmp_path / "exports" / "2024-09", focus_lines)
    expected = focus_total(path)
    # the file, its folder, and a parent folder that contains it again: one file in three sources
    result = import_cost_files(engine, [str(tmp_path / "exports"), str(path), str(path.parent)], tag_key="pipeline", now=NOW)
    assert result.ok and [f[0] for f in result.files] == [str(path)]
    assert result.rows_read == 40
    assert math.isclose(stored_total(engine, "focus"), expected, rel_tol=0, abs_tol=1e-9)
    repeats = [n for n in result.notes if "given more than once" in n]
    assert len(repeats) == 2 and all(n.startswith(f"{path}: ") for n in repeats)


# ---- line items given twice ---------------------------------------------------------------------------


def test_cur_line_items_given_twice_are_counted_once_and_named(engine, cur_slice, tmp_path):
    expected = pa.compute.sum(cur_slice.column("line_item_unblended_cost")).as_py()
    # the whole slice once, then its first 30 line items again in a second file of the month
    pq.write_table(cur_slice, tmp_path / "part-1.parquet")
    pq.write_table(cur_slice.slice(0, 30), tmp_path / "part-2.parquet")
    result = import_cost_files(engine, [str(tmp_path)], tag_key="workload", now=NOW)
    assert result.ok and result.rows_read == 530 and result.duplicates == 30
    assert math.isclose(stored_total(engine, "cur"), expected, abs_tol=1e-9)
    first_id = cur_slice.column("identity_line_item_id")[0].as_py()
    assert result.notes[0] == f"{tmp_path / 'part-2.parquet'} row 1: repeats line item {first_id!r} of {tmp_path / 'part-1.parquet'} row 1: counted once"
    assert result.notes[5] == "... and 25 more repeated line items, each counted once"


def test_cur_line_items_repeated_inside_one_file(engine, cur_slice, tmp_path):
    expected = pa.compute.sum(cur_slice.column("line_item_unblended_cost")).as_py()
    path = tmp_path / "doubled.parquet"
    pq.write_table(pa.concat_tables([cur_slice, cur_slice]), path)
    result = import_cost_files(engine, [str(path)], tag_key="workload", now=NOW)
    assert result.duplicates == 500
    assert math.isclose(stored_total(engine, "cur"), expected, abs_tol=1e-9)


# ---- amounts that are not finite, or absurd ------------------------------------------------------------


@pytest.mark.parametrize("value", ["1e400", "inf", "-inf", "nan", "-1e12"])
def test_non_finite_and_absurd_amounts_are_refused_with_the_line(engine, focus_lines, tmp_path, value):
    lines = list(focus_lines)
    good = write_focus(tmp_path, lines, "good.csv")
    lost = float(pd.read_csv(good, usecols=["BilledCost"])["BilledCost"].iloc[6])  # line 8's
    set_field(lines, 8, "BilledCost", value)
    path = write_focus(tmp_path, lines, "bad.csv")
    result = import_cost_files(engine, [str(path)], tag_key="pipeline", now=NOW)
    assert result.rows_rejected == 1 and result.rejections[0].line == 8
    message = str(result.rejections[0])
    assert message.startswith(f"{path}:8: BilledCost ")
    assert ("is beyond +-1e+09" in message) if value == "-1e12" else (f"BilledCost {value!r} is not a finite number" in message)
    stored = stored_total(engine, "focus")
    assert math.isfinite(stored) and math.isclose(stored, focus_total(good) - lost, abs_tol=1e-9)


def test_non_finite_amount_in_a_typed_parquet_column(engine, cur_slice, tmp_path):
    costs = cur_slice.column("line_item_unblended_cost").to_pylist()
    expected = sum(costs) - costs[3]
    costs[3] = float("inf")
    table = cur_slice.set_column(cur_slice.column_names.index("line_item_unblended_cost"), "line_item_unblended_cost", pa.array(costs))
    path = tmp_path / "inf.parquet"
    pq.write_table(table, path)
    result = import_cost_files(engine, [str(path)], tag_key="workload", now=NOW)
    assert [str(r) for r in result.rejections] == [f"{path} row 4: line_item_unblended_cost 'inf' is not a finite number: fix the export (one such value makes every total inf or nan)"]
    assert math.isclose(stored_total(engine, "cur"), expected, abs_tol=1e-9)


# ---- currencies ---------------------------------------------------------------------------------------


def test_mixed_currencies_are_kept_apart(engine, focus_lines, tmp_path):
    lines = list(focus_lines)
    # the same charges again, billed in EUR: the same key but for the currency
    eur = [line.replace(',"USD",', ',"EUR",', 1) for line in lines[1:]]
    assert all(',"EUR",' in line for line in eur)
    path = write_focus(tmp_path, [*lines, *eur])
    usd = focus_total(write_focus(tmp_path, lines, "usd.csv"))
    result = import_cost_files(engine, [str(path)], tag_key="pipeline", now=NOW)
    assert result.ok and result.rows_rejected == 0
    with engine.connect() as conn:
        per = dict(conn.execute(sa.select(cost_daily.c.currency, sa.func.sum(cost_daily.c.billed_cost)).group_by(cost_daily.c.currency)).all())
    assert set(per) == {"USD", "EUR"}
    assert math.isclose(per["USD"], usd, abs_tol=1e-9) and math.isclose(per["EUR"], usd, abs_tol=1e-9)
    assert {c for (_, _, c) in result.currencies} == {"USD", "EUR"}
    # importing again changes nothing
    assert import_cost_files(engine, [str(path)], tag_key="pipeline", now=NOW).rows_stored == 0


def test_focus_without_billing_currency_is_an_error_that_says_so(engine, focus_lines, tmp_path):
    frame = pd.read_csv(write_focus(tmp_path, focus_lines, "full.csv"), dtype=str, keep_default_na=False)
    path = tmp_path / "no-currency.csv"
    frame.drop(columns=["BillingCurrency"]).to_csv(path, index=False)
    result = import_cost_files(engine, [str(path)], tag_key="pipeline", now=NOW)
    assert not result.ok and result.rows_stored == 0
    assert result.unreadable == [(str(path), "no BillingCurrency column: FOCUS requires it (the currency of BilledCost); "
                                              "re-export with it, or add it with the currency of every row")]
    assert stored_total(engine, "focus") == 0.0


def test_binary_column_in_a_cur_parquet_is_a_clear_error(engine, cur_slice, tmp_path):
    accounts = [v.encode() for v in cur_slice.column("line_item_usage_account_id").to_pylist()]
    accounts[6] = b"\xff\xfe\x00garbage"
    table = cur_slice.set_column(cur_slice.column_names.index("line_item_usage_account_id"), "line_item_usage_account_id", pa.array(accounts, pa.binary()))
    path = tmp_path / "binary.parquet"
    pq.write_table(table, path)
    result = import_cost_files(engine, [str(path)], tag_key="workload", now=NOW)
    assert result.unreadable == [(str(path), "row 7: column line_item_usage_account_id holds binary data that is not UTF-8 text; export it as a string column")]
    assert stored_total(engine, "cur") == 0.0
    # a binary column that is UTF-8 text imports as text
    accounts[6] = accounts[5]
    table = table.set_column(table.column_names.index("line_item_usage_account_id"), "line_item_usage_account_id", pa.array(accounts, pa.binary()))
    pq.write_table(table, path)
    result = import_cost_files(engine, [str(path)], tag_key="workload", now=NOW)
    assert result.ok
    assert math.isclose(stored_total(engine, "cur"), pa.compute.sum(cur_slice.column("line_item_unblended_cost")).as_py(), abs_tol=1e-9)


def test_the_cost_key_migration_keeps_rows_and_refuses_a_lossy_downgrade(engine):
    from alembic import command

    from store.db import _alembic_config, upgrade

    with engine.begin() as conn:
        for cur in ("USD", "EUR"):
            conn.execute(cost_daily.insert().values(source="cur", day=date(2026, 11, 1), provider="AWS", account="1", service="S3", region="",
                                                    usage_type="", pipeline="", billed_cost=1.5, effective_cost=1.5, currency=cur, updated_at=NOW))
    with pytest.raises(RuntimeError, match="more than one currency"):
        command.downgrade(_alembic_config(engine), "0003_i19")
    upgrade(engine)
    assert stored_total(engine, "cur") == 3.0


def test_overlapping_s3_prefixes_read_each_object_once(engine, focus_lines, aws, make_settings, tmp_path):
    import boto3

    from collectors.runner import collect

    body = ("\n".join(focus_lines) + "\n").encode()
    expected = focus_total(write_focus(tmp_path, focus_lines))
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="exports")
    key = "focus/demo/data/BILLING_PERIOD=2024-09/demo-00001.csv"
    s3.put_object(Bucket="exports", Key=key, Body=body)
    # `costs import` with a prefix and a prefix inside it
    result = import_cost_files(engine, ["s3://exports/focus/", "s3://exports/focus/demo/data/"], tag_key="pipeline", now=NOW, s3_client=s3)
    assert result.ok and result.rows_read == 40
    assert result.notes[0] == f"s3://exports/{key}: given more than once (a repeated path, or overlapping folders or prefixes): read once"
    assert math.isclose(stored_total(engine, "focus"), expected, abs_tol=1e-9)
    # the focus collector configured with the same overlapping prefixes
    settings = make_settings('[collectors]\nsources = ["focus"]\n[collectors.focus]\npaths = ["s3://exports/focus/", "s3://exports/focus/demo/"]\n')
    [run] = collect(settings, engine, now=NOW)
    assert run.status == "succeeded", run.error
    assert run.calls == {"s3:ListObjectsV2": 2, "s3:GetObject": 1}
    assert math.isclose(stored_total(engine, "focus"), expected, abs_tol=1e-9)
