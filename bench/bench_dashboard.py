"""Dashboard speed at scale: navigation to all charts drawn, in headless Chromium, against a bare
Streamlit page drawing the same number of plotly charts, measured in the same run.

    python -m bench.bench_dashboard [--scale 1.0] [--reuse] [--reps 3] [--db-prefix NAME]
    python -m bench.bench_dashboard --curve [0.01,0.1,1,10] [--reuse]   # the scaling curve
    python -m bench.bench_dashboard --scale 10 --build-only             # build the database only

Builds a PostgreSQL database (``<db-prefix>_<scale>``) of ``--scale`` x (1,000,000 runs over two
years, 10,000,000 hourly metric points) and two years of daily cost for 50 services x 20 regions
x 30 usage types (21.9M cost rows; below scale 1 the cost span shrinks with the scale, 7 days at
0.01, and above it stays two years: a bill does not grow with run history). The rows are made by
PostgreSQL itself (``INSERT ... SELECT`` over ``generate_series`` with ``random()`` after
``setseed``), the three big tables loaded as a restore loads them (keys and indexes dropped, then
made again from their catalog definitions and checked equal to the migrated ones); then the
``run_daily`` rollup and ``places`` (the filter lists' table) are refreshed and the database
vacuumed and analyzed. Scale 10 (10M runs, 100M points) built in 931 s on the shared 2-core
machine (2026-12-06, load 6-10). Then for Overview, Pipelines and Costs (default 7-day window;
Costs in each of its three tabs, which draw only the open one) it times ``page.goto`` until every
plotly chart of the page has drawn, the script has finished and the page has settled (two frames
painted, then the browser's main thread idle: ``SETTLED``):

- cold: the first load of the page in a new browser context. Each repetition restarts both
  servers, then loads Overview, Pipelines and the Costs tabs in turn, so only Overview's cold load meets
  a freshly started server (empty caches, imports still to do: since h22o the dashboard starts
  them at the page request, while the browser loads Streamlit's scripts); Pipelines and Costs meet one
  that has served the pages before them (imports done, shared reads such as the pipeline list
  cached). The bare page is measured the same way;
- warm: the same page loaded again in the same context (server caches and browser cache warm),
  started once the cold load has settled, as a user opens a page again. Until 2026-12-06 (h22v)
  the timing stopped as soon as every chart had its SVG, while the dashboard still had 0.16-0.27 s
  of main-thread work queued (the bare page ~0); the warm load, started at once, waited for it, so
  the dashboard's warm ratios were too high and its cold ones too low (bench/README.md, h22v).

The dashboard is served as ``pipepulse dashboard serve`` serves it (its Streamlit flags include
``--runner.postScriptGC false`` and ``--client.toolbarMode minimal``); the bare page with
Streamlit's defaults.

The baseline is a bare Streamlit app (``BARE_APP`` below) drawing as many plotly charts from a
small in-memory frame, served and measured the same way. Prints medians, ratios (page / bare)
and both servers' peak RSS; ``--curve`` does so per scale, then one line per scale of all the
ratios. Targets (issue 22): every ratio within 1.2x, the dashboard server under 500 MB, ratios
flat in history length. Needs PostgreSQL (``--pg-url``) and Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "demo.toml"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
# Costs opens on its Spend view; its Forecast and Unit costs views (tabs) are measured as pages
PAGES = [
    ("overview", "/", 1), ("pipelines", "/pipelines", 3), ("costs", "/costs", 2),
    ("forecast", "/costs?view=Forecast", 1), ("unit costs", "/costs?view=Unit+costs", 2),
]
PIPELINES = ["orders", "clickstream", "finance_daily", "partner_feed", "sfn_customer_etl", "glue_nightly"] + [
    f"pipeline_{i:02d}" for i in range(14)
]
DAYS = 730
CURVE = "0.01,0.1,1,10"  # 10k, 100k, 1M, 10M runs
RSS_TARGET_MB = 500

BARE_APP = '''
import numpy as np, pandas as pd, plotly.graph_objects as go, streamlit as st
st.set_page_config(layout="wide")
n = int(st.query_params.get("n", "1"))
st.title("bare")
c = st.columns(4)
for i in range(4):
    c[i].metric(f"m{i}", f"{i * 10}")
frame = pd.DataFrame({"x": pd.date_range("2026-01-01", periods=30), "y": np.arange(30.0)})
for i in range(n):
    st.plotly_chart(go.Figure(go.Scatter(x=frame["x"], y=frame["y"] * (i + 1), mode="lines")), key=f"c{i}")
'''


# ---- data ----------------------------------------------------------------------------------------


def _copy(raw, table: str, frame: pd.DataFrame) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False, na_rep="\\N")
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    # NULL is \N, so an empty field is an empty string (cost rows use '' for "unknown")
    with raw.cursor() as cur, cur.copy(f"COPY \"{table}\" ({cols}) FROM STDIN (FORMAT csv, NULL '\\N')") as cp:
        cp.write(buf.getvalue())


# ---- data, generated by PostgreSQL itself -------------------------------------------------------
#
# Rows are made server-side (INSERT ... SELECT over generate_series, random() after setseed), so
# nothing crosses the wire: 10M runs and 100M metric points build in minutes, not hours. The three
# big tables are loaded as a restore loads them: their indexes and key constraints are dropped first
# and created again after the data, from their own catalog definitions, and the index set is
# checked equal to the migrated one afterwards.

_RUN_COLS = (
    "run_id, pipeline, source, status, trigger, attempt, scheduled_for, queued_at, started_at, ended_at, "
    "duration_seconds, records_in, records_out, records_rejected, bytes_in, retries, error_type, error_message, "
    "correlation_id, cost_usd, account, region, updated_at"
)
# runs evenly spread over two years, lognormal(5.5, 0.5) durations (Box-Muller), 3% FAILED and 1%
# TIMED_OUT, 8% retried: the shape of the earlier numpy generator
_RUNS_SQL = f"""
INSERT INTO runs ({_RUN_COLS})
SELECT 'reference:bench-' || i, (%(pipes)s::text[])[i %% %(npipes)s + 1], 'reference',
       CASE WHEN roll < 0.03 THEN 'FAILED' WHEN roll < 0.04 THEN 'TIMED_OUT' ELSE 'SUCCEEDED' END,
       'schedule', 1, started, started - make_interval(secs => q), started, started + make_interval(secs => dur), dur,
       recs, CASE WHEN roll < 0.04 THEN 0 ELSE recs END, recs / 200, recs * 180, (roll > 0.92)::int,
       CASE WHEN roll < 0.04 THEN 'UpstreamError' END, CASE WHEN roll < 0.04 THEN 'source returned 503' END,
       'c-' || i, dur / 3600 * 0.08, '123456789012', 'us-east-1', %(now)s
