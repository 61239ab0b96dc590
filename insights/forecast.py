"""Daily spend forecast, chosen per series by its own rolling-origin backtest, with a prediction
interval and the backtest that scores it.

A user reads a spend forecast as "what will I pay", so it should not do worse than the two
forecasts anyone can make by hand: **last-value** ("same as yesterday") and **seasonal-naive**
("same as that weekday last week"). Method (pure numpy, one pass over the history, no clock):

* **Candidates** (``CANDIDATES``), each issuing forecasts 1..H days ahead from every origin:
  ``last-value``; ``seasonal-naive`` (weekly); ``regime-median`` (median of the last 7 days of
  the current regime, flat); ``weekly-median`` (for each weekday, the median of its last 4 values
  in the current regime, once it has ``WEEKLY_MIN`` (3) of them: a median of two is their mean,
  and one spike among them moved the weekday halfway to it; until then the regime median); ``robust-ets`` (additive exponential smoothing with a weekly seasonal
  and an optional damped trend, its smoothing constants chosen sequentially on a small grid;
  an innovation beyond ``CLIP`` robust scales is an outlier and teaches the state nothing);
  ``recent-median`` (median of the last 3 days: follows a change on its second day, and no
  single day moves it); ``combination``: at each origin, the mean of the others weighted by
  their own realised errors there (``combination_weights``: ``(best / own) ** COMBO_POWER``
  for the members within ``COMBO_TRIM`` times the best discounted MAE; exact members share the
  weight when one has been exact), a recurring charge added in full. Before any member has been
  scored it is last-value (what the procedure issues then), so it is scored from the same
  origins as the others, those early errors weighing ``COMBO_EARLY_WEIGHT`` (they are not its
  own doing; scored only from its first weights, it had skipped the early days, the hardest for
  every candidate, and was chosen on that). Combining forecasts
  often beats the best single member (the members' errors partly cancel); the combination is
  scored and chosen like any other candidate, so it is used only where its own realised error
  is the smallest.
* **Selection, per series and per origin, honest**: at every origin the candidate with the
  smallest mean absolute error over the errors *already realised* at that origin (horizons
  1..7, older errors discounted by ``SELECT_DECAY`` a day) issues the forecast. An error counts
  at most ``SELECT_CAP`` robust scales (after a two-day incident every candidate was wrong,
  last-value a day less: uncapped, that chose last-value and forecast the incident's level for
  the next week in 10 of 10 seeded series; capped, in 1). Errors of forecasts issued before the
  current regime was detected weigh ``OLD_WEIGHT``. Until a candidate has ``MIN_ERRORS``
  realised errors it cannot be chosen, and until any has, the forecast is last-value.
  Seasonal-naive is not eligible while the current regime is younger than a week (its values
  would come from before the change). On equal scores (a constant series) the medians come
  first (``_TIE_ORDER``: one odd day cannot move them), the combination last. So at every
  origin the forecast shown is the candidate whose realised error is at most the better
  simple forecast's (a test checks it origin by origin); over the *future* it can still lose. Every quantity at origin t depends only
  on the history up to t, so the backtest scores exactly the forecasts a user would have been
  shown (``rolling_evaluation``; a test checks that the forecast made from a history cut at t
  equals the backtest's at t). Choosing on past errors is not a guarantee: on a random walk,
  where last-value is the best forecast there is, it is chosen at about 60% of origins and the
  forecast's MAE ends 2-8% above last-value's (``bench.forecast_eval``, ``random-walk``).
* **Level shifts** (``_regimes``): a robust one-step predictor (level + weekly seasonal, robust
  scale) flags outliers beyond ``CLIP`` scales; ``SHIFT_DAYS`` (3) outliers in a row on the same
  side start a new regime on the first of them. The ETS states are rescaled to it (level,
  seasonal and scale times the ratio of the new days' median to what was predicted for them; a
  fall to zero restarts them), the medians only read the regime, and no forecast goes below the
  lowest value the regime has shown unless its weekly medians have fallen three weeks running
  (then the floor is zero). So a forecast follows a step up, a step down or a decommission
  from the third day of the new level; a one- or two-day spike (an incident, a fee) is an
  outlier and changes nothing. A fall is followed a day earlier: after ``HEDGE_DAYS`` (2)
  outliers in a row *below*, regime-median, weekly-median and robust-ets forecast the mean of
  those days (measured on ``bench.spend_shapes``: the week forecast on the day after a
  decommission or step down was the largest single loss against last-value; a two-day rise
  is as often an incident that ends, so rises still wait for the third day).
* **Calendar charges** (``_fees``): a one-day outlier (its neighbours are not outliers on the
  same side) is a candidate charge. A day of the month whose one-day outliers appear in at
  least ``FEE_MONTHS`` months, same sign, the latest occurrence included, is a recurring charge
  (month-start fees, support, reservations, monthly credits): the model candidates add the
  median of its last three amounts on that day of the month, and on no other day. A charge
  seen in one month only is a one-day outlier: it does not repeat.
* **Intervals**: the empirical quantiles of the procedure's own past h-step errors (the last
  ``WINDOW``), each divided by the robust scale at its origin (at least ``SCALE_FLOOR`` of the
  level: a flat week's tiny scale made the next change's errors enormous multiples of it) and
  multiplied by the scale now (a normalised split-conformal score), at a level that adapts to the misses already realised
  (adaptive conformal inference, Gibbs and Candes 2021, step ``ACI_GAMMA``). Horizons beyond
  what the history can score use the last scored one widened by ``sqrt(h / h_scored)``.
* **Month-end total**: month-to-date actuals plus the daily means; its interval ends are the
  sums of the daily ends (the exact quantile when daily errors are perfectly correlated, the
  widest dependence; empirical cumulative-error quantiles under-covered badly).
* **The current day is not an observation**: pass ``today`` and history on or after it is
  left out (a partial day would read as a drop); the forecast then starts with today.
* **Backtest figures**: MAE, and the MAE of last-value and seasonal-naive forecasts issued at
  the same origins for the same days; MASE is Hyndman's (MAE over the in-sample MAE of the
  one-step seasonal-naive); ``rel_mae_snaive`` = MAE / seasonal-naive's; **bias** =
  ``sum(forecast - actual) / sum(actual)``; **MAPE** skips zero actuals; **coverage** is the
  share of actuals inside the intervals.

Limits: one weekly season (no holidays); a change smaller than ``CLIP`` robust scales, or one
lasting under three days, is not a regime; a monthly charge is found on its day of the month
only (not "the last business day"); fewer than ``MIN_HISTORY`` days is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from pipepulse.errors import InputError

__all__ = [
    "CANDIDATES",
    "MIN_HISTORY",
    "Backtest",
    "Forecast",
    "budget_cross_day",
    "forecast_daily",
    "rolling_evaluation",
    "score_forecasts",
    "seasonal_naive",
]

PERIOD = 7
MIN_HISTORY = 14  # days: below this there is nothing to backtest against
INIT = 14  # days that initialise the robust states (their origins are never scored)
EARLY = PERIOD - 1  # first origin of the candidates that need no initial state
CLIP = 3.0  # innovations beyond CLIP robust scales are outliers (spikes, incidents, shifts)
SHIFT_DAYS = 3  # outliers in a row, on one side, that start a new regime
SCALE_LAMBDA = 0.1  # smoothing of the robust innovation scale
DETECT_ALPHA = 0.2  # level smoothing of the regime detector's predictor
DETECT_GAMMA = 0.1  # seasonal smoothing of the regime detector's predictor
FEE_MONTHS = 2  # months a day-of-month charge must be seen in before it is forecast
SELECT_DECAY = 0.9  # per day: weight of older errors in the model selection
SCALE_FLOOR = 0.05  # the conformal scale is at least this share of the level
SELECT_CAP = 6.0  # a realised error counts at most this many robust scales in the selection
OLD_WEIGHT = 0.1  # weight of errors of forecasts issued before the current regime was detected
WINDOW = 56  # past errors used for an interval (conformal window)
ACI_GAMMA = 0.05  # step of the adaptive conformal level (0 = fixed level)
MIN_ERRORS = 5  # realised errors needed before a model is chosen or an interval issued
DEFAULT_BACKTEST_HORIZON = 7
COMBO_POWER = 1.0  # combination weights: (best realised MAE / the member's) ** COMBO_POWER
COMBO_TRIM = 1.5  # members whose realised MAE exceeds COMBO_TRIM times the best's get no weight
WEEKLY_MIN = 3  # values of a weekday (in the regime) weekly-median needs; fewer: the regime median
HEDGE_DAYS = 2  # outliers below in a row after which the regime models forecast their level
_HEDGED = (2, 3, 4)  # regime-median, weekly-median, robust-ets
COMBO_EARLY_WEIGHT = 0.25  # weight of the combination's errors from before its first weights
SELECT_MARGIN = 0.0  # a model must beat the better simple forecast's realised MAE by this share

CANDIDATES = (
    "last-value", "seasonal-naive", "regime-median", "weekly-median", "robust-ets", "recent-median", "combination",
)
_COMBO = 6
_SNAIVE = 1
_MODELS = (2, 3, 4, 5)  # the candidates that add calendar charges
# on equal past errors (a constant series): the forecast that one odd day cannot move first
_TIE_ORDER = np.array([2, 5, 0, 1, 3, 4, 6])

_ALPHAS = (0.1, 0.25, 0.5, 0.8)
_TRENDS = ((0.0, 1.0), (0.05, 0.9))  # (beta, phi): none, damped
_GAMMAS = (0.0, 0.05, 0.2)


@dataclass(frozen=True)
class Backtest:
    """Rolling-origin backtest of the procedure that produced a forecast (every origin,
    horizons 1..``horizon``), beside last-value and seasonal-naive on the same points."""

    mape: float | None
    mase: float | None
    bias: float | None
    coverage: float | None
    rel_mae_snaive: float | None
    mae: float | None
    points: int
    horizon: int
    level: float
    mae_last_value: float | None = None
    mae_seasonal_naive: float | None = None

    @property
    def rel_mae_best(self) -> float | None:
        """MAE over the better of last-value's and seasonal-naive's (below 1 beats both)."""
        simple = [m for m in (self.mae_last_value, self.mae_seasonal_naive) if m is not None]
        if self.mae is None or not simple:
            return None
        best = min(simple)
        if best > 0:
            return self.mae / best
        return 1.0 if self.mae == 0 else None


@dataclass(frozen=True)
class Forecast:
    """A daily forecast: ``points`` has columns date, mean, lower, upper (one row a day).

    ``model`` is the candidate that issued it (one of ``CANDIDATES``); ``method`` says the same
    with its parameters; ``regime_start`` is the first day of the level the forecast follows;
    ``fee_days`` are the days of the month with a recurring charge in the forecast;
    ``left_out`` are the history's days on or after ``today`` (partial, not used)."""

    points: pd.DataFrame
    level: float
    method: str
    train_start: date
    train_end: date
    backtest: Backtest
    month_start: date
    month_end: date
    month_to_date: float
    month_end_mean: float
    month_end_lower: float
    month_end_upper: float
    budget: float | None = None
    budget_cross_day: date | None = None
    model: str = ""
    regime_start: date | None = None
    fee_days: tuple[int, ...] = ()
    left_out: tuple[date, ...] = ()


