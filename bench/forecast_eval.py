"""Forecast accuracy table: ``python -m bench.forecast_eval`` reproduces the figures in the notes.

Series:
* ``cur``: daily spend of the real AWS CUR month in ``../shared/data/cost/aws-cur-2018-10``
  (sum of ``line_item_unblended_cost`` by UTC day of ``line_item_usage_start_date``; 31 days).
* ``demo-like``: ``SEEDS`` synthetic 120-day histories shaped like the demo's spend: weekly
  seasonality (weekends ~30% lower), ~0.3%/day growth, Gaussian noise (5% of level) and two
  one-day spikes (+120% and +150%); the row is the mean over seeds, with the range of coverage.

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


def evaluate(level: float = 0.8, seeds: int = SEEDS) -> pd.DataFrame:
    """One row per series: points, MAPE, MASE, rel_snaive, bias, coverage (and its range)."""
    rows = []
    cur = forecast_daily(cur_daily_spend(), horizon=7, level=level).backtest
    rows.append(_row("cur-2018-10 (31 d)", [cur]))
    demo = [forecast_daily(demo_like_series(s), horizon=7, level=level).backtest for s in range(seeds)]
    rows.append(_row(f"demo-like (120 d, {seeds} seeds)", demo))
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
    args = p.parse_args(argv)
    table = evaluate(args.level, args.seeds)
    print(f"{'series':<28} {'points':>6} {'MAPE':>7} {'MASE':>6} {'rel-sn':>6} {'bias':>7} {'cover':>6}  range")
    for r in table.itertuples(index=False):
        print(
            f"{r.series:<28} {r.points:>6} {r.mape:>7.1%} {r.mase:>6.3f} {r.rel_snaive:>6.3f} {r.bias:>+7.1%} "
            f"{r.coverage:>6.1%}  {r.coverage_min:.1%}-{r.coverage_max:.1%}"
        )
    print(f"targets: MASE < 1 against seasonal-naive; {args.level:.0%} interval coverage "
          f"{args.level - 0.05:.0%}-{args.level + 0.05:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