FROM (
    SELECT i, %(start)s::timestamptz + make_interval(secs => i::float8 / %(n)s * %(span)s) AS started,
           exp(5.5 + 0.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS dur,
           random() AS roll, 1000 + floor(random() * 199000)::bigint AS recs, 1 + floor(random() * 119) AS q
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
) AS g
"""
_POINTS_SQL = """
INSERT INTO metric_points (series_id, ts, value)
SELECT s, %(t0)s::timestamptz + h * interval '1 hour', random() * 100
FROM generate_series(%(lo)s::int, %(hi)s::int) AS s CROSS JOIN generate_series(0, %(per)s - 1) AS h
"""
# every day x 50 services x 20 regions x 30 usage types, FOCUS source, one pipeline tag each,
# weekends at 0.8, +-10% noise
_COST_SQL = """
INSERT INTO cost_daily (source, day, provider, account, service, region, usage_type, pipeline,
                        billed_cost, effective_cost, usage_quantity, currency, updated_at)
SELECT 'focus', d, 'AWS', CASE WHEN svc %% 3 = 0 THEN '210987654321' ELSE '123456789012' END,
       'Service ' || lpad(svc::text, 2, '0'), 'region-' || lpad(reg::text, 2, '0'), 'Usage-' || lpad(use::text, 2, '0'),
       (%(tags)s::text[])[(svc * 7 + reg * 3 + use) %% %(ntags)s + 1], amount, amount * 0.93, amount * 10, 'USD', %(now)s
FROM (
    SELECT d::date AS d, svc, reg, use,
           (svc + 1) * 0.002 * (1 + reg %% 3) * (1 + use %% 5)
           * CASE WHEN extract(isodow FROM d) >= 6 THEN 0.8 ELSE 1.0 END * (0.9 + 0.2 * random()) AS amount
    FROM generate_series(%(d0)s::date, %(d1)s::date, interval '1 day') AS d,
         generate_series(0, 49) AS svc, generate_series(0, 19) AS reg, generate_series(0, 29) AS use
) AS g
"""
N_SERV, N_REG, N_USE = 50, 20, 30


def _index_defs(cur) -> set[str]:
    cur.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()")
    return {r[0] for r in cur.fetchall()}


def _drop_keys(cur, table: str) -> list[str]:
    """Drop ``table``'s key constraints and indexes (its partitions' with them); returns the
    statements that create them again."""
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid), conindid FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u')", (table,))
    cons = cur.fetchall()
    cur.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass "
        "AND NOT indexrelid = ANY(%s)", (table, [c[2] for c in cons]))
    idx = cur.fetchall()
    restore = [f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {d}' for name, d, _ in cons]
    # a partitioned table's index prints as "ON ONLY t": created on the parent, it cascades
    restore += [d.replace(" ON ONLY ", " ON ") for _, d in idx]
    for name, _, _ in cons:
        cur.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
    for name, _ in idx:
        cur.execute(f"DROP INDEX {name}")
    return restore


def build(url: str, scale: float, end: datetime, *, log=print) -> dict[str, int]:
    """Fill an empty, migrated database; returns rows per table."""
    from store.db import connect, upgrade
    from store.partitions import PARTITIONED, create_month, is_partitioned
    from store.places import refresh_places
    from store.rollups import refresh_run_daily

    engine = connect(url)
    upgrade(engine)
    with engine.begin() as conn:  # a partition per month of history, as the schedule would have made
        month = (end - timedelta(days=DAYS + 1)).date().replace(day=1)
        while month <= end.date():
            for table in PARTITIONED:
                if is_partitioned(conn, table):
                    create_month(conn, table, month)
            month = (month + timedelta(days=32)).replace(day=1)
    counts: dict[str, int] = {}
    start = end - timedelta(days=DAYS)
    now = pd.Timestamp(end)
    last = end.date()
    t0 = time.perf_counter()

    def step(what: str) -> None:
        log(f"  {time.perf_counter() - t0:7.0f} s  {what}", flush=True)

    raw = engine.raw_connection()
    try:
        drv = raw.driver_connection
        with drv.cursor() as cur:
            migrated = _index_defs(cur)
            cur.execute("SET maintenance_work_mem = '512MB'")
            cur.execute("SELECT setseed(0.7)")
            restore = [s for t in ("runs", "metric_points", "cost_daily") for s in _drop_keys(cur, t)]
            drv.commit()
        _copy(drv, "pipelines", pd.DataFrame({"name": PIPELINES, "source": "reference", "freshness_sla_seconds": 3600,
                                              "owner": "", "account": "123456789012", "region": "us-east-1", "updated_at": now}))
        n_runs = int(1_000_000 * scale)
        with drv.cursor() as cur:
            for lo in range(0, n_runs, 1_000_000):
                cur.execute(_RUNS_SQL, {"pipes": PIPELINES, "npipes": len(PIPELINES), "now": now, "start": start,
                                        "n": n_runs, "span": DAYS * 86400, "lo": lo, "hi": min(lo + 1_000_000, n_runs) - 1})
                drv.commit()
                step(f"runs {min(lo + 1_000_000, n_runs):,}")
        counts["runs"] = n_runs
        # metric series and points: hourly points over two years
        per_series = DAYS * 24
        n_series = max(1, int(round(10_000_000 * scale / per_series)))
        _copy(drv, "metric_series", pd.DataFrame({
            "series_id": np.arange(1, n_series + 1),
            "series_key": [f'{{"metric":"m{i}","namespace":"Pipepulse/Reference"}}' for i in range(n_series)],
            "namespace": "Pipepulse/Reference", "metric_name": [f"m{i % 7}" for i in range(n_series)],
            "dimensions": "{}", "stat": "Sum", "period_seconds": 3600, "unit": "Count",
            "pipeline": [PIPELINES[i % len(PIPELINES)] for i in range(n_series)], "stage": None,
        }))
        drv.commit()
        hour0 = pd.Timestamp(start).floor("h")
        chunk = max(1, 4_000_000 // per_series)
        with drv.cursor() as cur:
            for lo in range(1, n_series + 1, chunk):
                hi = min(lo + chunk - 1, n_series)
                cur.execute(_POINTS_SQL, {"t0": hour0, "lo": lo, "hi": hi, "per": per_series})
                drv.commit()
                if hi * per_series // 10_000_000 != (lo - 1) * per_series // 10_000_000 or hi == n_series:
                    step(f"metric points {hi * per_series:,}")
        counts["metric_points"] = n_series * per_series
        # cost: two years at most, whatever the scale (a bill does not grow with run history);
        # smaller scales keep the old scaled span (7 days at 0.01, 73 at 0.1)
        days = max(1, min(DAYS, int(round(DAYS * scale))))
        tags = ["", *PIPELINES]
        with drv.cursor() as cur:
            for d in range(0, days, 60):
                d1 = last - timedelta(days=d)
                d0 = last - timedelta(days=min(d + 60, days) - 1)
                cur.execute(_COST_SQL, {"tags": tags, "ntags": len(tags), "now": now, "d0": d0, "d1": d1})
                drv.commit()
            step(f"cost rows {N_SERV * N_REG * N_USE * days:,}")
        counts["cost_daily"] = N_SERV * N_REG * N_USE * days
        # a forecast snapshot, as `pipepulse forecast` stores one
        svc, reg, use = np.meshgrid(np.arange(N_SERV), np.arange(N_REG), np.arange(N_USE), indexing="ij")
        daily = float(((svc + 1) * 0.002 * (1 + reg % 3) * (1 + use % 5)).sum())
        month_end = (end.date().replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        _copy(drv, "forecast_snapshots", pd.DataFrame([{
            "snapshot_id": 1, "created_at": now, "method": "pipepulse", "subject": "total", "level": 0.8,
            "train_start": last - timedelta(days=days - 1), "train_end": last, "mape": 0.05, "mase": 0.7, "bias": 0.0,
            "coverage": 0.8, "backtest_points": 100, "month_end_mean": daily * month_end.day,
            "month_end_lower": daily * month_end.day * 0.95, "month_end_upper": daily * month_end.day * 1.05,
        }]))
        fdays = pd.date_range(last + timedelta(days=1), month_end + timedelta(days=14)).date
        _copy(drv, "forecast_points", pd.DataFrame({"snapshot_id": 1, "day": fdays, "mean": daily, "lower": daily * 0.9, "upper": daily * 1.1}))
        drv.commit()
        with drv.cursor() as cur:
            for stmt in restore:
                cur.execute(stmt)
                drv.commit()
            step(f"indexes and keys ({len(restore)} statements)")
            if (now_defs := _index_defs(cur)) != migrated:
                raise RuntimeError(f"index set differs from the migrated one: {sorted(now_defs ^ migrated)}")
    finally:
        raw.close()
    with engine.begin() as conn:
        first = (end - timedelta(days=DAYS)).date()
        refresh_run_daily(conn, days={first + timedelta(days=i) for i in range(DAYS + 1)}, now=end)
        refresh_places(conn, "cost", last - timedelta(days=days - 1), last + timedelta(days=1))
    step("run_daily, places")
    # VACUUM as well as ANALYZE: a long-lived database has been through autovacuum (visibility map
    # set, hint bits written); without it autovacuum would run during the timings
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM (ANALYZE)")
    step("vacuum, analyze")
    engine.dispose()
    return counts


# ---- servers and browser ---------------------------------------------------------------------------


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        out += [int(x) for x in task.read_text().split()]
    return out


def _rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident MB of ``pid`` and its descendants."""
    cur = peak = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        cur += int(fields.get("VmRSS", "0 kB").split()[0]) / 1024
        peak += int(fields.get("VmHWM", "0 kB").split()[0]) / 1024
        todo += _children(p)
    return cur, peak