# ---- public functions --------------------------------------------------------------------------


def forecast_daily(
    history: pd.Series | pd.DataFrame,
    *,
    horizon: int = 0,
    level: float = 0.8,
    budget: float | None = None,
    backtest_horizon: int = DEFAULT_BACKTEST_HORIZON,
    today: date | None = None,
) -> Forecast:
    """Forecast daily spend ``horizon`` days ahead and to the end of the month (the month of
    the first forecast day, i.e. the day after the last day of history).

    ``history``: a Series indexed by day (dates or timestamps) or a frame with ``date`` and
    ``amount``; it must be complete (one value per day, no gaps) and at least ``MIN_HISTORY``
    days long. ``today``: the current (incomplete) day; history on or after it is left out.
    The points cover ``max(horizon, days left in the month)`` days.
    """
    y_series, left_out = _as_daily(history, today)
    if not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1 (e.g. 0.8), got {level}")
    if horizon < 0:
        raise InputError(f"horizon must be zero or more days, got {horizon}")
    y = y_series.to_numpy(dtype=float)
    n = len(y)
    days = [d.date() for d in y_series.index]
    last = days[-1]
    # the month forecast is the one the first forecast day falls in
    month_start = (last + timedelta(days=1)).replace(day=1)
    month_end = (pd.Timestamp(month_start) + pd.offsets.MonthEnd(0)).date()
    left = (month_end - last).days
    steps = max(horizon, left, 1)
    bt_h = max(1, min(backtest_horizon, steps))

    run = _pass(y, days[0], max(steps, bt_h), bt_h)
    idx = n - 1
    means = run.P[idx, :steps]
    aci = [_aci(run, h, level, ACI_GAMMA) for h in range(bt_h)]  # the backtest's intervals too
    adapted = [a[2][idx] if not np.isnan(a[2][idx]) else level for a in aci]
    lo_q, hi_q = _final_quantiles(run, steps, adapted, idx)
    # the interval always holds the mean
    lower = np.maximum(np.minimum(means + lo_q, means), run.low[idx])
    upper = np.maximum(means + hi_q, means)
    out_days = [last + timedelta(days=i + 1) for i in range(steps)]
    points = pd.DataFrame({"date": out_days, "mean": means, "lower": lower, "upper": upper})

    mtd = float(y[[i for i, d in enumerate(days) if d >= month_start]].sum())
    if left > 0:
        # comonotonic sum: the total's quantile when daily errors are perfectly correlated
        me_mean = mtd + float(means[:left].sum())
        me_lower = mtd + float(lower[:left].sum())
        me_upper = mtd + float(upper[:left].sum())
    else:
        me_mean = me_lower = me_upper = mtd
    cross = None
    if budget is not None:
        cross = budget_cross_day(
            pd.Series(y, index=days), points.set_index("date")["mean"], budget, month_start, month_end
        )
    model = CANDIDATES[int(run.choice[idx])]
    return Forecast(
        points=points,
        level=level,
        method=_describe(run, idx),
        train_start=days[0],
        train_end=last,
        backtest=_backtest(y, run, aci, level),
        month_start=month_start,
        month_end=month_end,
        month_to_date=mtd,
        month_end_mean=me_mean,
        month_end_lower=me_lower,
        month_end_upper=me_upper,
        budget=budget,
        budget_cross_day=cross,
        model=model,
        regime_start=days[int(run.regime[idx])],
        fee_days=tuple(sorted(int(k) for k in np.nonzero(run.fees[idx])[0])),
        left_out=left_out,
    )


