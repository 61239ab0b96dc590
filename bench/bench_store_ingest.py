"""Store ingest: ``store.writes.upsert`` on PostgreSQL against a raw psycopg COPY, same run.

    python -m bench.bench_store_ingest [--runs 1000000] [--points 5000000] [--url postgresql+psycopg://...]

Works in a database of its own (created and dropped; default server: the local test one).
For each table (``runs``: 1,000,000 rows of 23 columns; ``metric_points``: 5,000,000 rows of 3):

* **baseline**: ``COPY <copy table> FROM STDIN (FORMAT BINARY)`` through psycopg's
  ``copy.write_row`` with the column types set (the fastest raw COPY here; ``--text-baseline``
  also times text format, which measured 2-4x slower).
  Into an identical table (``CREATE TABLE ... (LIKE <table> INCLUDING ALL)``: same
  columns, primary key and indexes; on a partitioned table, partitioned the same way with
  partitions of the same bounds and storage parameters, such as metric_points' fillfactor 90,
  so both sides pay the same routing and page filling), in one transaction.
  The baseline table starts empty; the upsert's target holds the stored share of the rows,
  and inserting keys between stored ones costs the server more than appending them (measured
  with a plain COPY of the 990,000 new points: 1.24-1.46 s backend CPU into a table holding
  the 1% against 0.92-0.93 s for all 1,000,000 into an empty one).
* **upsert**: ``store.writes.upsert(conn, table, rows)`` into the empty schema table, one
  transaction.
* **again**: the same rows upserted a second time; it must change nothing (prints the count).

Rows are made in chunks of 100,000 dicts outside the timed region (the clock runs only while
rows are written), all chunks in one transaction per path. Ratio = upsert rows/s / COPY rows/s
(target >= 0.5).

Beside the wall-clock ratio, a CPU ratio: COPY's CPU seconds / the upsert's, each the client
process's CPU time while rows are written plus its server backend's (user + system, read from
``/proc/<backend pid>/stat``; printed only when the server runs on this machine). Wall-clock
ratios swing by +-0.2 between runs on a shared machine; CPU seconds much less. The CPU ratio
does not see overlap: COPY's client formats rows while its backend stores them, so its wall
time is near the larger of the two, not their sum; the background writer, WAL writer and
checkpointer are counted on neither side.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import cast

import sqlalchemy as sa

from store.db import connect, upgrade
from store.schema import cost_daily, metric_points, runs
from store.writes import _base_type, _pg_type, _sqlite_converters, upsert

DEFAULT_URL = os.environ.get(
    "PIPEPULSE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
T0 = datetime(2026, 8, 1, tzinfo=UTC)
PIPES = [f"pipeline_{i:02d}" for i in range(40)]
STATUSES = ["SUCCEEDED"] * 18 + ["FAILED", "TIMED_OUT"]


CHUNK = 100_000


class _Clock:
    """Wall seconds, client CPU seconds and server backend CPU seconds, summed over the timed
    stretches (``with clock:``) of one connection's work."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, raw) -> None:
        self.wall = self.client = 0.0
        self.server: float | None = None  # (None: no local PostgreSQL backend to read)
        self.stat: str | None = None
        info = getattr(raw, "info", None)  # (psycopg; SQLite has none)
        if info is not None and (info.host in ("localhost", "127.0.0.1", "::1") or info.host.startswith("/")):
            try:
                with open(f"/proc/{info.backend_pid}/comm") as f:
                    if f.read().strip() in ("postgres", "postmaster"):
                        self.stat, self.server = f"/proc/{info.backend_pid}/stat", 0.0
            except OSError:
                pass

    def _backend(self) -> float:
        if self.stat is None:
            return 0.0
        with open(self.stat) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.TICK  # utime, stime

    def __enter__(self) -> _Clock:
        self._t, self._c, self._s = time.perf_counter(), time.process_time(), self._backend()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter() - self._t
        self.client += time.process_time() - self._c
        if self.server is not None:
            self.server += self._backend() - self._s

    @property
    def cpu(self) -> float | None:
        return None if self.server is None else self.client + self.server


