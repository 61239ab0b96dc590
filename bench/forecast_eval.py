"""Forecast accuracy table: ``python -m bench.forecast_eval`` reproduces the figures in the notes.

Series:
* ``cur``: daily spend of the real AWS CUR month in ``../shared/data/cost/aws-cur-2018-10``
  (sum of ``line_item_unblended_cost`` by UTC day of ``line_item_usage_start_date``; 31 days).
* ``demo-like``: ``SEEDS`` synthetic 120-day histories shaped like the demo's spend: weekly
  seasonality (weekends ~30% lower), ~0.3%/day growth, Gaussian noise (5% of level) and two
  one-day spikes (+120% and +150%); the row is the mean over seeds, with the range of coverage.

``--ledger data/ledger.db`` adds the demo's own history: the daily run-level cost estimates of
the ledger ``pipepulse demo build`` (``pipeline.backfill``) writes.

Second table: the month-end total. From every origin day whose month is fully observed, the
history up to that day is forecast to the month end and the total's interval is checked against
the real total (CUR: origins 14-30 Oct; demo-like: 240-day series, months Aug-Jan).

Each forecast's own backtest is used (``insights.forecast``: rolling origin, horizons 1-7 days,
model choice and intervals from errors realised before each origin only). MASE is against the
in-sample seasonal-naive (period 7); ``rel_snaive`` is the backtest MAE over the MAE of
seasonal-naive forecasts for the same origins and horizons. Targets: MASE < 1, 80% interval
coverage 75-85%.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from insights.forecast import forecast_daily

ROOT = Path(__file__).resolve().parents[1]
CUR_DIR = ROOT.parent / "shared" / "data" / "cost" / "aws-cur-2018-10"
SEEDS = 20


def cur_daily_spend(folder: Path = CUR_DIR) -> pd.Series:
    """Daily unblended cost of the CUR month, indexed by day."""
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise SystemExit(f"no CUR parquet under {folder}")
    frame = pd.concat(
        pd.read_parquet(f, columns=["line_item_usage_start_date", "line_item_unblended_cost"]) for f in files
    )
    day = pd.to_datetime(frame["line_item_usage_start_date"], utc=True).dt.tz_localize(None).dt.normalize()
    return frame.groupby(day)["line_item_unblended_cost"].sum().rename("amount")


def demo_like_series(seed: int, days: int = 120, start: str = "2026-07-01") -> pd.Series:
    """Weekly seasonality + growth + noise + two spikes (see module docstring)."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=days, freq="D")
    weekly = np.array([1.0, 1.05, 1.1, 1.08, 1.0, 0.7, 0.65])[idx.day_of_week]
    level = 80.0 * (1 + 0.003 * np.arange(days)) * weekly
    y = level + rng.normal(0, 0.05 * 80.0, days)
    for frac, bump in ((0.35, 1.2), (0.75, 1.5)):
        i = int(days * frac) + int(rng.integers(0, 5))
        y[i] += bump * level[i]
    return pd.Series(np.maximum(y, 0.0), index=idx, name="amount")