def rolling_evaluation(
    history: pd.Series | pd.DataFrame,
    *,
    every: int = 7,
    horizon: int = 7,
    level: float = 0.8,
    first_origin: int = MIN_HISTORY - 1,
    today: date | None = None,
) -> pd.DataFrame:
    """The forecasts ``forecast_daily`` would have issued from origins ``first_origin``,
    ``first_origin + every``, ... (0-based day index), ``horizon`` days ahead, scored against
    the history: one row per (origin, day) with ``origin``, ``day``, ``h`` (1..horizon),
    ``actual``, ``mean``, ``lower``, ``upper``, ``model``, and the ``last_value`` and
    ``seasonal_naive`` forecasts for the same day. Every forecast uses only the days up to its
    origin (model choice and interval included). Days past the history are not rows."""
    y_series, _ = _as_daily(history, today)
    y = y_series.to_numpy(dtype=float)
    days = [d.date() for d in y_series.index]
    n = len(y)
    run = _pass(y, days[0], horizon, horizon)
    aci = [_aci(run, h, level, ACI_GAMMA) for h in range(horizon)]
    rows = []
    for t in range(first_origin, n - 1, every):
        # the interval exactly as forecast_daily would give it from a history ending at t
        levels = [float(a[2][t]) if not np.isnan(a[2][t]) else level for a in aci]
        lo_q, hi_q = _final_quantiles(run, horizon, levels, t)
        for h in range(min(horizon, n - 1 - t)):
            j = t + h + 1
            m = float(run.P[t, h])
            rows.append({
                "origin": days[t],
                "day": days[j],
                "h": h + 1,
                "actual": float(y[j]),
                "mean": m,
                "lower": float(max(min(m + lo_q[h], m), run.low[t])),
                "upper": float(max(m + hi_q[h], m)),
                "model": CANDIDATES[int(run.choice[t])],
                "last_value": float(y[t]),
                "seasonal_naive": float(y[j - PERIOD * math.ceil((h + 1) / PERIOD)]),
            })
    cols = ["origin", "day", "h", "actual", "mean", "lower", "upper", "model", "last_value", "seasonal_naive"]
    return pd.DataFrame(rows, columns=cols)


def budget_cross_day(
    actual: pd.Series, forecast_mean: pd.Series, budget: float, month_start: date, month_end: date
) -> date | None:
    """First day of the month whose cumulative spend (actuals, then forecast means) reaches
    ``budget``; None when the month ends below it. Both series are indexed by date."""
    parts = [actual[[d for d in actual.index if month_start <= d <= month_end]]]
    seen = set(parts[0].index)
    parts.append(forecast_mean[[d for d in forecast_mean.index if month_start <= d <= month_end and d not in seen]])
    path = pd.concat(parts).sort_index().cumsum()
    hit = path[path >= budget]
    return None if hit.empty else hit.index[0]


def score_forecasts(points: pd.DataFrame, actuals: pd.DataFrame) -> pd.DataFrame:
    """Score stored forecasts against what was spent.

    ``points``: ``method, subject, snapshot_id, day, mean, lower, upper`` (``lower``/``upper``
    may be empty, as for a forecast without an interval); ``actuals``: ``subject, day, actual``.
    Only days with an actual are scored. One row per (method, subject): ``snapshots``, ``days``
    (points scored), ``mae``, ``mape`` (zero actuals skipped), ``bias``
    (sum(forecast - actual) / sum(actual)), ``coverage`` (share inside the interval, over points
    that have one)."""
    cols = ["method", "subject", "snapshots", "days", "mae", "mape", "bias", "coverage"]
    if points.empty or actuals.empty:
        return pd.DataFrame(columns=cols)
    a = actuals.assign(day=pd.to_datetime(actuals["day"]).dt.date)
    p = points.assign(day=pd.to_datetime(points["day"]).dt.date).merge(a, on=["subject", "day"], how="inner")
    rows = []
    for (method, subject), g in p.groupby(["method", "subject"], sort=True):
        err = g["mean"].astype(float) - g["actual"].astype(float)
        nz = g["actual"] != 0
        total = float(g["actual"].sum())
        has = g["lower"].notna() & g["upper"].notna()
        inside = (g["actual"] >= g["lower"]) & (g["actual"] <= g["upper"])
        rows.append({
            "method": method,
            "subject": subject,
            "snapshots": int(g["snapshot_id"].nunique()),
            "days": len(g),
            "mae": float(err.abs().mean()),
            "mape": float((err[nz].abs() / g.loc[nz, "actual"].abs()).mean()) if nz.any() else None,
            "bias": float(err.sum() / total) if total else None,
            "coverage": float(inside[has].mean()) if has.any() else None,
        })
    return pd.DataFrame(rows, columns=cols)


