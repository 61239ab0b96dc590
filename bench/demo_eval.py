"""The demo's injected incidents against what detection finds: ``python -m bench.demo_eval``.

    python -m bench.demo_eval [--data-dir DIR] [--reuse] [--days 90]

Builds the demo (``pipepulse demo build``: backfill, AWS sources, collection) into a fresh
folder (a temporary one unless ``--data-dir``; ``--reuse`` scores a folder built before, e.g.
``--data-dir data/demo --reuse``), then runs detection exactly as ``pipepulse detect`` does
(``jobs.detect.detect_anomalies``, the code ``jobs.detect.run`` stores; the clock is set to
the demo's end + 6 minutes, when the build itself detects) and prints:

1. the incidents ``pipeline.backfill`` injected, their windows computed with
   ``pipeline.backfill.Faults`` from the demo's start and length (read back from the ledger),
   and the anomaly that detected each (kind, subject, severity, time), or MISSED;
2. every anomaly that no incident explains: one is explained only when it overlaps an
   incident's window (a daily point covers its whole day, an hourly one its hour) *and* its
   subject is one that incident touches (e.g. a cost anomaly of a pipeline on the
   data-transfer spike's days is not explained by the spike). No recovery allowance: a flag on
   the day after an incident counts as a flag on a normal day;
3. ``incidents detected X/N; flags on normal days Y``, with how many of those Y fall on a
   failed run or a timed-out stage of their pipeline in the ledger (real events the backfill
   did not plan, e.g. a transient error that outlasted the retries; they still count in Y);
4. the forecast backtest (``insights.forecast.forecast_daily``) on the demo's history: the
   billed daily spend as ``pipepulse forecast`` reads it from the store
   (``jobs.forecast.spend_series``), and the ledger's daily run cost
   (``bench.forecast_eval.ledger_daily_spend``): MASE, the MAE against last-value's and
   seasonal-naive's, and interval coverage.

Exit status 1 when an incident is missed. Besides the backfill's incidents, the Glue job's two
failed nights (``devkit.aws_seed``: out of memory ``GLUE_OOM_NIGHT`` days before the end, into
the timeout ``GLUE_TIMEOUT_NIGHT`` days before; the job runs every night of the history, so
they are past the warm-up) are incidents too. Not scored: the Step Functions executions'
failures (12 executions within the last three days).
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "examples" / "demo.toml"
DETECT_AFTER = timedelta(minutes=6)  # devkit.demo.build_demo detects at end + 6 min
DAILY_KINDS = {"cost", "failure_rate", "rejected_rate"}

__all__ = ["Incident", "demo_window", "incidents", "main", "match", "seeded_incidents"]


@dataclass(frozen=True)
class Incident:
    """One injected incident: when, and which anomalies may be its own."""

    name: str
    start: datetime
    end: datetime  # exclusive
    touches: Callable[[dict[str, Any]], bool]  # an anomaly row this incident can explain


def _day(d) -> datetime:
    return datetime.combine(d, datetime.min.time(), UTC)


def _pipeline(*names: str) -> Callable[[dict[str, Any]], bool]:
    return lambda a: a.get("pipeline") in names


def _account_cost(a: dict[str, Any]) -> bool:
    # the bill's shared lines: total, per service / region / usage type (not a pipeline's tag)
    return a["kind"] == "cost" and not a.get("pipeline")


def incidents(start: datetime, days: int, reference: tuple[str, ...]) -> list[Incident]:
    """The backfill's incidents for a demo of ``days`` days from ``start`` (``pipeline.backfill``)."""
    from pipeline.backfill import Faults

    f = Faults(start, days)
    out_start, out_end = f.outage
    slow, runaway = f.slow_days, f.runaway_days
    return [
        Incident("data-transfer spike (bill, 2 days)", _day(f.dt_spike_day), _day(f.dt_spike_day) + timedelta(days=2), _account_cost),
        Incident("bad-data day (orders rejects 25%)", _day(f.bad_data_day), _day(f.bad_data_day) + timedelta(days=1), _pipeline("orders")),
        # failed runs are retried an hour later, so the outage's failures reach one hour past it
        Incident("outage (lake 503, 09-13 UTC)", out_start, out_end + timedelta(hours=1), _pipeline(*reference)),
        Incident("slow upstream (clickstream, 3 days)", _day(slow[0]), _day(slow[1]) + timedelta(days=1), _pipeline("clickstream")),
        Incident("runaway (clickstream 3x DPUs, 4 days)", _day(runaway[0]), _day(runaway[1]) + timedelta(days=1),
                 lambda a: _pipeline("clickstream")(a) or _account_cost(a)),
        Incident("schema break (finance_daily)", _day(f.schema_break_day), _day(f.schema_break_day) + timedelta(days=1),
                 _pipeline("finance_daily")),
    ]