def run_rows(lo: int, hi: int) -> Iterator[dict]:
    stamp = datetime(2026, 11, 20, tzinfo=UTC)
    for i in range(lo, hi):
        start = T0 + timedelta(seconds=i * 7)
        status = STATUSES[i % 20]
        failed = status != "SUCCEEDED"
        yield {
            "run_id": f"reference:{i:09d}",
            "pipeline": PIPES[i % 40],
            "source": "reference",
            "status": status,
            "trigger": "schedule",
            "attempt": 1,
            "scheduled_for": start,
            "queued_at": start,
            "started_at": start + timedelta(seconds=3),
            "ended_at": start + timedelta(seconds=300 + i % 97),
            "duration_seconds": 297.0 + i % 97,
            "records_in": 1000 + i % 5000,
            "records_out": 990 + i % 5000,
            "records_rejected": 10,
            "bytes_in": 50_000 + i,
            "retries": i % 3,
            "error_type": "ServiceUnavailable" if failed else None,
            "error_message": "stage load: 503\tService Unavailable" if failed else None,
            "correlation_id": f"c-{i:09d}",
            "cost_usd": 0.2 + (i % 100) / 1000,
            "account": "123456789012",
            "region": "us-east-1",
            "updated_at": stamp,
        }


def point_rows(lo: int, hi: int) -> Iterator[dict]:
    per_series = 5000
    for i in range(lo, hi):
        yield {
            "series_id": i // per_series + 1,
            "ts": T0 + timedelta(minutes=5 * (i % per_series)),
            "value": float(i % 1000) / 7,
        }


def cost_rows(lo: int, hi: int) -> Iterator[dict]:
    stamp = datetime(2026, 11, 20, tzinfo=UTC)
    day0 = T0.date()
    for i in range(lo, hi):
        day, combo = divmod(i, 2000)  # 2,000 service/usage type/account combinations a day
        yield {
            "source": "cur",
            "day": day0 - timedelta(days=day),
            "provider": "AWS",
            "account": f"{100000000000 + combo % 7}",
            "service": SERVICES[combo % len(SERVICES)],
            "region": REGIONS[combo % 3],
            "usage_type": f"USE1-Usage-{combo:06d}",
            "pipeline": PIPES[combo % 40],
            "billed_cost": (i % 977) / 13,
            "effective_cost": (i % 977) / 14,
            "usage_quantity": float(i % 311),
            "currency": "USD",
            "updated_at": stamp,
        }


SERVICES = ["Amazon S3", "AWS Glue", "AWS Lambda", "Amazon EC2", "Amazon Athena"]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
# A stored row that the batch restates: this column holds another value before the upsert.
RESTATED = {"runs": "records_out", "metric_points": "value", "cost_daily": "billed_cost"}
MIXES = (0.0, 0.01, 0.30)


def stored(i: int, mix: float) -> bool:
    """Row ``i`` is already stored before the upsert (``mix`` of the rows, spread over every
    batch: the worst case for a COPY straight into the table)."""
    return i % 100 < round(mix * 100)