def seasonal_naive(history: np.ndarray, horizon: int, period: int = PERIOD) -> np.ndarray:
    """The seasonal-naive forecast (the value one period earlier), the benchmark for MASE."""
    y = np.asarray(history, dtype=float)
    if len(y) < period:
        return np.full(horizon, y[-1])
    return np.array([y[len(y) - period + (h % period)] for h in range(horizon)])


# ---- regimes and calendar charges --------------------------------------------------------------


@dataclass
class _Regimes:
    start: np.ndarray  # (n,) first day of the regime in force after day t
    pred: np.ndarray  # (n,) one-step prediction of day t (NaN inside the initial window)
    side: np.ndarray  # (n,) +1 / -1 when day t was an outlier above / below, else 0
    scale: np.ndarray  # (n,) robust scale after day t
    level: np.ndarray  # (n,) level after day t
    shifts: dict[int, int]  # day a shift was detected -> first day of the new regime


def _initial_state(init: np.ndarray) -> tuple[float, np.ndarray, float]:
    """Level, weekly seasonal and robust scale from the first ``INIT`` days: a weekday's
    offset is the median of its two values and the level (so one spike moves nothing)."""
    w = len(init)
    level = float(np.median(init))
    season = np.zeros(PERIOD)
    if w >= 2 * PERIOD:
        for p in range(PERIOD):
            season[p] = float(np.median(np.r_[init[p::PERIOD], level])) - level
        season -= season.mean()
        level = float(np.median(init - season[np.arange(w) % PERIOD]))
    resid = init - level - season[np.arange(w) % PERIOD]
    diffs = np.abs(np.diff(resid))
    sig = 1.4826 * float(np.median(diffs)) / math.sqrt(2) if len(diffs) else 0.0
    return level, season, max(sig, _scale_floor(level, float(np.mean(np.abs(init)))))


def _scale_floor(level: float, mean_abs: float) -> float:
    # 1% of the level: a constant series (a reserved instance, a storage fee) still has a
    # scale, and changes under ~3% of it are not outliers
    return max(0.01 * abs(level), 1e-3 * mean_abs, 1e-9)


def _regimes(y: np.ndarray) -> _Regimes:
    """Causal level-shift detection: a robust level + weekly seasonal predictor; ``SHIFT_DAYS``
    outliers in a row on one side start a new regime (see the module docstring)."""
    n = len(y)
    w = min(INIT, n)
    level, season, sig = _initial_state(y[:w])
    start = np.zeros(n, dtype=int)
    pred = np.full(n, np.nan)
    side = np.zeros(n, dtype=int)
    scale = np.full(n, sig)
    levels = np.full(n, level)
    shifts: dict[int, int] = {}
    cum_abs = float(np.abs(y[:w]).sum())
    regime, run_side, run_len = 0, 0, 0
    for t in range(w, n):
        p = t % PERIOD
        pr = level + season[p]
        pred[t] = pr
        e = float(y[t]) - pr
        cum_abs += abs(float(y[t]))
        lim = CLIP * sig
        floor = _scale_floor(level, cum_abs / (t + 1))
        if abs(e) > lim:
            s = 1 if e > 0 else -1
            run_len = run_len + 1 if s == run_side else 1
            run_side = s
            side[t] = s
            if run_len >= SHIFT_DAYS:
                first = t - SHIFT_DAYS + 1
                new = y[first : t + 1]
                m_new, m_old = float(np.median(new)), float(np.median(pred[first : t + 1]))
                if m_old > 1e-9 and m_new > 0:
                    rho = m_new / m_old
                    level, season, sig = level * rho, season * rho, sig * rho
                else:  # to or from zero: start again from the new days
                    level, season = m_new, np.zeros(PERIOD)
                    sig = 1.4826 * float(np.median(np.abs(new - m_new)))
                sig = max(sig, _scale_floor(level, cum_abs / (t + 1)))
                regime, run_side, run_len = first, 0, 0
                shifts[t] = first
                start[t], scale[t], levels[t] = regime, sig, level
                continue
        else:
            run_side, run_len = 0, 0
            level += DETECT_ALPHA * e
            season[p] += DETECT_GAMMA * e
        # outliers grow the scale too (capped), so a noisier series widens rather than shifts
        sig = max((1 - SCALE_LAMBDA) * sig + SCALE_LAMBDA * min(abs(e), lim) / 0.8, floor)
        start[t], scale[t], levels[t] = regime, sig, level
    return _Regimes(start=start, pred=pred, side=side, scale=scale, level=levels, shifts=shifts)


def _fees(y: np.ndarray, reg: _Regimes, dom: np.ndarray, month: np.ndarray) -> np.ndarray:
    """(n, 32) the recurring day-of-month charge (amount, signed) that forecasts from origin t
    add on each day of the month (0: none). Only days confirmed by t count: day d is a one-day
    outlier when it is an outlier and d-1, d+1 are not outliers on its side."""
    n = len(y)
    fees = np.zeros((n, 32))
    seen: dict[int, list[tuple[int, int, float]]] = {}  # day of month -> (month, sign, amount)
    latest: dict[int, int] = {}  # day of month -> sign of its latest confirmed occurrence (0: normal)
    active = np.zeros(32)
    for t in range(1, n):
        d = t - 1  # confirmed now that day t is known
        if d >= INIT:
            s = int(reg.side[d])
            one_day = s != 0 and reg.side[d - 1] != s and reg.side[t] != s
            k = int(dom[d])
            latest[k] = s if one_day else 0
            if one_day:
                seen.setdefault(k, []).append((int(month[d]), s, float(y[d] - reg.pred[d])))
            hits = [(m, a) for m, sg, a in seen.get(k, []) if sg == latest[k]] if latest[k] else []
            months = {m for m, _ in hits}
            active[k] = float(np.median([a for _, a in hits[-3:]])) if len(months) >= FEE_MONTHS else 0.0
        fees[t] = active
    return fees


# ---- the candidates and the selection ----------------------------------------------------------


