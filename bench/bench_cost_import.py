"""Import a generated CUR month (5M line items by default): rows/s and peak memory against a DuckDB
and a pyarrow group-by of the same file, measured in the same run.

    nice -n 10 python -m bench.bench_cost_import [--lines 5000000] [--format parquet|csv.gz]
                                                 [--cache DIR] [--repeat 1] [--threads 1]

The month is shaped like the real one in ``../shared/data/cost/aws-cur-2018-10`` (legacy CUR,
Athena Parquet, 124 columns): its line items are resampled with a fixed seed (the services,
usage types, line item types, regions, accounts and tags mix of the real month), each given a
new unique ``identity_line_item_id`` and its costs and amounts scaled by a random factor around 1.
It is written in row groups of 250,000 (as AWS does, bounded in memory too) and cached under
``--cache`` (default ``bench/results/cur-<lines>.<format>``), so later runs skip generating.

Each contender runs in a fresh child process; its peak RSS is the child's ``ru_maxrss``:

* **duckdb**: ``GROUP BY`` day, account, service, region, usage type, tag, currency over
  ``read_parquet`` / ``read_csv`` of the file (``SET threads`` to ``--threads``), the floor.
* **pyarrow**: read the columns the import needs, then ``Table.group_by`` on the same key.
* **pipepulse**: ``jobs.import_costs.import_cost_files`` into a fresh SQLite database (created
  before the clock starts): reads in
  batches, checks every row (rejections with file and row), counts repeated line items once,
  sums per day and key, replaces the month in ``cost_daily``.

Every contender's billed total must equal the others' (to the cent). Ratios: pipepulse's rows/s
over each baseline's, and pipepulse's peak RSS over each baseline's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "cost" / "aws-cur-2018-10" / "Oct2018-WorkshopCUR-00001.snappy.parquet"
ROW_GROUP = 250_000
MONEY = ("line_item_unblended_cost", "line_item_blended_cost", "line_item_net_unblended_cost", "pricing_public_on_demand_cost",
         "reservation_effective_cost", "line_item_usage_amount")
TAG = "resource_tags_user_workload"


def generate(path: Path, lines: int, *, fmt: str, seed: int = 22, real: Path = REAL) -> None:
    """Write ``lines`` line items resampled from the real month (see the module doc)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    src = pq.read_table(real)
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)
    tmp = path.with_suffix(path.suffix + ".part")
    writer: pq.ParquetWriter | None = None
    out = open(tmp, "wb") if fmt == "csv.gz" else None  # noqa: SIM115 - closed below
    gz = pa.CompressedOutputStream(pa.PythonFile(out, mode="w"), "gzip") if out else None
    try:
        for start in range(0, lines, ROW_GROUP):
            n = min(ROW_GROUP, lines - start)
            part = src.take(pa.array(rng.integers(0, src.num_rows, n)))
            ids = alphabet[rng.integers(0, 32, (n, 52))].view("S52").ravel().astype(str)
            part = part.set_column(part.schema.get_field_index("identity_line_item_id"), "identity_line_item_id", pa.array(ids))
            factor = rng.lognormal(0.0, 0.25, n)
            for name in MONEY:
                if name in part.column_names:
                    i = part.schema.get_field_index(name)
                    col = part.column(i)
                    scaled = pc.multiply(pc.cast(col, pa.float64()), pa.array(factor))
                    part = part.set_column(i, name, pc.cast(scaled, col.type))
            if gz is not None:
                pacsv.write_csv(part, gz, pacsv.WriteOptions(include_header=start == 0))
            else:
                if writer is None:
                    writer = pq.ParquetWriter(tmp, part.schema, compression="snappy")
                writer.write_table(part, row_group_size=ROW_GROUP)
    finally:
        if writer is not None:
            writer.close()
        if gz is not None:
            gz.close()
    tmp.rename(path)


# ---- contenders, each run in a child process -----------------------------------------------


def _day_key_sql(reader: str) -> str:
    return f"""
        SELECT CAST(CAST(line_item_usage_start_date AS TIMESTAMPTZ) AS DATE) AS day,
               COALESCE(NULLIF(line_item_usage_account_id, ''), bill_payer_account_id) AS account,
               COALESCE(NULLIF(product_product_name, ''), line_item_product_code) AS service,
               COALESCE(product_region, '') AS region, line_item_usage_type AS usage_type,
               COALESCE({TAG}, '') AS pipeline, COALESCE(line_item_currency_code, 'USD') AS currency,
               SUM(CAST(line_item_unblended_cost AS DOUBLE)) AS billed, COUNT(*) AS n
        FROM {reader} GROUP BY ALL"""


def run_duckdb(path: Path, threads: int) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")
    # CSV as text (as pipepulse reads it; type sniffing would make account ids numbers)
    reader = f"read_parquet('{path}')" if path.suffix == ".parquet" else f"read_csv('{path}', header = true, all_varchar = true)"
    t0 = time.perf_counter()
    rows = con.execute(f"SELECT COUNT(*), SUM(n), SUM(billed) FROM ({_day_key_sql(reader)})").fetchone()
    return {"daily_rows": rows[0], "lines": rows[1], "billed": rows[2], "seconds": time.perf_counter() - t0}