def ledger_daily_spend(path: Path) -> pd.Series:
    """Daily run-level cost estimates (``cost_usd``) of a reference-pipeline ledger, e.g. the
    one ``pipeline.backfill`` writes for the demo (by UTC day of ``started_at``)."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        frame = pd.read_sql_query("SELECT started_at, cost_usd FROM ledger_runs WHERE started_at IS NOT NULL", conn)
    day = pd.to_datetime(frame["started_at"], utc=True, format="ISO8601").dt.tz_localize(None).dt.normalize()
    s = frame.groupby(day)["cost_usd"].sum().rename("amount")
    # the last day of a backfill is partial: drop it
    return s.iloc[:-1]


def evaluate(level: float = 0.8, seeds: int = SEEDS, ledger: Path | None = None) -> pd.DataFrame:
    """One row per series: points, MAPE, MASE, rel_snaive, bias, coverage (and its range)."""
    rows = []
    cur = forecast_daily(cur_daily_spend(), horizon=7, level=level).backtest
    rows.append(_row("cur-2018-10 (31 d)", [cur]))
    demo = [forecast_daily(demo_like_series(s), horizon=7, level=level).backtest for s in range(seeds)]
    rows.append(_row(f"demo-like (120 d, {seeds} seeds)", demo))
    if ledger is not None:
        series = ledger_daily_spend(ledger)
        rows.append(_row(f"demo ledger ({len(series)} d)", [forecast_daily(series, horizon=7, level=level).backtest]))
    return pd.DataFrame(rows)


def month_end_eval(series: pd.Series, level: float = 0.8, min_history: int = 14) -> dict:
    """Score the month-end total forecast from every origin whose month is fully observed:
    history up to the origin, forecast the rest of the month, compare with the real total."""
    s = series.copy()
    s.index = pd.DatetimeIndex(s.index).normalize()
    last = s.index[-1]
    inside, errors = [], []
    for i in range(min_history - 1, len(s) - 1):
        origin = s.index[i]
        month_end = (origin + pd.Timedelta(days=1)) + pd.offsets.MonthEnd(0)
        if month_end > last:
            break
        month_start = month_end.replace(day=1)
        actual = float(s[(s.index >= month_start) & (s.index <= month_end)].sum())
        fc = forecast_daily(s.iloc[: i + 1], level=level)
        inside.append(fc.month_end_lower <= actual <= fc.month_end_upper)
        errors.append(abs(fc.month_end_mean - actual) / actual)
    return {"origins": len(inside), "mape": float(np.mean(errors)), "coverage": float(np.mean(inside))}


def evaluate_month_end(level: float = 0.8, seeds: int = 5, ledger: Path | None = None) -> pd.DataFrame:
    """Month-end total: MAPE and interval coverage over forecast origins (see month_end_eval)."""
    rows = [{"series": "cur-2018-10 (Oct total)", **month_end_eval(cur_daily_spend(), level)}]
    if ledger is not None:
        rows.append({"series": "demo ledger", **month_end_eval(ledger_daily_spend(ledger), level)})
    demo = [month_end_eval(demo_like_series(s, days=240), level) for s in range(seeds)]
    rows.append({
        "series": f"demo-like (240 d, {seeds} seeds)",
        "origins": sum(d["origins"] for d in demo),
        "mape": float(np.mean([d["mape"] for d in demo])),
        "coverage": float(np.mean([d["coverage"] for d in demo])),
    })
    return pd.DataFrame(rows)


def _row(name, bts) -> dict:
    cov = [b.coverage for b in bts]
    return {
        "series": name,
        "points": int(sum(b.points for b in bts)),
        "mape": float(np.mean([b.mape for b in bts])),
        "mase": float(np.mean([b.mase for b in bts])),
        "rel_snaive": float(np.mean([b.rel_mae_snaive for b in bts])),
        "bias": float(np.mean([b.bias for b in bts])),
        "coverage": float(np.mean(cov)),
        "coverage_min": float(min(cov)),
        "coverage_max": float(max(cov)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--level", type=float, default=0.8)
    p.add_argument("--seeds", type=int, default=SEEDS)
    p.add_argument("--ledger", type=Path, help="also score a backfill ledger's daily run costs (demo history)")
    args = p.parse_args(argv)
    table = evaluate(args.level, args.seeds, args.ledger)
    print(f"{'series':<28} {'points':>6} {'MAPE':>7} {'MASE':>6} {'rel-sn':>6} {'bias':>7} {'cover':>6}  range")
    for r in table.itertuples(index=False):
        print(
            f"{r.series:<28} {r.points:>6} {r.mape:>7.1%} {r.mase:>6.3f} {r.rel_snaive:>6.3f} {r.bias:>+7.1%} "
            f"{r.coverage:>6.1%}  {r.coverage_min:.1%}-{r.coverage_max:.1%}"
        )
    print(f"targets: MASE < 1 against seasonal-naive; {args.level:.0%} interval coverage "
          f"{args.level - 0.05:.0%}-{args.level + 0.05:.0%}")
    print()
    print("month-end total (interval: comonotonic sum of the daily intervals), one forecast per origin day:")
    print(f"{'series':<28} {'origins':>7} {'MAPE':>7} {'cover':>6}")
    for r in evaluate_month_end(args.level, ledger=args.ledger).itertuples(index=False):
        print(f"{r.series:<28} {r.origins:>7} {r.mape:>7.1%} {r.coverage:>6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