@dataclass
class _Pass:
    P: np.ndarray  # (n, H) forecast issued at origin t for t+h+1 (the chosen candidate's)
    E: np.ndarray  # (n, H) its error (actual - forecast), NaN where unknown
    F: np.ndarray  # (n, H, M) every candidate's forecasts
    scale: np.ndarray  # (n,) robust scale at each origin (normalises the conformal errors)
    choice: np.ndarray  # (n,) candidate chosen at each origin
    score: np.ndarray  # (n, M) each candidate's discounted realised MAE at each origin
    regime: np.ndarray  # (n,) first day of the regime at each origin
    low: np.ndarray  # (n,) lowest value an interval may reach from origin t
    fees: np.ndarray  # (n, 32) recurring charges by day of month at each origin
    ets_configs: list
    ets_choice: np.ndarray  # (n,) the ETS grid point used at each origin
    first_origin: int
    weights: np.ndarray | None = None  # (n, M-1) the combination's weights on the others


def _pass(y: np.ndarray, start: date, H: int, sel_h: int) -> _Pass:
    """Every candidate's forecasts from every origin, the sequential choice, the errors."""
    n = len(y)
    cal = pd.date_range(start, periods=n + H + 1, freq="D")
    dom = cal.day.to_numpy()
    month = (cal.year * 12 + cal.month).to_numpy()
    reg = _regimes(y)
    fees = _fees(y, reg, dom, month)
    M = len(CANDIDATES) - 1  # the combination is built from the others below
    F = np.full((n, H, M), np.nan)
    t_all = np.arange(n)
    hh = np.arange(H)
    J = t_all[:, None] + hh[None, :] + 1  # (n, H) target index
    ok = t_all >= EARLY

    # last-value and seasonal-naive
    F[ok, :, 0] = y[t_all[ok], None]
    lag = PERIOD * np.ceil((hh + 1) / PERIOD).astype(int)
    F[ok, :, 1] = y[J[ok] - lag[None, :]]

    # regime-median: the last (up to) 7 days of the regime
    win = t_all[:, None] - np.arange(PERIOD)[None, :]  # (n, 7)
    vals = np.where(win >= reg.start[:, None], y[np.clip(win, 0, None)], np.nan)
    med = np.nanmedian(vals, axis=1)
    F[ok, :, 2] = med[ok, None]

    # weekly-median: each target weekday's last (up to) 4 values inside the regime
    k4 = lag[None, :, None] + PERIOD * np.arange(4)[None, None, :]  # (1, H, 4)
    src = J[:, :, None] - k4  # (n, H, 4)
    wvals = np.where(src >= reg.start[:, None, None], y[np.clip(src, 0, None)], np.nan)
    enough = np.sum(~np.isnan(wvals), axis=2) >= WEEKLY_MIN
    with np.errstate(all="ignore"):
        wmed = np.where(enough, _nanmedian_last(wvals), med[:, None])
    F[ok, :, 3] = wmed[ok]

    # recent-median: the median of the last 3 days (follows a change on its second day, and
    # no single day moves it)
    r3 = np.where(win[:, :3] >= 0, y[np.clip(win[:, :3], 0, None)], np.nan)
    F[ok, :, 5] = np.nanmedian(r3[ok], axis=1)[:, None]

    # robust-ets
    ets, ets_choice, configs = _ets(y, reg, H)
    F[:, :, 4] = ets

    # a fall under way (the last HEDGE_DAYS days outliers below, not yet a regime): the regime
    # models forecast the level of those days. Only a fall: a rise of two days is as often an
    # incident that ends (bench.spend_shapes "incident") as a step up
    pend = _pending(reg)
    falling = (pend >= HEDGE_DAYS) & (reg.side < 0)
    if falling.any():
        recent = np.where(win[:, :HEDGE_DAYS] >= 0, y[np.clip(win[:, :HEDGE_DAYS], 0, None)], np.nan)
        new_level = np.nanmean(recent[falling], axis=1)
        for m in _HEDGED:
            F[falling, :, m] = new_level[:, None]

    # calendar charges on their day of the month, for the model candidates
    add = fees[t_all[:, None], dom[J]]  # (n, H)
    for m in _MODELS:
        F[:, :, m] += add

    # the floor: the lowest value the regime has shown, unless its weekly medians fall
    lows = np.empty(n)
    for t in range(n):
        lows[t] = y[t] if t == 0 or reg.start[t] != reg.start[t - 1] else min(lows[t - 1], y[t])
        if reg.start[t] != (reg.start[t - 1] if t else 0):
            lows[t] = y[reg.start[t] : t + 1].min()
    floor = np.where(_trending_down(y, reg.start), np.minimum(lows, 0.0), lows)
    F = np.maximum(F, floor[:, None, None])

    # errors of every candidate, realised at t + h + 1
    Ecand = _errors(y, F)

    # sequential selection on discounted realised MAE (horizons < sel_h); errors of forecasts
    # issued before the current regime was detected weigh OLD_WEIGHT
    norm = np.maximum(reg.scale, SCALE_FLOOR * np.abs(reg.level))
    detected = np.zeros(n, dtype=int)  # origin from which the current regime was known
    last = 0
    for t in range(n):
        if t in reg.shifts:
            last = t
        detected[t] = last
    base = _scores(Ecand, norm, reg, detected, sel_h)

    # the combination: the members' forecasts weighted by their own realised errors (known at t)
    W = combination_weights(base)  # (n, M)
    comb = np.full((n, H), np.nan)
    has_w = W.sum(axis=1) > 0
    with np.errstate(all="ignore"):
        comb[has_w] = np.einsum("thm,tm->th", np.nan_to_num(F[has_w]), W[has_w])
    # before any member is scored the procedure issues last-value, and so does the combination:
    # scored only from its first weights it skipped the early days, the hardest for every
    # candidate, and looked better than it was (on two CUR usage types, zeros after a one-day
    # charge, it was chosen at the first origin and its seasonal-naive member repeated the charge
    # a week later). Those last-value errors are not its own doing: they weigh COMBO_EARLY_WEIGHT
    early = ok & ~has_w
    comb[early] = F[early, :, 0]
    # a recurring charge is added in full: the simple members leave it out by design
    simple_w = W[:, 0] + W[:, _SNAIVE]
    comb += simple_w[:, None] * add
    F = np.concatenate([F, comb[:, :, None]], axis=2)
    Ecand = np.concatenate([Ecand, _errors(y, comb[:, :, None])], axis=2)
    score = _scores(Ecand, norm, reg, detected, sel_h)
    score[:, _COMBO] = _scores(Ecand, norm, reg, detected, sel_h,
                               origin_weight=np.where(early, COMBO_EARLY_WEIGHT, 1.0))[:, _COMBO]
    choice = np.zeros(n, dtype=int)
    for t in range(n):
        sc = np.where(np.isnan(score[t]), np.inf, score[t])
        if not np.isfinite(sc).any():
            continue  # last-value until a candidate has MIN_ERRORS realised errors
        best_simple = min(sc[0], sc[_SNAIVE])
        order = _TIE_ORDER
        k = int(order[int(np.argmin(sc[order]))])
        # a model replaces the better simple forecast only when its realised error is lower by
        # SELECT_MARGIN (selection noise: on a random walk the lucky model loses next week)
        if k not in (0, _SNAIVE) and np.isfinite(best_simple) and sc[k] > (1 - SELECT_MARGIN) * best_simple:
            k = 0 if sc[0] <= sc[_SNAIVE] else _SNAIVE
        choice[t] = k

    P = F[t_all, :, choice]
    E = Ecand[t_all, :, choice]
    low = np.minimum(np.minimum.accumulate(y), 0.0)
    return _Pass(P=P, E=E, F=F, scale=norm, choice=choice, score=score, regime=reg.start, low=low,
                 fees=fees, ets_configs=configs, ets_choice=ets_choice, first_origin=EARLY, weights=W)


