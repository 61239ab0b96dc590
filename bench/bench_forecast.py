"""Forecast 500 cost dimensions: time and peak memory against a numpy baseline, same run.

    python -m bench.bench_forecast [--series 500] [--days 180] [--horizon 30]

Series are demo-like daily spend (``bench.forecast_eval.demo_like_series``) at scales from
$0.50 to $500 a day. Holdout: the last 7 days are hidden, both methods forecast
``--horizon`` days from the rest, and the 7 hidden days are scored (MAE over each series'
in-sample seasonal-naive MAE, averaged: a MASE).

* **pipepulse**: ``insights.forecast.forecast_daily`` per series (24 robust ETS configurations
  run at every origin, conformal intervals, its own rolling-origin backtest, month-end total).
* **baseline**: vectorised numpy over all series at once: seasonal-naive (period 7) means and
  an interval from the empirical quantiles of the last 28 seasonal differences.

Peak memory is ``tracemalloc``'s peak of Python + numpy allocations during each method
(measured in a second, untimed run).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import pandas as pd

from bench.forecast_eval import demo_like_series
from insights.forecast import forecast_daily


def make_series(count: int, days: int) -> list[pd.Series]:
    scales = np.geomspace(0.5 / 80, 500 / 80, count)
    return [demo_like_series(seed, days) * scales[seed] for seed in range(count)]


def baseline(matrix: np.ndarray, horizon: int, level: float = 0.8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seasonal-naive means with empirical-quantile intervals, for all series at once."""
    last_week = matrix[:, -7:]
    reps = -(-horizon // 7)
    mean = np.tile(last_week, reps)[:, :horizon]
    diffs = matrix[:, -28:] - matrix[:, -35:-7]
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2], axis=1)
    return mean, mean + lo[:, None], mean + hi[:, None]


def _measure(fn, repeat: int = 1):
    """(result, seconds, peak bytes): best of ``repeat`` untraced runs, then one more under
    tracemalloc (tracing slows allocation-heavy code several-fold, so one run cannot give both)."""
    elapsed = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        elapsed = min(elapsed, time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, elapsed, peak


def _mase(actual: np.ndarray, forecast: np.ndarray, train: np.ndarray) -> float:
    scale = np.mean(np.abs(train[:, 7:] - train[:, :-7]), axis=1)
    return float(np.mean(np.mean(np.abs(actual - forecast), axis=1) / scale))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--series", type=int, default=500)
    p.add_argument("--days", type=int, default=180)
    p.add_argument("--horizon", type=int, default=30)
    args = p.parse_args(argv)
    series = make_series(args.series, args.days)
    train = [s.iloc[:-7] for s in series]
    actual = np.vstack([s.iloc[-7:].to_numpy() for s in series])
    train_m = np.vstack([s.to_numpy() for s in train])

    ours, t_ours, m_ours = _measure(lambda: [forecast_daily(s, horizon=args.horizon) for s in train])
    base, t_base, m_base = _measure(lambda: baseline(train_m, args.horizon), repeat=20)  # ~1 ms: best of 20

    ours_mean = np.vstack([f.points["mean"].to_numpy()[:7] for f in ours])
    ours_lo = np.vstack([f.points["lower"].to_numpy()[:7] for f in ours])
    ours_hi = np.vstack([f.points["upper"].to_numpy()[:7] for f in ours])
    b_mean, b_lo, b_hi = (a[:, :7] for a in base)
    cover_ours = float(np.mean((actual >= ours_lo) & (actual <= ours_hi)))
    cover_base = float(np.mean((actual >= b_lo) & (actual <= b_hi)))
    print(f"{args.series} series x {args.days} days, horizon {args.horizon} d, holdout 7 d")
    print(f"{'method':<12} {'time s':>8} {'ms/series':>10} {'peak MiB':>9} {'holdout MASE':>13} {'80% cover':>10}")
    for name, t, m, mase, cov in (
        ("pipepulse", t_ours, m_ours, _mase(actual, ours_mean, train_m), cover_ours),
        ("baseline", t_base, m_base, _mase(actual, b_mean, train_m), cover_base),
    ):
        print(f"{name:<12} {t:>8.4f} {t / args.series * 1000:>10.4f} {m / 2**20:>9.1f} {mase:>13.3f} {cov:>10.1%}")
    print(f"ratio pipepulse/baseline: time {t_ours / t_base:.0f}x, peak memory {m_ours / m_base:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