def restated(i: int) -> bool:
    """Half of the stored rows hold an older value (a restatement), half are identical."""
    return (i // 100) % 2 == 0


def _chunks(make, n: int):
    for lo in range(0, n, CHUNK):
        yield list(make(lo, min(n, lo + CHUNK)))


def _prestore(engine: sa.Engine, table: sa.Table, make, n: int, mix: float) -> tuple[int, int]:
    """Store ``mix`` of the rows first (untimed); returns (rows stored, rows stored restated)."""
    columns = [c.name for c in table.columns]
    changed = RESTATED[table.name]
    count = restate = 0
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            with cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([_pg_type(_base_type(c.type)) for c in table.columns])
                for lo in range(0, n, CHUNK):
                    for i, r in enumerate(make(lo, min(n, lo + CHUNK)), start=lo):
                        if not stored(i, mix):
                            continue
                        count += 1
                        if restated(i):
                            restate += 1
                            r = {**r, changed: r[changed] + 1}
                        copy.write_row(tuple(r[c] for c in columns))
        raw.commit()
    return count, restate


def _copy(
    engine: sa.Engine,
    table: str,
    columns: list[str],
    make,
    n: int,
    *,
    binary_types: list[str] | None = None,
) -> _Clock:
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        clock = _Clock(raw)
        with raw.cursor() as cur:
            cur.execute(f"TRUNCATE {table}")
            raw.commit()
            clock.__enter__()
            fmt = " (FORMAT BINARY)" if binary_types else ""
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN{fmt}") as copy:
                if binary_types:
                    copy.set_types(binary_types)
                clock.__exit__()
                for rows in _chunks(make, n):  # (rows made with the clock stopped)
                    with clock:
                        for r in rows:
                            copy.write_row(tuple(r[c] for c in columns))
                clock.__enter__()
        raw.commit()
        clock.__exit__()
    return clock


def _upsert(engine: sa.Engine, table: sa.Table, make, n: int) -> tuple[_Clock, int]:
    changed = 0
    with engine.connect() as conn:
        clock = _Clock(conn.connection.driver_connection)
        trans = conn.begin()
        for rows in _chunks(make, n):
            with clock:
                changed += upsert(conn, table, rows)
        with clock:
            trans.commit()
    return clock, changed


def partitioning(conn: sa.Connection, table: str) -> tuple[str | None, list[tuple[str, list[str]]]]:
    """``table``'s partition key (None: not partitioned) and its partitions' bounds and storage
    parameters (``["fillfactor=90"]``), by name."""
    key = conn.execute(sa.text("SELECT pg_get_partkeydef(CAST(:t AS regclass))"), {"t": table}).scalar_one()
    parts = conn.execute(
        sa.text(
            "SELECT pg_get_expr(c.relpartbound, c.oid), coalesce(c.reloptions, '{}') FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = CAST(:t AS regclass) ORDER BY c.relname"
        ),
        {"t": table},
    ).all()
    return key, [(bound, list(options)) for bound, options in parts]


def _create_like(conn: sa.Connection, table: str, name: str) -> None:
    """``CREATE TABLE name (LIKE table INCLUDING ALL)``, partitioned as ``table`` is (same key,
    partitions of the same bounds and storage parameters, e.g. ``fillfactor``): the baseline
    COPY pays the same partition routing, per-partition indexes and page filling as the upsert.
    (``LIKE`` copies no storage parameters, and a partitioned parent has none.)"""
    key, parts = partitioning(conn, table)
    partitioned = f" PARTITION BY {key}" if key else ""
    options = conn.execute(
        sa.text("SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}
    ).scalar_one()
    plain = f" WITH ({', '.join(options)})" if options and not key else ""
    conn.execute(sa.text(f"CREATE TABLE {name} (LIKE {table} INCLUDING ALL){partitioned}{plain}"))
    for i, (bound, opts) in enumerate(parts):
        with_ = f" WITH ({', '.join(opts)})" if opts else ""
        conn.execute(sa.text(f"CREATE TABLE {name}_p{i} PARTITION OF {name} {bound}{with_}"))


def bench_table(
    engine: sa.Engine, table: sa.Table, make, n: int, *, text_baseline: bool = False
) -> tuple[dict[float, float], dict[float, float | None]]:
    """Per mix (share of the rows already stored): upsert rows/s over binary COPY rows/s, by
    wall clock and by CPU seconds (None when the server's CPU cannot be read)."""
    columns = [c.name for c in table.columns]
    copy_name = f"bench_copy_{table.name}"
    types = [_pg_type(_base_type(c.type)) for c in table.columns]
    with engine.begin() as conn:
        _create_like(conn, table.name, copy_name)
    print(f"{table.name}: {n:,} rows x {len(columns)} columns")
    if text_baseline:
        copy_text = _copy(engine, copy_name, columns, make, n).wall
        print(f"  COPY text (write_row)            {copy_text:7.1f} s  {n / copy_text:>10,.0f} rows/s")
    ratios: dict[float, float] = {}
    cpu_ratios: dict[float, float | None] = {}
    for mix in MIXES:
        with engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {table.name}"))
        held, restate = _prestore(engine, table, make, n, mix)
        # interleaved: the baseline right before the upsert it is compared with
        copy = _copy(engine, copy_name, columns, make, n, binary_types=types)
        up, written = _upsert(engine, table, make, n)
        copy_s, up_s = copy.wall, up.wall
        expect = n - held + restate
        ratio = ratios[mix] = copy_s / up_s
        cpu = cpu_ratios[mix] = None if copy.cpu is None or up.cpu is None else copy.cpu / up.cpu
        label = "fresh" if not mix else f"{mix:.0%} stored"
        print(
            f"  {label:>10}: COPY binary {copy_s:6.1f} s {n / copy_s:>10,.0f} rows/s | upsert {up_s:6.1f} s "
            f"{n / up_s:>10,.0f} rows/s | ratio {ratio:.2f}x ({'meets' if ratio >= 0.5 else 'MISSES'} 0.5x) | "
            f"{written:,} rows written{'' if written == expect else f' (EXPECTED {expect:,})'}"
        )
        if cpu is not None:
            print(
                f"  {'':>10}  CPU s client + server: COPY {copy.client:.2f} + {copy.server:.2f} | "
                f"upsert {up.client:.2f} + {up.server:.2f} | CPU ratio {cpu:.2f}x"
            )
    again, changed = _upsert(engine, table, make, n)
    again_s = again.wall
    with engine.connect() as conn:
        count = conn.execute(sa.text(f"SELECT count(*) FROM {table.name}")).scalar_one()
    print(f"  upsert again (same rows)   {again_s:6.1f} s  changed {changed} rows; table holds {count:,} rows")
    return ratios, cpu_ratios


def bench_table_sqlite(engine: sa.Engine, table: sa.Table, make, n: int) -> dict[float, float]:
    """SQLite: per mix, upsert rows/s over a plain ``executemany`` INSERT of the same rows (values
    converted as the store writes them) into a copy of the table (same key and indexes)."""
    columns = [c.name for c in table.columns]
    conv = _sqlite_converters(table, columns)
    copy_table = table.to_metadata(sa.MetaData(), name=f"bench_copy_{table.name}")
    for ix in list(copy_table.indexes):
        ix.name = f"bench_{ix.name}"
    copy_table.create(engine)
    insert = f"INSERT INTO {{}} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"

    def plain(name: str, rows_of) -> float:
        spent = 0.0
        with engine.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {name}"))
        with engine.connect() as conn:
            trans = conn.begin()  # the store's SQLite connections leave BEGIN to SQLAlchemy
            raw = conn.connection.driver_connection
            for rows in rows_of():
                t = time.perf_counter()
                raw.executemany(
                    insert.format(name),
                    [tuple(f(r[c]) if f else r[c] for f, c in zip(conv, columns, strict=True)) for r in rows],
                )
                spent += time.perf_counter() - t
            t = time.perf_counter()
            trans.commit()
            spent += time.perf_counter() - t
        return spent

    print(f"{table.name} (SQLite): {n:,} rows x {len(columns)} columns")
    ratios: dict[float, float] = {}
    changed_col = RESTATED[table.name]
    for mix in MIXES:
        def pre(mix=mix):
            for lo in range(0, n, CHUNK):
                yield [
                    {**r, changed_col: r[changed_col] + 1} if restated(i) else r
                    for i, r in enumerate(make(lo, min(n, lo + CHUNK)), start=lo)
                    if stored(i, mix)
                ]
        plain(table.name, pre)
        held = sum(stored(i, mix) for i in range(n))
        restate = sum(stored(i, mix) and restated(i) for i in range(n))
        copy_s = plain(copy_table.name, lambda: _chunks(make, n))
        up, written = _upsert(engine, table, make, n)
        up_s = up.wall
        expect = n - held + restate
        ratio = ratios[mix] = copy_s / up_s
        label = "fresh" if not mix else f"{mix:.0%} stored"
        print(
            f"  {label:>10}: executemany {copy_s:6.1f} s {n / copy_s:>10,.0f} rows/s | upsert {up_s:6.1f} s "
            f"{n / up_s:>10,.0f} rows/s | ratio {ratio:.2f}x ({'meets' if ratio >= 0.5 else 'MISSES'} 0.5x) | "
            f"{written:,} rows written{'' if written == expect else f' (EXPECTED {expect:,})'}"
        )
    again, changed = _upsert(engine, table, make, n)
    print(f"  upsert again (same rows)   {again.wall:6.1f} s  changed {changed} rows")
    return ratios


def _summary(summary: dict[str, dict[float, float]], baseline: str, title: str = "rows/s") -> None:
    print(f"\nratio upsert/{baseline} {title} (target >= 0.5)")
    print(f"{'table':<15}" + "".join(f"{('fresh' if not m else f'{m:.0%} stored'):>12}" for m in MIXES))
    for t, ratios in summary.items():
        print(f"{t:<15}" + "".join(f"{ratios[m]:>11.2f}x" for m in MIXES))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--points", type=int, default=5_000_000)
    ap.add_argument("--costs", type=int, default=1_000_000)
    ap.add_argument("--url", default=DEFAULT_URL)
    ap.add_argument(
        "--text-baseline",
        action="store_true",
        help="also time a text-format COPY (2-4x slower than binary here)",
    )
    ap.add_argument("--db-prefix", default="pp_bench", help="name prefix of the database it creates (and drops)")
    ap.add_argument("--sqlite", action="store_true", help="SQLite instead (baseline: plain executemany)")
    args = ap.parse_args()
    tables = ((runs, run_rows, args.runs), (metric_points, point_rows, args.points), (cost_daily, cost_rows, args.costs))
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            engine = connect(f"sqlite:///{tmp}/bench.db")
            upgrade(engine)
            _summary({t.name: bench_table_sqlite(engine, t, make, n) for t, make, n in tables if n}, "executemany")
            engine.dispose()
        return
    admin = sa.create_engine(args.url, isolation_level="AUTOCOMMIT")
    name = f"{args.db_prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        engine = connect(admin.url.set(database=name).render_as_string(hide_password=False))
        upgrade(engine)
        both = {
            t.name: bench_table(engine, t, make, n, text_baseline=args.text_baseline) for t, make, n in tables if n
        }
        _summary({t: wall for t, (wall, _) in both.items()}, "COPY")
        cpu = {t: c for t, (_, c) in both.items() if None not in c.values()}
        if cpu:
            _summary(cast(dict[str, dict[float, float]], cpu), "COPY", "by CPU seconds, client + server backend")
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


if __name__ == "__main__":
    main()