def seeded_incidents(end: datetime) -> list[Incident]:
    """The Glue job's failed nights that ``devkit.aws_seed`` seeds for a demo ending at ``end``."""
    from devkit.aws_seed import GLUE_OOM_NIGHT, GLUE_TIMEOUT_NIGHT

    nights = (("Glue out of memory (glue_nightly)", GLUE_OOM_NIGHT), ("Glue timeout (glue_nightly)", GLUE_TIMEOUT_NIGHT))
    return [Incident(name, _day(end.date()) - timedelta(days=ago), _day(end.date()) - timedelta(days=ago - 1), _pipeline("glue_nightly"))
            for name, ago in nights]


def _span(a: dict[str, Any]) -> tuple[datetime, datetime]:
    """The time an anomaly covers: a daily point its whole day, any other point its hour."""
    step = timedelta(days=1) if a["kind"] in DAILY_KINDS else timedelta(hours=1)
    return a["window_start"], a["window_end"] + step


def match(anomaly: dict[str, Any], incident: Incident) -> bool:
    """True when ``anomaly`` overlaps ``incident`` in time and is about what it touches."""
    a, b = _span(anomaly)
    return a < incident.end and incident.start < b and incident.touches(anomaly)


def demo_window(ledger: Path) -> tuple[datetime, int]:
    """The demo's start and length in days, read back from its ledger: scheduled runs fill
    ``[start, end)`` hour by hour (``orders`` runs on every hour), ``end`` a whole hour."""
    with sqlite3.connect(ledger) as conn:
        lo, hi = conn.execute("SELECT min(scheduled_for), max(scheduled_for) FROM ledger_runs WHERE trigger = 'schedule'").fetchone()
    if lo is None:
        raise SystemExit(f"{ledger}: no scheduled runs; is this a demo's ledger?")
    start = pd.Timestamp(lo).tz_convert("UTC").floor("h").to_pydatetime()
    end = (pd.Timestamp(hi).tz_convert("UTC").floor("h") + pd.Timedelta(hours=1)).to_pydatetime()
    days = round((end - start) / timedelta(days=1))
    if end - start != timedelta(days=days):
        raise SystemExit(f"{ledger}: scheduled runs span {end - start}, not whole days; is this a demo's ledger?")
    return start, days


def ledger_events(ledger: Path) -> pd.DataFrame:
    """Failed runs and timed-out stage attempts in the ledger (pipeline, at, what): real events,
    planned or not, that a flag can be checked against."""
    with sqlite3.connect(ledger) as conn:
        frame = pd.read_sql_query(
            "SELECT r.pipeline, r.started_at AS at, 'run ' || r.status || coalesce(' (' || r.error_type || ')', '') AS what "
            "FROM ledger_runs r WHERE r.status NOT IN ('SUCCEEDED', 'RUNNING', 'QUEUED', 'AWAITING_RETRY') "
            "UNION ALL SELECT r.pipeline, s.started_at, s.stage || ' attempt ' || s.attempt || ' TIMED_OUT' "
            "FROM ledger_steps s JOIN ledger_runs r USING (run_id) WHERE s.status = 'TIMED_OUT'",
            conn,
        )
    frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
    return frame.sort_values("at").reset_index(drop=True)


def _events_in(events: pd.DataFrame, a: dict[str, Any]) -> list[str]:
    lo, hi = _span(a)
    hit = events[(events["pipeline"] == a.get("pipeline")) & (events["at"] >= lo) & (events["at"] < hi)]
    return [f"{r.pipeline} {r.what} at {r.at:%m-%d %H:%M}" for r in hit.itertuples()]


def _demo_settings(data_dir: Path, config_dir: Path):
    """The demo's config with ``data_dir`` pointed at ``data_dir`` (and its SQLite store)."""
    from pipepulse.settings import load_settings

    text = DEMO_CONFIG.read_text()
    text, n = re.subn(r'(?m)^data_dir = "[^"]*"', f'data_dir = "{data_dir.as_posix()}"', text)
    if n != 1:
        raise SystemExit(f"{DEMO_CONFIG}: expected one data_dir line under [pipepulse]")
    config = config_dir / "demo.toml"
    config.write_text(text)
    env = {k: v for k, v in os.environ.items() if k not in ("PIPEPULSE_DATA_DIR", "PIPEPULSE_DATABASE_URL", "PIPEPULSE_CONFIG")}
    return config, load_settings(env, config_path=config)


def _build(config: Path, days: int) -> None:
    from cli.main import main as cli

    print(f"building the {days}-day demo (pipepulse demo build) ...", file=sys.stderr, flush=True)
    code = cli(["--config", str(config), "demo", "build", "--days", str(days)])
    if code != 0:
        raise SystemExit(f"pipepulse demo build failed (exit {code})")


def _forecast_rows(settings, engine, ledger: Path, end: datetime) -> list[tuple[str, Any]]:
    from bench.forecast_eval import ledger_daily_spend
    from insights.forecast import forecast_daily
    from jobs.forecast import forecast_options, spend_series

    options = forecast_options(settings)
    yesterday = (end + DETECT_AFTER).date() - timedelta(days=1)
    with engine.connect() as conn:
        billed = spend_series(conn, yesterday - timedelta(days=options.history_days - 1), yesterday)
    rows = []
    for name, series, horizon in (("billed spend (store)", billed, options.horizon_days),
                                  ("ledger run cost", ledger_daily_spend(ledger), 7)):
        bt = forecast_daily(series, horizon=horizon, level=options.level).backtest
        rows.append((f"{name}, {len(series)} d", bt))
    return rows