def _pending(reg: _Regimes) -> np.ndarray:
    """(n,) outliers in a row on one side ending at day t that have not (yet) started a regime."""
    n = len(reg.side)
    out = np.zeros(n, dtype=int)
    for t in range(n):
        s = int(reg.side[t])
        if s == 0 or t in reg.shifts:
            continue
        out[t] = out[t - 1] + 1 if t and int(reg.side[t - 1]) == s and out[t - 1] else 1
    return out


def _errors(y: np.ndarray, F: np.ndarray) -> np.ndarray:
    """(n, H, M) errors (actual - forecast) of forecasts ``F`` issued at t for t + h + 1."""
    n, H, M = F.shape
    out = np.full((n, H, M), np.nan)
    for h in range(H):
        k = n - h - 1
        if k > 0:
            out[:k, h, :] = y[h + 1 : n, None] - F[:k, h, :]
    return out


def _scores(Ecand: np.ndarray, norm: np.ndarray, reg: _Regimes, detected: np.ndarray, sel_h: int,
            origin_weight: np.ndarray | None = None) -> np.ndarray:
    """(n, M) each candidate's discounted realised MAE at each origin (NaN: not eligible);
    ``origin_weight`` (n,) multiplies the weight of the errors of forecasts issued at each origin."""
    n, _, M = Ecand.shape
    t_all = np.arange(n)
    A = np.abs(Ecand[:, :sel_h, :])
    if SELECT_CAP:
        # an error counts at most SELECT_CAP robust scales: one incident, where every candidate
        # is wrong, must not decide the choice for the weeks after it
        A = np.minimum(A, SELECT_CAP * norm[:, None, None])
    # what is realised at each t (origin t - h - 1, horizon h), weighted, summed over horizons
    add_num = np.zeros((n, M))
    add_den = np.zeros((n, M))
    add_raw = np.zeros((n, M))
    for h in range(min(sel_h, n)):
        tt = t_all[h + 1 :]
        a = A[: n - h - 1, h]  # origins 0 .. n-h-2, realised at tt
        has = ~np.isnan(a)
        wgt = np.where(tt - h - 1 >= detected[tt], 1.0, OLD_WEIGHT)[:, None]
        if origin_weight is not None:
            wgt = wgt * origin_weight[: n - h - 1, None]
        add_num[tt] += wgt * np.where(has, a, 0.0)
        add_den[tt] += wgt * has
        add_raw[tt] += has
    raw_all = np.cumsum(add_raw, axis=0)
    num = np.zeros(M)
    den = np.zeros(M)
    score = np.full((n, M), np.nan)
    shift_at = np.zeros(n, dtype=bool)
    shift_at[list(reg.shifts)] = True
    for t in range(n):
        decay = SELECT_DECAY * (OLD_WEIGHT if shift_at[t] else 1.0)
        num = decay * num + add_num[t]
        den = decay * den + add_den[t]
        with np.errstate(all="ignore"):
            sc = np.where((raw_all[t] >= MIN_ERRORS) & (den > 0), num / den, np.nan)
        if t - reg.start[t] < PERIOD - 1:
            sc[_SNAIVE] = np.nan  # its values would come from before the regime began
        score[t] = sc
    return score


