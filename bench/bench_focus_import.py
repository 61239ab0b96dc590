"""Import a generated FOCUS 1.0 file: rows per second against pandas reading the same file alone.

    python -m bench.bench_focus_import [--rows 1000000] [--gzip] [--keep FILE]

The file has the FOCUS 1.0 columns AWS Data Exports write that the importer reads, plus a few it
ignores, with ``NULL`` strings, Tags JSON and hourly ChargePeriodStart values over one month.

* **baseline**: ``pandas.read_csv(path)`` alone (default options; nothing checked or summed).
* **pipepulse**: ``jobs.import_costs.import_cost_files`` into a fresh SQLite database: read,
  check every row, sum per day and key, replace the month in ``cost_daily``. Also timed: the
  read-and-check step alone (``read_cost_file``).

Both run in the same process, one after the other, on the same file; the ratio is what to
compare across machines.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

SERVICES = ["Amazon Simple Storage Service", "AWS Glue", "AWS Lambda", "Amazon Elastic Compute Cloud",
            "AWS Step Functions", "Amazon CloudWatch", "Amazon Athena", "Amazon Simple Queue Service"]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "NULL"]
PIPELINES = ["orders", "clickstream", "finance_daily", "partner_feed", None]


def generate(path: Path, rows: int, *, compress: bool, seed: int = 7) -> None:
    """Write a FOCUS 1.0 CSV of ``rows`` line items for September 2026."""
    rng = np.random.default_rng(seed)
    hours = rng.integers(0, 30 * 24, rows)
    starts = (np.datetime64("2026-09-01T00:00:00") + hours.astype("timedelta64[h]")).astype(str)
    starts = np.char.replace(starts, "T", " ")
    ends = (np.datetime64("2026-09-01T01:00:00") + hours.astype("timedelta64[h]")).astype(str)
    ends = np.char.replace(ends, "T", " ")
    svc = rng.integers(0, len(SERVICES), rows)
    billed = np.round(rng.gamma(1.2, 0.05, rows), 10)
    effective = np.round(billed * rng.choice([1.0, 0.7], rows), 10)
    tag_sets = [json.dumps({"pipeline": p, "team": "data"}) if p else "NULL" for p in PIPELINES]
    tags = np.array(tag_sets, dtype=object)[rng.integers(0, len(tag_sets), rows)]
    usage = np.array([f"USE1-{k}" for k in ("TimedStorage-ByteHrs", "Requests-Tier1", "ETL-DPU-Hour", "Lambda-GB-Second", "BoxUsage:m5.large", "StateTransition")], dtype=object)
    table = pa.table({
        "AvailabilityZone": pa.array(np.full(rows, "NULL", dtype=object)),
        "BilledCost": pa.array(np.char.mod("%.10f", billed)),
        "BillingAccountId": pa.array(np.full(rows, "123456789012", dtype=object)),
        "BillingCurrency": pa.array(np.full(rows, "USD", dtype=object)),
        "BillingPeriodEnd": pa.array(np.full(rows, "2026-10-01 00:00:00", dtype=object)),
        "BillingPeriodStart": pa.array(np.full(rows, "2026-09-01 00:00:00", dtype=object)),
        "ChargeCategory": pa.array(np.full(rows, "Usage", dtype=object)),
        "ChargeDescription": pa.array(np.array(SERVICES, dtype=object)[svc]),
        "ChargeFrequency": pa.array(np.array(["Usage-Based", "Usage-based"], dtype=object)[rng.integers(0, 2, rows)]),
        "ChargePeriodEnd": pa.array(ends.astype(object)),
        "ChargePeriodStart": pa.array(starts.astype(object)),
        "ConsumedQuantity": pa.array(np.char.mod("%.6f", rng.gamma(2.0, 10.0, rows))),
        "EffectiveCost": pa.array(np.char.mod("%.10f", effective)),
        "ProviderName": pa.array(np.full(rows, "AWS", dtype=object)),
        "RegionId": pa.array(np.array(REGIONS, dtype=object)[rng.integers(0, len(REGIONS), rows)]),
        "ResourceId": pa.array(np.char.add("arn:aws:s3:::bucket-", rng.integers(0, 500, rows).astype(str)).astype(object)),
        "ServiceName": pa.array(np.array(SERVICES, dtype=object)[svc]),
        "SubAccountId": pa.array(np.array(["111111111111", "222222222222", "333333333333"], dtype=object)[rng.integers(0, 3, rows)]),
        "Tags": pa.array(tags),
        "x_UsageType": pa.array(usage[rng.integers(0, len(usage), rows)]),
    })
    buf = pa.BufferOutputStream()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(quoting_style="needed"))
    data = buf.getvalue().to_pybytes().replace(b'"NULL"', b"NULL")
    path.write_bytes(gzip.compress(data, compresslevel=1) if compress else data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--gzip", action="store_true", help="write and read a .csv.gz")
    ap.add_argument("--keep", type=Path, help="also keep the generated file here")
    args = ap.parse_args()

    from collectors.costfiles import CostFile, read_cost_file
    from jobs.import_costs import import_cost_files
    from store.db import connect, upgrade

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("focus.csv.gz" if args.gzip else "focus.csv")
        t0 = time.perf_counter()
        generate(path, args.rows, compress=args.gzip)
        print(f"generated {args.rows:,} rows, {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        frame = pd.read_csv(path)
        pandas_s = time.perf_counter() - t0
        assert len(frame) == args.rows
        want = float(pd.to_numeric(frame["BilledCost"]).sum())
        del frame

        t0 = time.perf_counter()
        parsed = read_cost_file(CostFile(name=str(path), path=path), tag_key="pipeline")
        read_s = time.perf_counter() - t0
        assert parsed.rows_read == args.rows and not parsed.rejections
        del parsed

        engine = connect(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        t0 = time.perf_counter()
        result = import_cost_files(engine, [str(path)], tag_key="pipeline", now=datetime.now(UTC))
        import_s = time.perf_counter() - t0
        assert result.ok and result.rows_rejected == 0
        got = result.months[("focus", "2026-09")]["billed_cost"]
        assert round(got, 2) == round(want, 2), (got, want)
        if args.keep:
            args.keep.write_bytes(path.read_bytes())

    n = args.rows
    print(f"{'step':<38}{'seconds':>9}{'rows/s':>13}{'vs pandas':>11}")
    print(f"{'pandas.read_csv (baseline)':<38}{pandas_s:>9.2f}{n / pandas_s:>13,.0f}{1.0:>10.2f}x")
    print(f"{'read + check (read_cost_file)':<38}{read_s:>9.2f}{n / read_s:>13,.0f}{pandas_s / read_s:>10.2f}x")
    print(f"{'full import into SQLite':<38}{import_s:>9.2f}{n / import_s:>13,.0f}{pandas_s / import_s:>10.2f}x")
    print(f"daily rows stored: {result.daily_rows:,}; file total billed {want:,.2f} = stored {got:,.2f}")


if __name__ == "__main__":
    main()
