"""Dashboard speed at scale: navigation to all charts drawn, in headless Chromium, against a bare
Streamlit page drawing the same number of plotly charts, measured in the same run.

    python -m bench.bench_dashboard [--scale 1.0] [--reuse] [--reps 3]

Builds (with COPY) a PostgreSQL database of ``--scale`` x (1,000,000 runs over two years,
10,000,000 metric points, two years of daily cost for 50 services x 20 regions x 30 usage types,
i.e. 21.9M cost rows), refreshes the ``run_daily`` rollup, then for Overview, Pipelines and Costs
(default 7-day window; Costs in each of its three tabs, which draw only the open one) times
``page.goto`` until every plotly chart of the page has drawn and the script has finished:

- cold: the first load of the page in a new browser context. Each repetition restarts both
  servers, then loads Overview, Pipelines and the Costs tabs in turn, so only Overview's cold load meets
  a freshly started server (empty caches, imports still to do); Pipelines and Costs meet one
  that has served the pages before them (imports done, shared reads such as the pipeline list
  cached). The bare page is measured the same way;
- warm: the same page loaded again in the same context (server caches and browser cache warm).

The dashboard is served as ``pipepulse dashboard serve`` serves it (its Streamlit flags include
``--runner.postScriptGC false`` and ``--client.toolbarMode minimal``); the bare page with
Streamlit's defaults.

The baseline is a bare Streamlit app (``BARE_APP`` below) drawing as many plotly charts from a
small in-memory frame, served and measured the same way. Prints medians, ratios (page / bare)
and the dashboard server's peak RSS. Target: ratios within 1.5x, server under 1 GB.
Needs PostgreSQL (``--pg-url``) and Debian's /usr/bin/chromium.
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


def build(url: str, scale: float, end: datetime) -> dict[str, int]:
    """Fill an empty, migrated database; returns rows per table."""
    from store.db import connect, upgrade
    from store.rollups import refresh_run_daily

    engine = connect(url)
    upgrade(engine)
    with engine.begin() as conn:  # a partition per month of history, as the schedule would have made
        from store.partitions import PARTITIONED, create_month, is_partitioned

        month = (end - timedelta(days=DAYS + 1)).date().replace(day=1)
        while month <= end.date():
            for table in PARTITIONED:
                if is_partitioned(conn, table):
                    create_month(conn, table, month)
            month = (month + timedelta(days=32)).replace(day=1)
    rng = np.random.default_rng(7)
    counts: dict[str, int] = {}
    raw = engine.raw_connection()
    try:
        drv = raw.driver_connection
        start = end - timedelta(days=DAYS)
        now = pd.Timestamp(end)
        # pipelines
        _copy(drv, "pipelines", pd.DataFrame({"name": PIPELINES, "source": "reference", "freshness_sla_seconds": 3600,
                                              "owner": "", "account": "123456789012", "region": "us-east-1", "updated_at": now}))
        # runs: evenly spread over two years, lognormal durations, ~4% failures, ~8% retried
        n_runs = int(1_000_000 * scale)
        for lo in range(0, n_runs, 200_000):
            k = min(200_000, n_runs - lo)
            idx = np.arange(lo, lo + k)
            pipe = idx % len(PIPELINES)
            started = pd.Timestamp(start) + pd.to_timedelta((idx / n_runs) * DAYS * 86400, unit="s")
            dur = rng.lognormal(5.5, 0.5, k)
            roll = rng.random(k)
            status = np.where(roll < 0.03, "FAILED", np.where(roll < 0.04, "TIMED_OUT", "SUCCEEDED"))
            recs = rng.integers(1_000, 200_000, k)
            failed = status != "SUCCEEDED"
            frame = pd.DataFrame({
                "run_id": [f"reference:bench-{i}" for i in idx],
                "pipeline": np.array(PIPELINES)[pipe],
                "source": "reference", "status": status, "trigger": "schedule", "attempt": 1,
                "scheduled_for": started, "queued_at": started - pd.to_timedelta(rng.integers(1, 120, k), unit="s"),
                "started_at": started, "ended_at": started + pd.to_timedelta(dur, unit="s"),
                "duration_seconds": dur, "records_in": recs, "records_out": np.where(failed, 0, recs),
                "records_rejected": recs // 200, "bytes_in": recs * 180, "retries": (roll > 0.92).astype(int),
                "error_type": np.where(failed, "UpstreamError", None), "error_message": np.where(failed, "source returned 503", None),
                "correlation_id": [f"c-{i}" for i in idx], "cost_usd": dur / 3600 * 0.08,
                "account": "123456789012", "region": "us-east-1", "updated_at": now,
            })
            _copy(drv, "runs", frame)
        counts["runs"] = n_runs
        # metric series and points: hourly points over two years
        per_series = DAYS * 24
        n_series = max(1, int(round(10_000_000 * scale / per_series)))
        series = pd.DataFrame({
            "series_id": np.arange(1, n_series + 1),
            "series_key": [f'{{"metric":"m{i}","namespace":"Pipepulse/Reference"}}' for i in range(n_series)],
            "namespace": "Pipepulse/Reference", "metric_name": [f"m{i % 7}" for i in range(n_series)],
            "dimensions": "{}", "stat": "Sum", "period_seconds": 3600, "unit": "Count",
            "pipeline": [PIPELINES[i % len(PIPELINES)] for i in range(n_series)], "stage": None,
        })
        _copy(drv, "metric_series", series)
        hours = pd.Timestamp(start).floor("h") + pd.to_timedelta(np.arange(per_series), unit="h")
        for sid in range(1, n_series + 1):
            _copy(drv, "metric_points", pd.DataFrame({"series_id": sid, "ts": hours, "value": rng.random(per_series) * 100}))
        counts["metric_points"] = n_series * per_series
        # cost: every day x service x region x usage type, FOCUS source, one pipeline tag each
        n_serv, n_reg, n_use = 50, 20, 30
        combos = n_serv * n_reg * n_use
        days = max(1, int(round(DAYS * scale)))
        svc = np.repeat(np.arange(n_serv), n_reg * n_use)
        reg = np.tile(np.repeat(np.arange(n_reg), n_use), n_serv)
        use = np.tile(np.arange(n_use), n_serv * n_reg)
        base = (svc + 1) * 0.002 * (1 + reg % 3) * (1 + use % 5)
        tag = np.array(["", *PIPELINES])[(svc * 7 + reg * 3 + use) % (len(PIPELINES) + 1)]
        acct = np.where(svc % 3 == 0, "210987654321", "123456789012")
        static = pd.DataFrame({
            "provider": "AWS", "account": acct, "service": [f"Service {s:02d}" for s in svc],
            "region": [f"region-{r:02d}" for r in reg], "usage_type": [f"Usage-{u:02d}" for u in use], "pipeline": tag,
        })
        last = end.date()
        for d in range(days):
            day = last - timedelta(days=d)
            amount = base * (0.8 if day.weekday() >= 5 else 1.0) * rng.uniform(0.9, 1.1, combos)
            frame = static.assign(source="focus", day=day, billed_cost=amount, effective_cost=amount * 0.93,
                                  usage_quantity=amount * 10, currency="USD", updated_at=now)
            _copy(drv, "cost_daily", frame[["source", "day", "provider", "account", "service", "region", "usage_type",
                                            "pipeline", "billed_cost", "effective_cost", "usage_quantity", "currency", "updated_at"]])
        counts["cost_daily"] = combos * days
        # a forecast snapshot, as `pipepulse forecast` stores one
        daily = float(base.sum())
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
    finally:
        raw.close()
    with engine.begin() as conn:
        first = (end - timedelta(days=DAYS)).date()
        refresh_run_daily(conn, days={first + timedelta(days=i) for i in range(DAYS + 1)}, now=end)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
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


def _load(page, url: str, charts: int) -> float:
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function(
        "n => [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.querySelector('.main-svg')).length >= n"
        " && document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state') === 'notRunning'",
        arg=charts, timeout=120_000, polling=50,
    )
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the full dataset (default 1.0)")
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test", help="an existing database to create the bench database from")
    ap.add_argument("--reuse", action="store_true", help="reuse the bench database of an earlier run at the same scale")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: install Debian's chromium", file=sys.stderr)
        return 2
    name = f"pp_bench_dashboard_{str(args.scale).replace('.', '_')}"
    admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is not None
        if exists and not args.reuse:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        if not exists or not args.reuse:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    if not (exists and args.reuse):
        t = time.perf_counter()
        counts = build(url, args.scale, end)
        print(f"built {', '.join(f'{k} {v:,}' for k, v in counts.items())} in {time.perf_counter() - t:.0f} s", flush=True)
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
            cold, warm, rss = measure(
                browser,
                {"bare": lambda: Server(bare_cmd, env), "dash": lambda: Server(dash_cmd, env)},
                {"bare": [(n, f"/?n={c}", c) for n, _, c in PAGES], "dash": PAGES},
                args.reps,
            )
            browser.close()
    b_cold, b_warm, b_rss = cold["bare"], warm["bare"], rss["bare"]
    d_cold, d_warm, d_rss = cold["dash"], warm["dash"], rss["dash"]
    med = statistics.median
    print(f"\ndashboard at scale {args.scale} ({int(1_000_000 * args.scale):,} runs), medians of {args.reps}, seconds")
    print(f"{'page':<10} {'charts':>6} {'cold':>7} {'bare':>7} {'ratio':>6}   {'warm':>7} {'bare':>7} {'ratio':>6}")
    for name, _, charts in PAGES:
        c, bc, w, bw = med(d_cold[name]), med(b_cold[name]), med(d_warm[name]), med(b_warm[name])
        print(f"{name:<10} {charts:>6} {c:>7.2f} {bc:>7.2f} {c / bc:>6.2f}   {w:>7.2f} {bw:>7.2f} {w / bw:>6.2f}")
    print(f"server peak RSS: dashboard {d_rss:,.0f} MB, bare {b_rss:,.0f} MB (target < 1,024 MB)")
    print("every repetition, seconds (dashboard / bare):")
    for name, _, _ in PAGES:
        for kind, d, b in (("cold", d_cold, b_cold), ("warm", d_warm, b_warm)):
            pairs = "  ".join(f"{x:.2f}/{y:.2f}" for x, y in zip(d[name], b[name], strict=True))
            print(f"  {name:<10} {kind}  {pairs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