def combination_weights(scores: np.ndarray, power: float | None = None, trim: float | None = None) -> np.ndarray:
    """Weights of the combination forecast from the members' realised errors ``scores``
    ((n, M) discounted MAE, NaN: not eligible): ``(best / score) ** power`` for the members
    within ``trim`` times the best score, normalised to sum 1 per row; when the best score is
    zero (a member has been exact), the exact members share the weight; a row without an
    eligible member is all zero."""
    power = COMBO_POWER if power is None else power
    trim = COMBO_TRIM if trim is None else trim
    sc = np.asarray(scores, dtype=float)
    ok = ~np.isnan(sc)
    best = np.where(ok, sc, np.inf).min(axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        rel = np.where(ok, sc / best, np.inf)
        w = np.where(rel <= trim, rel ** -power, 0.0)
        exact = ok & (sc <= 0)
        w = np.where(best <= 0, exact.astype(float), w)
    w = np.where(np.isfinite(best), w, 0.0)
    tot = w.sum(axis=1, keepdims=True)
    return np.where(tot > 0, w / np.where(tot > 0, tot, 1.0), 0.0)


def _nanmedian_last(a: np.ndarray) -> np.ndarray:
    """``np.nanmedian(a, axis=-1)`` without its warnings on all-NaN rows."""
    s = np.sort(a, axis=-1)  # NaN last
    cnt = np.sum(~np.isnan(a), axis=-1)
    lo = np.clip((cnt - 1) // 2, 0, None)
    hi = np.clip(cnt // 2, 0, None)
    v_lo = np.take_along_axis(s, lo[..., None], axis=-1)[..., 0]
    v_hi = np.take_along_axis(s, hi[..., None], axis=-1)[..., 0]
    return np.where(cnt > 0, (v_lo + v_hi) / 2, np.nan)


def _trending_down(y: np.ndarray, start: np.ndarray) -> np.ndarray:
    """(n,) the regime's last three weekly medians fall, each by more than 2%."""
    n = len(y)
    out = np.zeros(n, dtype=bool)
    if n < 3 * PERIOD:
        return out
    week = np.full(n, np.nan)
    week[PERIOD - 1 :] = np.median(np.lib.stride_tricks.sliding_window_view(y, PERIOD), axis=1)  # y[t-6..t]
    t = np.arange(3 * PERIOD - 1, n)
    w0, w1, w2 = week[t], week[t - PERIOD], week[t - 2 * PERIOD]
    out[t] = (t - start[t] + 1 >= 3 * PERIOD) & (w0 < 0.98 * w1) & (w1 < 0.98 * w2)
    return out


def _grid() -> list:
    return [(a, t, g) for g in _GAMMAS for t in _TRENDS for a in _ALPHAS]


def _ets(y: np.ndarray, reg: _Regimes, H: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Robust ETS forecasts (n, H) from origins ``INIT - 1`` on (NaN before), with its grid
    point chosen sequentially by the realised absolute errors at horizons < 7."""
    n = len(y)
    configs = _grid()
    G = len(configs)
    alpha = np.array([c[0] for c in configs])
    beta = np.array([c[1][0] for c in configs])
    phi = np.array([c[1][1] for c in configs])
    gamma = np.array([c[2] for c in configs])
    out = np.full((n, H), np.nan)
    default = configs.index((0.25, _TRENDS[0], 0.05))
    choice = np.full(n, default)
    if n < INIT:
        return out, choice, configs
    w = INIT
    level0, season0, sig0 = _initial_state(y[:w])
    L = np.empty((n, G))
    B = np.empty((n, G))
    S = np.empty((n, G, PERIOD))
    YH = np.full((n, G), np.nan)
    lev = np.full(G, level0)
    b = np.zeros(G)
    s = np.tile(season0, (G, 1))
    sig = np.full(G, sig0)
    rows = np.arange(G)
    first = w - 1
    cum_abs = float(np.abs(y[:w]).sum())
    L[first], B[first], S[first] = lev, b, s
    for t in range(w, n):
        p = t % PERIOD
        yhat = lev + phi * b + s[:, p]
        YH[t] = yhat
        e = y[t] - yhat
        lim = CLIP * sig
        ec = np.where(np.abs(e) > lim, 0.0, e)  # an outlier teaches the state nothing
        lev = lev + phi * b + alpha * ec
        b = phi * b + beta * ec
        s[rows, p] = s[rows, p] + gamma * ec
        sig = np.maximum((1 - SCALE_LAMBDA) * sig + SCALE_LAMBDA * np.minimum(np.abs(e), lim) / 0.8, 1e-9)
        if t in reg.shifts:
            # a new regime: the states move to it (ratio of the new days to their predictions)
            f0 = reg.shifts[t]
            new = y[f0 : t + 1]
            m_new = float(np.median(new))
            m_old = np.median(YH[f0 : t + 1], axis=0)
            good = (m_old > 1e-9) & (m_new > 0)
            rho = np.where(good, m_new / np.where(good, m_old, 1.0), 0.0)
            lev = np.where(good, lev * rho, m_new)
            s = np.where(good[:, None], s * rho[:, None], 0.0)
            sig = np.where(good, sig * rho, reg.scale[t])
            b = np.zeros(G)
        cum_abs += abs(float(y[t]))
        sig = np.maximum(sig, np.maximum(0.01 * np.abs(lev), max(1e-3 * cum_abs / (t + 1), 1e-9)))
        L[t], B[t], S[t] = lev, b, s

    damp = np.cumsum(phi[None, :] ** np.arange(1, H + 1)[:, None], axis=0)  # (H, G)
    Fg = np.full((n, H, G), np.nan)
    idx = np.arange(first, n)
    for h in range(H):
        pos = (idx + h + 1) % PERIOD
        Fg[first:, h, :] = L[first:] + damp[h] * B[first:] + S[first:][np.arange(n - first), :, pos]

    # the grid point: smallest cumulative realised absolute error (horizons < 7)
    realised = np.zeros((n, G))
    seen = np.zeros(n)
    for h in range(min(H, DEFAULT_BACKTEST_HORIZON)):
        k = n - h - 1
        if k <= first:
            continue
        err = np.abs(y[first + h + 1 : n, None] - Fg[first:k, h, :])
        tt = np.arange(first, k) + h + 1
        np.add.at(realised, tt, err)
        np.add.at(seen, tt, 1)
    score = np.cumsum(realised, axis=0)
    count = np.cumsum(seen)
    choice = np.where(count >= MIN_ERRORS, np.argmin(score, axis=1), default)
    out[first:] = Fg[idx, :, choice[first:]]
    return out, choice, configs


def _describe(run: _Pass, t: int) -> str:
    model = CANDIDATES[int(run.choice[t])]
    extra = []
    if model == "combination" and run.weights is not None:
        w = run.weights[t]
        extra.append(", ".join(f"{CANDIDATES[k]} {w[k]:.2f}" for k in np.argsort(-w) if w[k] > 0))
    if model == "robust-ets":
        alpha, (beta, _phi), gamma = run.ets_configs[int(run.ets_choice[t])]
        extra.append(f"alpha={alpha}, trend={'damped' if beta else 'none'}, gamma={gamma}")
    fee_days = [str(k) for k in np.nonzero(run.fees[t])[0]]
    if fee_days and int(run.choice[t]) in (*_MODELS, _COMBO):
        extra.append(f"monthly charge on day {', '.join(fee_days)}")
    return f"{model}({'; '.join(extra)})" if extra else model


# ---- intervals and the backtest ----------------------------------------------------------------


def _rank_quantiles(errors: np.ndarray, level: float) -> tuple[float, float]:
    """Interval ends from past errors: their empirical (1-level)/2 and (1+level)/2 quantiles
    (numpy's "median_unbiased", Hyndman and Fan type 8, written out: np.quantile's overhead
    dominated once the level adapts per origin; the same numbers, see the tests)."""
    tail = (1 - level) / 2
    v = sorted(errors.tolist())
    m = len(v)
    out = []
    for q in (tail, 1 - tail):
        x = min(max(m * q + (1 + q) / 3 - 1, 0.0), m - 1)
        i = int(x)
        j = min(i + 1, m - 1)
        out.append(v[i] + (x - i) * (v[j] - v[i]))
    return out[0], out[1]


def _aci(run: _Pass, h: int, level: float, gamma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adaptive conformal intervals for horizon index ``h`` at every origin.

    The interval at origin t is the rank quantile of the past errors (``_past_errors``), each
    divided by the robust scale at its own origin, times the scale at t (a normalised
    conformal score: wide while the series is turbulent, narrow in calm weeks), at a level that
    adapts to the misses already realised (Gibbs and Candes 2021): after each outcome the
    miscoverage level moves by ``gamma * (target - missed)``. Returns (lo, hi, level used)
    per origin, as errors (actual - forecast); NaN where too few errors exist yet."""
    E, first = run.E, run.first_origin
    Z = E / run.scale[:, None]
    n = E.shape[0]
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    used = np.full(n, np.nan)
    target = 1 - level
    a = target
    for t in range(first, n):
        done = t - h - 1  # the origin whose outcome was realised by time t
        if done >= first and not np.isnan(lo[done]) and not np.isnan(E[done, h]):
            missed = not (lo[done] <= E[done, h] <= hi[done])
            a = a + gamma * (target - missed)
        past = _past_errors(Z, h, t)
        if len(past) >= MIN_ERRORS:
            eff = min(max(1 - a, 0.5), 0.99)
            z_lo, z_hi = _rank_quantiles(past, eff)
            lo[t], hi[t] = z_lo * run.scale[t], z_hi * run.scale[t]
            used[t] = eff
    return lo, hi, used


def _past_errors(E: np.ndarray, h: int, t: int) -> np.ndarray:
    """Errors at horizon index h of forecasts whose target (origin + h + 1) is <= t."""
    col = E[: max(t - h, 0), h]
    col = col[~np.isnan(col)]
    return col[-WINDOW:]


def _final_quantiles(run: _Pass, steps: int, levels: list[float], t: int) -> tuple[np.ndarray, np.ndarray]:
    """Intervals of the forecast issued at ``t`` (as errors, scaled like ``_aci``'s):
    ``levels[h]`` is horizon h's adapted level; horizons past the last one given use the last."""
    E = run.E / run.scale[:, None]
    lo = np.empty(steps)
    hi = np.empty(steps)
    scored = None
    for h in range(steps):
        if h < E.shape[1]:
            past = _past_errors(E, h, t)
            if len(past) >= MIN_ERRORS:
                z_lo, z_hi = _rank_quantiles(past, levels[min(h, len(levels) - 1)])
                lo[h], hi[h] = z_lo * run.scale[t], z_hi * run.scale[t]
                scored = h
                continue
        if scored is None:
            raise InputError(
                f"history too short to estimate forecast errors: need at least {MIN_HISTORY} days"
            )
        f = math.sqrt((h + 1) / (scored + 1))
        lo[h], hi[h] = lo[scored] * f, hi[scored] * f
    return lo, hi


def _backtest(y: np.ndarray, run: _Pass, aci: list, level: float) -> Backtest:
    """Score the forecasts issued at every origin from ``MIN_HISTORY - 1`` with the intervals
    ``aci[h]`` (``_aci``), beside last-value and seasonal-naive on the same points."""
    bt_h = len(aci)
    n = len(y)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("fc", "act", "lo", "hi", "sn", "lv")}
    for h in range(bt_h):
        ts = np.arange(MIN_HISTORY - 1, n - 1 - h)
        if len(ts) == 0:
            continue
        a_lo, a_hi, _ = aci[h]
        q_lo, q_hi = a_lo[ts], a_hi[ts]
        keep = ~np.isnan(q_lo)
        ts, q_lo, q_hi = ts[keep], q_lo[keep], q_hi[keep]
        m = run.P[ts, h]
        parts["fc"].append(m)
        parts["act"].append(y[ts + h + 1])
        parts["lo"].append(np.maximum(np.minimum(m + q_lo, m), run.low[ts]))
        parts["hi"].append(np.maximum(m + q_hi, m))
        parts["sn"].append(y[ts + h + 1 - PERIOD * math.ceil((h + 1) / PERIOD)])
        parts["lv"].append(y[ts])
    fc, act, lo, hi, sn, lv = (np.concatenate(v) if v else np.empty(0) for v in parts.values())
    if len(fc) == 0:
        return Backtest(None, None, None, None, None, None, 0, bt_h, level)
    err = fc - act
    mae = float(np.mean(np.abs(err)))
    nz = act != 0
    mape = float(np.mean(np.abs(err[nz] / act[nz]))) if bool(np.any(nz)) else None
    scale = float(np.mean(np.abs(y[PERIOD:] - y[:-PERIOD]))) if n > PERIOD else 0.0
    sn_mae = float(np.mean(np.abs(sn - act)))
    total = float(act.sum())
    return Backtest(
        mape=mape,
        mase=mae / scale if scale > 0 else None,
        bias=float(err.sum() / total) if total else None,
        coverage=float(np.mean((act >= lo) & (act <= hi))),
        rel_mae_snaive=mae / sn_mae if sn_mae > 0 else None,
        mae=mae,
        points=len(fc),
        horizon=bt_h,
        level=level,
        mae_last_value=float(np.mean(np.abs(lv - act))),
        mae_seasonal_naive=sn_mae,
    )


def _as_daily(history: pd.Series | pd.DataFrame, today: date | None = None) -> tuple[pd.Series, tuple[date, ...]]:
    if isinstance(history, pd.DataFrame):
        missing = {"date", "amount"} - set(history.columns)
        if missing:
            raise InputError(f"history needs columns date and amount; missing {sorted(missing)}")
        s = pd.Series(history["amount"].to_numpy(dtype=float), index=history["date"])
    else:
        s = history.astype(float)
    s.index = pd.DatetimeIndex(pd.to_datetime(s.index)).normalize()
    s = s.sort_index()
    left_out: tuple[date, ...] = ()
    if today is not None:
        late = s.index >= pd.Timestamp(today)
        left_out = tuple(d.date() for d in s.index[late])
        s = s[~late]
    if s.index.has_duplicates:
        dup = s.index[s.index.duplicated()][0].date()
        raise InputError(f"history has two values for {dup}; give one amount per day")
    if s.isna().any():
        raise InputError(f"history has no amount for {s.index[s.isna()][0].date()}")
    if len(s) < MIN_HISTORY:
        note = f" (before {today}; the current day is left out)" if left_out else ""
        raise InputError(f"history too short: {len(s)} days{note}; a forecast needs at least {MIN_HISTORY} days")
    full = pd.date_range(s.index[0], s.index[-1], freq="D")
    if len(full) != len(s):
        gap = full.difference(pd.DatetimeIndex(s.index))[0].date()
        raise InputError(f"history is missing {gap} (and {len(full) - len(s) - 1} more day(s)); give every day")
    return s, left_out