class Server:
    def __init__(self, cmd: list[str], env: dict[str, str]):
        self.port = _port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([*cmd, "--port" if cmd[-1] == "serve" else "--server.port", str(self.port)],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/_stcore/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"server did not start: {cmd}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


DRAWN = (
    "n => [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.querySelector('.main-svg')).length >= n"
    " && document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state') === 'notRunning'"
)
# resolves once the page has painted two frames and then found its main thread idle: the work the
# page still has queued when DRAWN first holds (plotly finishing its charts: 0.16-0.27 s on
# Pipelines at 1M runs, ~0 on the bare page) belongs to this load, not to the next one
SETTLED = (
    "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame("
    "() => requestIdleCallback(() => r(true), {timeout: 10000}))))"
)


def _load(page, url: str, charts: int) -> float:
    """Seconds from ``page.goto(url)`` until ``charts`` plotly charts have drawn, the script has
    finished and the page has settled (``SETTLED``)."""
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function(DRAWN, arg=charts, timeout=120_000, polling=50)
    page.evaluate(SETTLED)
    return time.perf_counter() - t0


def measure(browser, servers: dict, urls: dict[str, list[tuple[str, str, int]]], reps: int) -> tuple[dict, dict, dict]:
    """Per server kind: ``{page: [cold s]}``, ``{page: [warm s]}`` and peak RSS MB.

    Every repetition restarts each server (cold caches); the kinds are measured page by page,
    interleaved, so load from other processes on the machine hits both alike."""
    cold = {k: {n: [] for n, _, _ in urls[k]} for k in servers}
    warm = {k: {n: [] for n, _, _ in urls[k]} for k in servers}
    peak = {k: 0.0 for k in servers}
    for _ in range(reps):
        running = {k: start() for k, start in servers.items()}
        try:
            for i in range(len(PAGES)):
                for k, server in running.items():
                    name, path, charts = urls[k][i]
                    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = ctx.new_page()
                    cold[k][name].append(_load(page, server.base + path, charts))
                    warm[k][name].append(_load(page, server.base + path, charts))
                    ctx.close()
            for k, server in running.items():
                peak[k] = max(peak[k], _rss_mb(server.proc.pid)[1])
        finally:
            for server in running.values():
                server.stop()
    return cold, warm, peak


def _database(args, scale: float) -> tuple[str, bool]:
    """The URL of the bench database for ``scale``, created empty unless ``--reuse`` finds it;
    returns (url, whether it must be built)."""
    name = f"{args.db_prefix}_{str(scale).replace('.', '_')}"
    admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is not None
        if exists and not args.reuse:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        if not exists or not args.reuse:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url, not (exists and args.reuse)


def _measure_pages(url: str, reps: int) -> tuple[dict, dict, dict]:
    env = {**os.environ, "PIPEPULSE_DATABASE_URL": url, "PIPEPULSE_LOG_FORMAT": "text"}
    dash_cmd = [sys.executable, "-m", "cli", "--config", str(CONFIG), "dashboard", "serve"]
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare.py"
        bare.write_text(BARE_APP)
        bare_cmd = [sys.executable, "-m", "streamlit", "run", str(bare), "--server.headless", "true",
                    "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
                    "--server.address", "127.0.0.1", "--theme.base", "light"]
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                return measure(
                    browser,
                    {"bare": lambda: Server(bare_cmd, env), "dash": lambda: Server(dash_cmd, env)},
                    {"bare": [(n, f"/?n={c}", c) for n, _, c in PAGES], "dash": PAGES},
                    reps,
                )
            finally:
                browser.close()


def _table(scale: float, reps: int, cold: dict, warm: dict, rss: dict) -> dict[str, tuple[float, float]]:
    """Print one scale's page table; returns ``{page: (cold ratio, warm ratio)}``."""
    b_cold, b_warm, b_rss = cold["bare"], warm["bare"], rss["bare"]
    d_cold, d_warm, d_rss = cold["dash"], warm["dash"], rss["dash"]
    med = statistics.median
    ratios = {}
    print(f"\ndashboard at scale {scale} ({int(1_000_000 * scale):,} runs), medians of {reps}, seconds")
    print(f"{'page':<10} {'charts':>6} {'cold':>7} {'bare':>7} {'ratio':>6}   {'warm':>7} {'bare':>7} {'ratio':>6}")
    for name, _, charts in PAGES:
        c, bc, w, bw = med(d_cold[name]), med(b_cold[name]), med(d_warm[name]), med(b_warm[name])
        ratios[name] = (c / bc, w / bw)
        print(f"{name:<10} {charts:>6} {c:>7.2f} {bc:>7.2f} {c / bc:>6.2f}   {w:>7.2f} {bw:>7.2f} {w / bw:>6.2f}")
    print(f"server peak RSS: dashboard {d_rss:,.0f} MB, bare {b_rss:,.0f} MB (target < {RSS_TARGET_MB} MB)")
    print("every repetition, seconds (dashboard / bare):")
    for name, _, _ in PAGES:
        for kind, d, b in (("cold", d_cold, b_cold), ("warm", d_warm, b_warm)):
            pairs = "  ".join(f"{x:.2f}/{y:.2f}" for x, y in zip(d[name], b[name], strict=True))
            print(f"  {name:<10} {kind}  {pairs}")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    return {**ratios, "rss": (d_rss, b_rss)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the full dataset (default 1.0)")
    ap.add_argument("--curve", nargs="?", const=CURVE, default=None, metavar="SCALES",
                    help=f"measure each of these comma-separated scales in turn and print the scaling curve (default {CURVE})")
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test", help="an existing database to create the bench database from")
    ap.add_argument("--db-prefix", default="pp_bench_dashboard", help="bench databases are named <prefix>_<scale>")
    ap.add_argument("--reuse", action="store_true", help="reuse the bench database of an earlier run at the same scale")
    ap.add_argument("--build-only", action="store_true", help="build (or check) the database(s), measure nothing")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists() and not args.build_only:
        print(f"{CHROMIUM} is missing: install Debian's chromium", file=sys.stderr)
        return 2
    scales = [float(s) for s in args.curve.split(",")] if args.curve else [args.scale]
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    curve = {}
    for scale in scales:
        url, fresh = _database(args, scale)
        if fresh:
            t = time.perf_counter()
            print(f"building scale {scale}", flush=True)
            counts = build(url, scale, end)
            print(f"built {', '.join(f'{k} {v:,}' for k, v in counts.items())} in {time.perf_counter() - t:.0f} s", flush=True)
        if not args.build_only:
            curve[scale] = _table(scale, args.reps, *_measure_pages(url, args.reps))
    if len(curve) > 1:
        print(f"\nscaling curve: dashboard / bare, medians of {args.reps}, cold | warm; server peak RSS MB")
        print(f"{'runs':>12} " + " ".join(f"{n:>13}" for n, _, _ in PAGES) + f" {'RSS':>11}")
        for scale, r in curve.items():
            cells = " ".join(f"{r[n][0]:>6.2f}|{r[n][1]:<6.2f}" for n, _, _ in PAGES)
            print(f"{int(1_000_000 * scale):>12,} {cells} {r['rss'][0]:>5.0f}/{r['rss'][1]:<5.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
