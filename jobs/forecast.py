"""Spend forecasts over the store: make and save snapshots, and score past ones.

``run`` forecasts the account's total daily spend and, for every pipeline with
a budget under ``[budgets.pipelines]``, that pipeline's tagged spend; each snapshot carries its
own backtest (MAPE, MASE, bias, coverage), the month-end total with its interval, the budget
and the day the budget is crossed. ``score_snapshots`` compares stored snapshots, ours
(method ``"pipepulse"``) and AWS's (``"aws"``, stored by the Cost Explorer collector), with
the spend that was actually billed.

Training data: ``store.costs.daily_cost`` (one source per day, billed cost) from
``history_days`` before ``now`` up to yesterday (today is incomplete), and without the last days
if their rows were all collected before those days ended (``store.costs.partial_days``: a
partial day would read as a drop); the forecast then starts on the first day left out. Days without cost rows
inside that range count as zero spend (a pipeline that did not run cost nothing); the CLI, which
reads a user's file, refuses gaps instead. Subjects with fewer than ``MIN_HISTORY`` days are
skipped with a log line.

Settings, ``[forecast]`` (all optional): ``level`` (0.8), ``horizon_days`` (30),
``history_days`` (400), ``settle_days`` (2: AWS restates the last days, so only days at least
this old are scored).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy.engine import Engine

from insights.forecast import MIN_HISTORY, Forecast, forecast_daily, score_forecasts
from pipepulse.errors import ConfigError
from pipepulse.settings import Settings, check_keys, opt
from store.costs import daily_cost, partial_days
from store.forecasts import points_to_score, save_snapshot

__all__ = [
    "METHOD",
    "ForecastOptions",
    "forecast_options",
    "score_snapshots",
    "snapshot_fields",
    "run",
    "spend_series",
]

log = logging.getLogger(__name__)
METHOD = "pipepulse"


@dataclass(frozen=True, kw_only=True)
class ForecastOptions:
    """The ``[forecast]`` settings."""

    level: float = 0.8
    horizon_days: int = 30
    history_days: int = 400
    settle_days: int = 2


def forecast_options(settings: Settings) -> ForecastOptions:
    """Parse ``[forecast]``; errors name the file and the key."""
    table = settings.section("forecast")
    label = settings.config_label
    check_keys(table, "forecast", label)
    level = float(opt(table, "level", (int, float), label, "forecast", default=0.8))
    if not 0 < level < 1:
        raise ConfigError(f"{label}: [forecast] level: expected a number between 0 and 1 (e.g. 0.8), got {level}")
    ints = {}
    for key, default, low in (("horizon_days", 30, 1), ("history_days", 400, MIN_HISTORY), ("settle_days", 2, 0)):
        v = opt(table, key, int, label, "forecast", default=default)
        if v < low:
            raise ConfigError(f"{label}: [forecast] {key}: expected a whole number >= {low}, got {v}")
        ints[key] = v
    return ForecastOptions(level=level, **ints)


def spend_series(conn, start: date, end: date, *, pipeline: str | None = None, service: str | None = None) -> pd.Series:
    """Billed spend per day from ``start`` to ``end`` (included), indexed by date; days without
    rows between the first and the last stored day are zero; empty when nothing is stored."""
    frame = daily_cost(conn, start, end, pipeline=pipeline, service=service)
    if frame.empty:
        return pd.Series(dtype=float)
    s = frame.groupby("day")["billed_cost"].sum()
    days = [d.date() for d in pd.date_range(min(s.index), max(s.index), freq="D")]
    return s.reindex(days, fill_value=0.0).astype(float)


def run(settings: Settings, engine: Engine, *, now: datetime) -> list[int]:
    """Forecast total spend (and each budgeted pipeline's), store the snapshots, return their ids."""
    options = forecast_options(settings)
    yesterday = now.date() - timedelta(days=1)
    start = yesterday - timedelta(days=options.history_days - 1)
    subjects: list[tuple[str, str | None, float | None]] = [("total", None, settings.budget_monthly)]
    subjects += [(f"pipeline:{name}", name, budget) for name, budget in sorted(settings.budgets_by_pipeline.items())]
    ids: list[int] = []
    with engine.connect() as conn:
        series = {subject: spend_series(conn, start, yesterday, pipeline=pipe) for subject, pipe, _ in subjects}
        partial = set(partial_days(conn, start, yesterday))
    complete_until = now.date()  # the first day not used: today, or the first of the last partial days
    while complete_until - timedelta(days=1) in partial:
        complete_until -= timedelta(days=1)
    for subject, _pipe, budget in subjects:
        history = series[subject]
        history = history[[d < complete_until for d in history.index]] if len(history) else history
        if len(history) < MIN_HISTORY:
            log.warning("forecast skipped", extra={"subject": subject, "days": len(history), "needed": MIN_HISTORY})
            continue
        fc = forecast_daily(history, horizon=options.horizon_days, level=options.level, budget=budget)
        with engine.begin() as conn:
            ids.append(save_snapshot(conn, created_at=now, method=METHOD, subject=subject, level=fc.level,
                                     points=fc.points, **snapshot_fields(fc)))
        log.info("forecast stored", extra={"subject": subject, "model": fc.model, "month_end": round(fc.month_end_mean, 2),
                                           "mae": fc.backtest.mae, "coverage": fc.backtest.coverage})
    return ids


def snapshot_fields(fc: Forecast) -> dict:
    """The ``forecast_snapshots`` columns of a forecast (besides method, subject, level)."""
    b = fc.backtest
    return {
        "train_start": fc.train_start,
        "train_end": fc.train_end,
        "mape": b.mape,
        "mase": b.mase,
        "bias": b.bias,
        "coverage": b.coverage,
        "backtest_points": b.points,
        "month_end_mean": fc.month_end_mean,
        "month_end_lower": fc.month_end_lower,
        "month_end_upper": fc.month_end_upper,
        "budget": fc.budget,
        "budget_cross_day": fc.budget_cross_day,
        "model": fc.model,
        "backtest_mae": b.mae,
        "mae_last_value": b.mae_last_value,
        "mae_seasonal_naive": b.mae_seasonal_naive,
    }


def score_snapshots(settings: Settings, engine: Engine, *, now: datetime, since: date | None = None) -> pd.DataFrame:
    """Score every stored snapshot (all methods) on the days now settled: one row per
    (method, subject) with snapshots, days, mae, mape, bias, coverage (``score_forecasts``).
    Subjects understood: ``total``, ``pipeline:<name>``, ``service:<name>``."""
    options = forecast_options(settings)
    until = now.date() - timedelta(days=options.settle_days)
    with engine.connect() as conn:
        points = points_to_score(conn, until=until, since=since)
        if points.empty:
            return score_forecasts(points, pd.DataFrame())
        first = min(points["day"])
        actual_rows = []
        for subject in sorted(points["subject"].unique()):
            kind, _, name = subject.partition(":")
            if subject == "total":
                s = spend_series(conn, first, until)
            elif kind == "pipeline" and name:
                s = spend_series(conn, first, until, pipeline=name)
            elif kind == "service" and name:
                s = spend_series(conn, first, until, service=name)
            else:
                log.warning("forecast subject not scored", extra={"subject": subject})
                continue
            actual_rows += [{"subject": subject, "day": d, "actual": v} for d, v in s.items()]
    return score_forecasts(points, pd.DataFrame(actual_rows, columns=["subject", "day", "actual"]))