def _fmt(a: dict[str, Any]) -> str:
    when = a["window_start"].strftime("%Y-%m-%d %H:%M")
    if a["window_end"] != a["window_start"]:
        when += a["window_end"].strftime(" .. %m-%d %H:%M")
    return f"{a['kind']:<13} {a['subject']:<52} {a['severity']:<8} {when}"


def evaluate(data_dir: Path, *, days: int, reuse: bool, config_dir: Path) -> int:
    """Build (unless ``reuse``), detect, print the tables; returns the exit status."""
    from jobs.detect import detect_anomalies
    from store.db import connect

    config, settings = _demo_settings(data_dir, config_dir)
    if not reuse:
        _build(config, days)
    ledger = data_dir / "ledger.db"
    if not ledger.exists():
        raise SystemExit(f"{data_dir}: no ledger.db; build the demo there first (drop --reuse)")
    start, days = demo_window(ledger)
    end = start + timedelta(days=days)
    reference = tuple(p.name for p in settings.pipelines if p.source == "reference")
    engine = connect(settings.database_url, create_dirs=False)
    try:
        rows, summary = detect_anomalies(settings, engine, now=end + DETECT_AFTER)
        forecasts = _forecast_rows(settings, engine, ledger, end)
    finally:
        engine.dispose()
    rows.sort(key=lambda a: (a["window_start"], a["kind"], a["subject"]))
    found = incidents(start, days, reference) + seeded_incidents(end)

    print(f"demo {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC ({days} days), {data_dir}")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(summary.by_kind.items()))
    print(f"detection at {end + DETECT_AFTER:%Y-%m-%d %H:%M} UTC: {summary.series_scanned} series, {summary.anomalies} anomalies ({kinds})")
    print()
    print(f"{'injected incident':<40} {'window (UTC)':<27} detected by")
    missed = 0
    for inc in found:
        hits = [a for a in rows if match(a, inc)]
        window = f"{inc.start:%m-%d %H:%M} .. {inc.end:%m-%d %H:%M}"
        if not hits:
            missed += 1
        print(f"{inc.name:<40} {window:<27} {'MISSED' if not hits else f'{len(hits)} anomalies'}")
        for a in hits:
            print(f"    {_fmt(a)}")
    false = [a for a in rows if not any(match(a, inc) for inc in found)]
    events = ledger_events(ledger)
    seen = 0
    print()
    print(f"anomalies no incident explains (flags on normal days): {len(false)}")
    for a in false:
        print(f"    {_fmt(a)}  observed {a['observed']:.4g} expected {a['expected']:.4g} band {a['lower']:.4g}..{a['upper']:.4g}")
        real = _events_in(events, a)
        seen += bool(real)
        for text in real:
            print(f"        ledger, not planned by the backfill: {text}")
    print()
    print(f"incidents detected {len(found) - missed}/{len(found)}; flags on normal days {len(false)}"
          f" ({seen} of them at a run failure or stage timeout in the ledger)")
    print()
    print(f"forecast backtest on the demo's history (insights.forecast, {forecasts[0][1].level:.0%} intervals):")
    print(f"    {'series':<28} {'points':>6} {'MASE':>6} {'vs last':>7} {'vs snaive':>9} {'cover':>6}")
    for name, bt in forecasts:
        mase = f"{bt.mase:6.3f}" if bt.mase is not None else "     -"
        cover = f"{bt.coverage:6.1%}" if bt.coverage is not None else "     -"
        vs_lv = f"{bt.mae / bt.mae_last_value:7.3f}" if bt.mae is not None and bt.mae_last_value else "      -"
        vs_sn = f"{bt.mae / bt.mae_seasonal_naive:9.3f}" if bt.mae is not None and bt.mae_seasonal_naive else "        -"
        print(f"    {name:<28} {bt.points:>6} {mase} {vs_lv} {vs_sn} {cover}")
    print("    (vs last / vs snaive: backtest MAE over last-value's / seasonal-naive's on the same days; "
          "python -m bench.forecast_eval --demo-dir DIR scores the demo's bill per service)")
    return 1 if missed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See the module docstring for what counts.")
    p.add_argument("--data-dir", type=Path, help="build (or with --reuse, read) the demo here; default: a temporary folder")
    p.add_argument("--reuse", action="store_true", help="score the demo already built in --data-dir")
    p.add_argument("--days", type=int, default=90, help="days of history to build (default 90)")
    a = p.parse_args(argv)
    if a.reuse and a.data_dir is None:
        p.error("--reuse needs --data-dir (e.g. --data-dir data/demo)")
    with tempfile.TemporaryDirectory(prefix="pipepulse-demo-eval-") as tmp:
        data_dir = (a.data_dir or Path(tmp) / "data").resolve()
        return evaluate(data_dir, days=a.days, reuse=a.reuse, config_dir=Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