def run_pyarrow(path: Path, threads: int) -> dict:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    pa.set_cpu_count(threads)
    t0 = time.perf_counter()
    cols = ["line_item_usage_start_date", "line_item_usage_account_id", "product_product_name", "product_region",
            "line_item_usage_type", TAG, "line_item_currency_code", "line_item_unblended_cost"]
    if path.suffix == ".parquet":
        t = pq.read_table(path, columns=cols, use_threads=threads > 1)
    else:
        t = pacsv.read_csv(path, read_options=pacsv.ReadOptions(use_threads=threads > 1),
                           convert_options=pacsv.ConvertOptions(include_columns=cols))
    t = t.set_column(0, "day", pc.cast(pc.floor_temporal(t.column(0), unit="day"), pa.date32()))
    out = t.group_by(["day", *cols[1:-1]], use_threads=threads > 1).aggregate(
        [("line_item_unblended_cost", "sum"), ("line_item_unblended_cost", "count")])
    return {"daily_rows": out.num_rows, "lines": pc.sum(out.column("line_item_unblended_cost_count")).as_py(),
            "billed": pc.sum(out.column("line_item_unblended_cost_sum")).as_py(), "seconds": time.perf_counter() - t0}


def run_pipepulse(path: Path, threads: int) -> dict:
    from datetime import UTC, datetime

    from jobs.import_costs import import_cost_files
    from store.db import connect, upgrade

    with tempfile.TemporaryDirectory() as tmp:
        engine = connect(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        t0 = time.perf_counter()
        result = import_cost_files(engine, [str(path)], tag_key="workload", now=datetime.now(UTC))
        seconds = time.perf_counter() - t0
    assert result.ok, result.unreadable
    return {"daily_rows": result.daily_rows, "lines": result.rows_read - result.rows_rejected - result.duplicates,
            "billed": sum(v["billed_cost"] for v in result.months.values()), "rejected": result.rows_rejected,
            "duplicates": result.duplicates, "seconds": seconds}


CONTENDERS = {"duckdb": run_duckdb, "pyarrow": run_pyarrow, "pipepulse": run_pipepulse}


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss of a child started by a large parent can report
    the parent's high-water mark on Linux), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def child(name: str, path: Path, threads: int) -> None:
    out = CONTENDERS[name](path, threads)  # each times its own work (libraries loaded before)
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))


def measure(name: str, path: Path, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, "-m", "bench.bench_cost_import", "--child", name, str(path), "--threads", str(threads)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument("--format", choices=("parquet", "csv.gz"), default="parquet")
    ap.add_argument("--cache", type=Path, help="where the generated file is kept (default bench/results/cur-<lines>.<format>)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each contender, interleaved; medians are shown")
    ap.add_argument("--threads", type=int, default=1, help="threads for DuckDB and pyarrow (pipepulse reads on one)")
    ap.add_argument("--child", nargs=2, metavar=("NAME", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.threads)
        return

    path = args.cache or Path(__file__).resolve().parent / "results" / f"cur-{args.lines}.{args.format}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        t0 = time.perf_counter()
        generate(path, args.lines, fmt=args.format)
        print(f"generated {args.lines:,} CUR line items, {path.stat().st_size / 1e6:.0f} MB, in {time.perf_counter() - t0:.0f} s: {path}")
    else:
        print(f"cached: {path} ({path.stat().st_size / 1e6:.0f} MB)")

    runs: dict[str, list[dict]] = {n: [] for n in CONTENDERS}
    for _ in range(args.repeat):
        for name in CONTENDERS:
            runs[name].append(measure(name, path, args.threads))
            r = runs[name][-1]
            print(f"  {name:<10} {r['seconds']:7.1f} s  peak RSS {r['peak_rss_mb']:6.0f} MB  billed {r['billed']:,.2f}", flush=True)
    med = {n: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "peak_rss_mb")} | rs[0] for n, rs in runs.items()}
    totals = {n: round(m["billed"], 2) for n, m in med.items()}
    lines = {n: m["lines"] for n, m in med.items()}
    assert len(set(totals.values())) == 1, f"billed totals differ: {totals}"
    assert len(set(lines.values())) == 1, f"line items counted differ: {lines}"
    n = args.lines
    print(f"\n{args.lines:,} lines, {args.format}, {args.threads} thread(s) for the baselines, median of {args.repeat}")
    print(f"{'contender':<12}{'seconds':>9}{'rows/s':>12}{'peak RSS MB':>13}{'pipepulse rows/s ratio':>24}{'RSS ratio':>11}")
    pp = med["pipepulse"]
    for name, m in med.items():
        print(f"{name:<12}{m['seconds']:>9.1f}{n / m['seconds']:>12,.0f}{m['peak_rss_mb']:>13,.0f}"
              f"{m['seconds'] / pp['seconds']:>23.2f}x{pp['peak_rss_mb'] / m['peak_rss_mb']:>10.2f}x")
    print(f"daily rows {pp['daily_rows']:,}; billed total {pp['billed']:,.2f} in all three; pipepulse rejected {pp['rejected']:,}, "
          f"repeats {pp['duplicates']:,}. Seconds are the work alone (libraries loaded, database created, before the clock starts).")


if __name__ == "__main__":
    main()
