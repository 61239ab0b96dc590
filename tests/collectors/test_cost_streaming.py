"""Cost imports read files in batches and sum them as they stream (issue 22): the result must not
depend on where the batches break. Each case reads the same files with tiny batches (7 rows;
CSV blocks of 2 KB) and with one batch, and compares everything the import reports."""

from __future__ import annotations

import gzip
import math

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from collectors import costfiles
from collectors.costfiles import ImportResult, SeenIds, find_files, stream_all


@pytest.fixture(scope="module")
def cur_slice(shared_dir) -> pa.Table:
    """300 line items of the real October 2018 CUR."""
    path = shared_dir / "data" / "cost" / "aws-cur-2018-10" / "Oct2018-WorkshopCUR-00001.snappy.parquet"
    return pq.ParquetFile(path).read_row_group(0).slice(0, 300)


def run(paths, batch_rows: int) -> tuple[ImportResult, list]:
    result = ImportResult()
    files, problems = find_files([str(p) for p in paths])
    assert not problems
    plans = stream_all(files, tag_key="workload", s3_client=None, result=result, batch_rows=batch_rows)
    return result, plans


def same(small: tuple[ImportResult, list], whole: tuple[ImportResult, list]) -> None:
    (r1, p1), (r2, p2) = small, whole
    assert [str(r) for r in r1.rejections] == [str(r) for r in r2.rejections]
    assert (r1.rows_read, r1.rows_rejected, r1.duplicates, r1.daily_rows) == (r2.rows_read, r2.rows_rejected, r2.duplicates, r2.daily_rows)
    assert r1.notes == r2.notes and r1.files == r2.files and r1.unreadable == r2.unreadable
    assert len(p1) == len(p2)
    for a, b in zip(p1, p2, strict=True):
        pd.testing.assert_frame_equal(a.rows, b.rows, check_exact=False, rtol=1e-12, atol=1e-9)


def test_parquet_in_tiny_batches_with_repeats_across_batches_and_files(cur_slice, tmp_path):
    # part 1 repeats 40 of its own line items 100 rows later (other batches); part 2 repeats 25 of part 1
    pq.write_table(pa.concat_tables([cur_slice, cur_slice.slice(0, 40)]), tmp_path / "part-1.parquet", row_group_size=50)
    pq.write_table(cur_slice.slice(100, 25), tmp_path / "part-2.parquet")
    small, whole = run([tmp_path], 7), run([tmp_path], 1_000_000)
    same(small, whole)
    result, [plan] = small
    assert result.duplicates == 65 and result.rows_read == 365
    assert math.isclose(plan.rows["billed_cost"].sum(), pc.sum(cur_slice.column("line_item_unblended_cost")).as_py(), abs_tol=1e-9)
    first_id = cur_slice.column("identity_line_item_id")[0].as_py()
    assert result.notes[0] == f"{tmp_path / 'part-1.parquet'} row 301: repeats line item {first_id!r} of {tmp_path / 'part-1.parquet'} row 1: counted once"


def test_csv_gz_in_small_blocks_keeps_line_numbers_of_bad_rows(cur_slice, tmp_path, monkeypatch):
    frame = cur_slice.select(["identity_line_item_id", "identity_time_interval", "line_item_usage_start_date",
                              "line_item_unblended_cost", "product_product_name", "line_item_usage_type"]).to_pandas()
    frame.columns = ["identity/LineItemId", "identity/TimeInterval", "lineItem/UsageStartDate", "lineItem/UnblendedCost",
                     "product/ProductName", "lineItem/UsageType"]
    text = frame.to_csv(index=False).splitlines()
    text[57] = text[57].rsplit(",", 1)[0]  # line 58: a field short
    text[130] = text[130].replace(text[130].split(",")[3], "twelve", 1)  # line 131: cost not a number
    text[250] = text[250] + ",extra"  # line 251: a field too many
    path = tmp_path / "cur.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(text) + "\n").encode()))
    whole = run([path], 1_000_000)
    monkeypatch.setattr(costfiles, "CSV_BLOCK_BYTES", 2048)
    small = run([path], 7)
    same(small, whole)
    result = small[0]
    assert [r.line for r in result.rejections] == [58, 131, 251]
    assert "'twelve' is not a number" in str(result.rejections[1])
    assert result.rows_read == 300 and result.rows_rejected == 3


def test_a_file_unreadable_half_way_adds_nothing(cur_slice, tmp_path):
    pq.write_table(cur_slice, tmp_path / "a-good.parquet")
    bad = cur_slice.set_column(cur_slice.schema.get_field_index("product_product_name"), "product_product_name",
                               pa.array([b"ok"] * 200 + [b"\xff\xfe"] * 100, pa.binary()))
    pq.write_table(bad, tmp_path / "b-bad.parquet", row_group_size=50)
    result, [plan] = run([tmp_path], 7)
    assert result.unreadable == [(str(tmp_path / "b-bad.parquet"), "row 201: column product_product_name holds binary data that is not UTF-8 text; export it as a string column")]
    assert result.rows_read == 300 and result.duplicates == 0  # b's line items repeat a's, but b is dropped whole
    assert math.isclose(plan.rows["billed_cost"].sum(), pc.sum(cur_slice.column("line_item_unblended_cost")).as_py(), abs_tol=1e-9)


def test_seen_ids_find_repeats_across_merged_runs():
    seen = SeenIds()
    for start in range(0, 10_000, 1_000):  # ten runs, merged as they grow
        ids = pa.array([f"id-{i}" for i in range(start, start + 1_000)])
        h1, h2 = SeenIds.hashes(ids)
        assert (seen.find(h1, h2) == -1).all()
        seen.add(h1, h2, pa.array(range(start, start + 1_000)).to_numpy())
    assert len(seen.runs) < 10 and seen.nbytes == 10_000 * 24
    probe = pa.array(["id-5", "id-9999", "id-10000"])
    assert seen.find(*SeenIds.hashes(probe)).tolist() == [5, 9999, -1]
