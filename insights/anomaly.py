"""Online anomaly detection for metric series, pipeline run aggregates and daily cost.

One detector family serves every kind of series pipepulse watches (CloudWatch metrics at 5
minutes, per-pipeline duration / throughput / failure rate per hour, daily cost per dimension).
It is *online*: the flag and score of point ``t`` depend only on points ``<= t``; scanning a
prefix of a series gives exactly the same output for those points (tests prove it).

How a point is judged, for every *scale* ``s`` (1 = the point itself, 12 = the mean of the last
hour at 5 minutes, ...):

1. **Local baseline**: the median of the ``max(L, 2s)`` points before the window (planned
   points count as the last value before them). A median follows a level shift after half its
   span, so a new normal stops being anomalous by itself.
2. **Learned threshold**: the deviation ``|mean of window - baseline|`` must exceed
   ``sensitivity x`` the ``quantile`` of the same deviations over the last ``history`` points,
   refreshed every ``refresh`` points. Left out of that history: planned points and deviations
   that were already beyond the threshold when they happened, so an incident is not learnt as
   normal and the next one like it is still flagged. Noisy series thus get wide bands and
   quiet ones narrow bands, with no per-series tuning.
3. **Seasonal gate** (when there are at least ``min_cycles`` earlier cycles, e.g. days): the
   window mean must also fall outside the seasonal envelope: the median over earlier cycles of
   the max (min) of the windowed series within +-``season_window`` of the same phase, widened by
   ``season_margin`` robust spreads across cycles. A daily batch spike at 03:00 +- 30 minutes is
   therefore normal, the same spike at 17:00 is not. ``also_periods`` adds gates (e.g. weekly
   beside daily for pipeline runs): the point must fall outside each envelope that has an
   earlier cycle, so a quiet weekend hour is normal when last week's weekend was as quiet.
4. **Floors**: the deviation must also exceed ``abs_floor`` (dollars, records, seconds) and
   ``rel_floor x |baseline|``, so tiny changes on tiny lines never alert.

Besides the scales, an optional **seasonal path** (``season_sensitivity``): the widest scale's
mean against its median at the same time of day on earlier days (from the second day on), with
its own learned threshold the same way. It finds a daily pattern that changed shape (a peak
missing, a flat day) where the local baseline sees nothing unusual.

And an optional **record path** (``record_margin``): the point itself against the range of
every earlier point of the scan (planned points left out), flagged when it is beyond the
highest (lowest) value seen by more than ``record_margin`` x that range. A value never seen
before is what most labelled incidents of NAB's series have in common even where the local
baseline is noisy (a slow drift up to a failure, a busy day beyond every earlier one); the
margin keeps the ordinary small new records of a series that is still filling its range quiet.

Every step is a vectorised pass over the whole series (rolling medians, quantiles at the refresh
points, seasonal look-ups), so a month of 5-minute points scans in a few hundredths of a second
and a parameter search can cache the per-series parts (``_features``) and vary the rest
(``_decide``).

A point is anomalous when any scale (or the seasonal path) passes all of the above; what was
judged there, its expected value, band and the reason it is outside (``reason``) come from the
path that put it furthest outside (the record path only where no other path flagged the point:
expected is then the nearest edge of the range seen so far, the band that range widened by the
margin on both sides). Reported detections
(``is_anomaly``) mark the onset of an incident: an anomalous point is reported only when none of
the ``suppress`` points before it was anomalous, so an incident that keeps flaring is one alert
(its later points are still scored, ``anomalous`` and ``score >= 0.5``).

``score`` is ``1 - 2 ** -r`` where ``r`` is the largest deviation-to-threshold ratio (capped
just below 1 for scales the seasonal gate or a floor rejected): 0.5 exactly at the threshold.

Limits: values must be finite (drop missing points before scanning); the seasonal gate uses
one period (daily for intraday data, weekly for daily data); the first ``warmup`` points are
never flagged; a baseline is a median, so a shift shows as anomalous for about half the
baseline's span (one report); the record path's range is that of the points scanned (``pipepulse
detect`` scans 14 days of metrics, so a value is a record against those 14 days).

Extending: a new kind of series needs only a ``DetectorConfig`` (``DetectorConfig.for_step``
picks sensible time-based defaults for the sampling interval) and, for reporting, ``events``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "RECORD",
    "STEP_POINTS",
    "AnomalyEvent",
    "DetectorConfig",
    "ScanResult",
    "events",
    "fingerprint",
    "onsets",
    "outside_text",
    "planned_mask",
    "reason",
    "scan",
    "scan_frame",
    "scan_matrix",
    "severity_of",
]

SEVERITY_RATIOS = ((6.0, "critical"), (3.0, "high"), (1.5, "medium"))
_BELOW = 0.999  # ratio cap for a scale that the seasonal gate or a floor rejected
DAY = 86_400.0
STEP_POINTS = 13  # points the default sampling step is read from
_CHUNK_CELLS = 4_000_000  # cells of the widest intermediate array per chunk of rows

# Intraday defaults (``DetectorConfig.for_step``: CloudWatch metrics, ``pipepulse anomalies
# scan``), as spans of time with the least number of points each may be. Chosen with one
# search on 47 labelled NAB series of seven kinds (bench/nab_loco.py; the search and its
# leave-one-category-out check are in bench/README.md): the mean of the last 2 hours and the
# point itself, each against the median of the 2 hours before, and the 2-hour mean against
# its usual range at that time of day, must pass 1.5 x the largest such deviation of the last
# 14 days (deviations that were anomalies left out); or the point must be beyond every earlier
# one by 3% of their range (the record path, from the fifth day on; its margin was searched
# with the rest, its warm-up set by hand: see ``INTRADAY["record_warmup"]``). The 14 days are
# not searched: they are what the scheduled ``pipepulse detect`` reads (``lookback_days``).
INTRADAY: dict[str, float] = {
    "scale": 2 * 3600.0,  # the second scale: the mean of the last 2 hours (0: the point only)
    "baseline": 2 * 3600.0,  # the local median is taken over this much before the window
    "history": 14 * DAY,  # the learned threshold looks back this far (what ``pipepulse detect`` scans)
    "warmup": 2 * DAY,  # no flags before two days of history (a record is easy to set early on)
    "suppress": 6 * 3600.0,  # quiet time needed before a new incident is reported
    "season_window": 3600.0,  # +- around the same time of day
    # the record path flags nothing before four days: the range of a series still filling it
    # grows by small records (on white noise most records fall in its first days). Not
    # searched: on the NAB files 3, 4 and 5 days score the same on nab-more, 4 and 5 days
    # 0.46 higher than 2 or 3 on nab-aws; white noise draws fewer flags the later it starts.
    "record_warmup": 4 * DAY,
}
_LEAST = {"scale": 3, "baseline": 6, "history": 48, "warmup": 12, "suppress": 1, "season_window": 1, "record_warmup": 12}
INTRADAY_QUANTILE = 1.0  # the largest past deviation (not an anomaly) ...
INTRADAY_SENSITIVITY = 1.5  # ... times this
INTRADAY_SEASON_MARGIN = 3.0
INTRADAY_SEASON_SENSITIVITY = 1.5  # the seasonal path, as sensitive as the others
# the record path: beyond every earlier value by 3% of their range (bench/README.md)
INTRADAY_RECORD_MARGIN = 0.03
RECORD = 1_000_000  # ``ScanResult.cause`` of the record path
# Run aggregates (``DetectorConfig.for_runs``): the spans checked on the demo's incidents.
RUN_SPANS: dict[str, float] = {"scale": 3 * 3600.0, "baseline": 6 * 3600.0, "history": 3 * DAY, "warmup": DAY,
                               "suppress": 12 * 3600.0, "season_window": 3600.0}
MIN_WINDOWS = 24  # a scale's learned threshold needs this many of its windows of history
# the learned thresholds are recomputed every 7 hours (72 times a history span when the span was
# 21 days; kept at 7 hours when it became 14: recomputed every 4 h 40 min, white noise drew 1.7
# flags per 14 days instead of 1.35, both at a 5% record margin)
REFRESH = 7 * 3600.0


@dataclass(frozen=True, kw_only=True)
class DetectorConfig:
    """Parameters of the detector, in points of the series (see ``for_step``)."""

    scales: tuple[int, ...] = (1, 12)
    baseline: int = 12  # L: clean points the local median is taken over
    history: int = 864  # points the learned threshold looks back over
    quantile: float = 0.99
    sensitivity: float = 2.0  # threshold = sensitivity x quantile of past deviations
    warmup: int = 288
    refresh: int = 12  # recompute learned thresholds every this many points
    suppress: int = 144  # quiet points needed before a new incident is reported
    period_seconds: float | None = DAY  # seasonality; None switches the gate off
    also_periods: tuple[float, ...] = ()  # more seasonal gates (e.g. weekly for run series)
    season_cycles: int = 7
    min_cycles: int = 2
    season_window: int = 12  # +- points around the same phase
    season_margin: float = 3.0
    # the seasonal path: the widest scale's mean against its median at the same time of day
    # in earlier cycles, judged by its own learned quantile x this (None: off)
    season_sensitivity: float | None = None
    # the record path: the point beyond the range of every earlier point by this share of that
    # range (None: off)
    record_margin: float | None = None
    record_warmup: int = 0  # the record path flags nothing before this point (nor the warm-up)
    abs_floor: float = 0.0
    rel_floor: float = 0.0
    direction: str = "both"  # both | up | down

    def __post_init__(self) -> None:
        if not self.scales or min(self.scales) < 1:
            raise ValueError("scales must be positive whole numbers of points")
        if not 0 < self.quantile <= 1:
            raise ValueError(f"quantile must be in (0, 1], got {self.quantile}")
        if self.sensitivity <= 0:
            raise ValueError(f"sensitivity must be positive, got {self.sensitivity}")
        if self.record_margin is not None and not self.record_margin >= 0:
            raise ValueError(f"record_margin must not be negative, got {self.record_margin}")
        if self.direction not in {"both", "up", "down"}:
            raise ValueError(f"direction must be both, up or down, got {self.direction!r}")
        for name in ("baseline", "history", "refresh", "season_cycles", "min_cycles"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if any(not p > 0 for p in self.also_periods):
            raise ValueError(f"also_periods must be positive seconds, got {self.also_periods}")
        for name in ("warmup", "suppress", "season_window", "abs_floor", "rel_floor", "record_warmup"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @classmethod
    def for_step(cls, step_seconds: float, *, seconds: Mapping[str, float] | None = None, **overrides: Any) -> DetectorConfig:
        """Time-based defaults for a series sampled every ``step_seconds``.

        Intraday (under a day): the spans of ``INTRADAY`` (``seconds`` replaces some of them)
        in points of the series, each with a least number of points, daily seasonality from
        the second day on. Daily or coarser: one-week baseline, weekly seasonality on the
        same weekday, 8 weeks of history. ``overrides`` set fields in points.
        """
        step = float(step_seconds)
        if step <= 0:
            raise ValueError("step_seconds must be positive")
        base: dict[str, Any]
        if step < DAY:
            span = {**INTRADAY, **(seconds or {})}
            unknown = sorted(set(span) - set(INTRADAY))
            if unknown:
                raise ValueError(f"unknown span {unknown[0]!r}; known: {', '.join(sorted(INTRADAY))}")

            def pts(name: str) -> int:
                return max(_LEAST[name], int(round(span[name] / step)))

            base = dict(
                scales=tuple(sorted({1, pts("scale")})) if span["scale"] > 0 else (1,),
                baseline=pts("baseline"),
                history=pts("history"),
                warmup=pts("warmup"),
                refresh=max(1, int(round(REFRESH / step))),
                suppress=pts("suppress"),
                period_seconds=DAY,
                min_cycles=1,  # yesterday around the same hour already tells a daily job
                season_window=pts("season_window"),
                quantile=INTRADAY_QUANTILE,
                sensitivity=INTRADAY_SENSITIVITY,
                season_margin=INTRADAY_SEASON_MARGIN,
                season_sensitivity=INTRADAY_SEASON_SENSITIVITY,
                record_margin=INTRADAY_RECORD_MARGIN,
                record_warmup=pts("record_warmup"),
            )
        else:
            base = dict(
                scales=(1,),
                baseline=7,
                history=56,
                warmup=14,
                refresh=1,
                suppress=3,
                period_seconds=7 * DAY,
                season_cycles=4,
                min_cycles=3,
                season_window=0,
            )
        base.update(overrides)
        return cls(**base)


    @classmethod
    def for_runs(cls, step_seconds: float, **overrides: Any) -> DetectorConfig:
        """Defaults for a pipeline's run aggregates sampled every ``step_seconds`` (duration and
        records per run per hour, a per-run metric): ``RUN_SPANS``, the 99th percentile, no
        seasonal or record path. These series are the project's own (checked on the demo's injected
        incidents, bench/demo_eval.py), not CloudWatch's; ``overrides`` set fields in points."""
        base: dict[str, Any] = dict(seconds=RUN_SPANS, quantile=0.99, sensitivity=2.0, season_sensitivity=None, season_margin=3.0,
                                    record_margin=None)
        base.update(overrides)
        return cls.for_step(step_seconds, **base)


@dataclass(frozen=True)
class ScanResult:
    """Per-point output of a scan over ``n`` points (arrays of shape ``(n,)`` or ``(series, n)``)."""

    score: np.ndarray  # 0..1
    is_anomaly: np.ndarray  # reported detections (onsets), bool
    anomalous: np.ndarray  # every point judged anomalous, bool
    expected: np.ndarray  # baseline of what was judged (see ``judged``)
    lower: np.ndarray  # its band: baseline -+ threshold
    upper: np.ndarray
    ratio: np.ndarray  # deviation / threshold, the best scale
    # What was judged at each point: at an anomalous point, the path that put it furthest
    # outside its band (``cause``: s > 0 the mean of the last s points against the median of
    # the points before them, -s the same mean against the same time of day in earlier
    # cycles, ``RECORD`` the value against the range of every earlier value; ``reason`` words
    # it); elsewhere the point itself against its local baseline (0).
    judged: np.ndarray
    cause: np.ndarray


def scan(
    values: Sequence[float] | np.ndarray,
    timestamps: Sequence | np.ndarray | pd.Series,
    config: DetectorConfig | None = None,
    *,
    excluded: np.ndarray | None = None,
) -> ScanResult:
    """Scan one series online. ``excluded`` marks planned points (never flagged, never learnt).

    Without ``config``, defaults come from ``DetectorConfig.for_step`` with the sampling step
    read from the first 13 points only, which are inside every warm-up, so the choice never
    depends on later points."""
    x = np.asarray(values, dtype=float)[None, :]
    ts = _epoch_seconds(timestamps)
    cfg = config or DetectorConfig.for_step(_step(ts[:STEP_POINTS]))
    ex = None if excluded is None else np.asarray(excluded, dtype=bool)[None, :]
    r = scan_matrix(x, ts, cfg, excluded=ex)
    return ScanResult(*(getattr(r, f)[0] for f in ScanResult.__dataclass_fields__))


def scan_frame(
    frame: pd.DataFrame,
    config: DetectorConfig | None = None,
    *,
    planned: Iterable[tuple[datetime, datetime]] = (),
    time_col: str = "timestamp",
    value_col: str = "value",
) -> pd.DataFrame:
    """``frame`` (one series, sorted by time) plus ``expected, lower, upper, score, is_anomaly,
    anomalous, ratio, judged, cause`` (see ``ScanResult``); points inside ``planned`` windows
    are neither flagged nor learnt."""
    out = frame.copy()
    if out.empty:
        for c in ("expected", "lower", "upper", "score", "ratio", "judged"):
            out[c] = pd.Series(dtype=float)
        out["cause"] = pd.Series(dtype=int)
        out["is_anomaly"] = pd.Series(dtype=int)
        out["anomalous"] = pd.Series(dtype=bool)
        return out
    ts = pd.to_datetime(out[time_col], utc=True)
    mask = planned_mask(ts, planned)
    r = scan(out[value_col].to_numpy(float), ts, config, excluded=mask)
    out["expected"], out["lower"], out["upper"] = r.expected, r.lower, r.upper
    out["score"], out["ratio"] = r.score, r.ratio
    out["judged"], out["cause"] = r.judged, r.cause
    out["is_anomaly"] = r.is_anomaly.astype(int)
    out["anomalous"] = r.anomalous
    return out


def planned_mask(timestamps: pd.Series | pd.DatetimeIndex, planned: Iterable[tuple[datetime, datetime]]) -> np.ndarray:
    """True for points inside any ``[start, end)`` planned window (maintenance, backfill)."""
    ts = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True))
    mask = np.zeros(len(ts), dtype=bool)
    for start, end in planned:
        a, b = pd.Timestamp(start), pd.Timestamp(end)
        a = a.tz_localize("UTC") if a.tzinfo is None else a
        b = b.tz_localize("UTC") if b.tzinfo is None else b
        mask |= np.asarray((ts >= a) & (ts < b))
    return mask


def scan_matrix(
    x: np.ndarray,
    timestamps: np.ndarray,
    config: DetectorConfig,
    *,
    excluded: np.ndarray | None = None,
) -> ScanResult:
    """Scan many series that share one time axis (``x`` of shape ``(series, n)``), vectorised
    over series and time; rows are taken in chunks so memory stays bounded."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError("x must be 2-D: (series, points)")
    if not np.isfinite(x).all():
        raise ValueError("values must be finite; drop missing points before scanning")
    m, n = x.shape
    ts = _epoch_seconds(timestamps)
    if len(ts) != n:
        raise ValueError(f"{len(ts)} timestamps for {n} points")
    # Points are taken in arrival order; a clock that steps back (real exports have such
    # lines) is read as "no later than the latest time seen", which keeps the scan online.
    ts = np.maximum.accumulate(ts) if n else ts
    ex = np.zeros((m, n), dtype=bool) if excluded is None else np.broadcast_to(excluded, (m, n)).copy()
    # the widest intermediates per row: the baseline windows (n x L) and the learned
    # threshold's histories (one of `history` points per refresh)
    per_row = max(n * max(max(config.baseline, 2 * s) for s in config.scales), (n // config.refresh + 1) * config.history, 1)
    rows = max(1, _CHUNK_CELLS // per_row)
    parts = [_decide(_features(x[i : i + rows], ts, config, ex[i : i + rows]), config) for i in range(0, m, rows)]
    if len(parts) == 1:
        return parts[0]
    return ScanResult(*(np.concatenate([getattr(p, f) for p in parts]) for f in ScanResult.__dataclass_fields__))


@dataclass(frozen=True)
class _Scale:
    """What one scale contributes, all online: the windowed mean ``z``, the local baseline
    ``base`` it is compared with, the learned deviation quantile ``q`` in force at each point
    (inf before the warm-up), and the seasonal envelopes ``(mU, mL, sU, sL, cycles)``."""

    s: int
    z: np.ndarray
    base: np.ndarray
    q: np.ndarray
    gates: list[tuple[tuple[np.ndarray, ...], int]]
    seasonal: bool = False  # the seasonal path: ``base`` is the same phase in earlier cycles
    record: bool = False  # the record path: ``base`` the nearest edge of the earlier range, ``q`` its width
    edges: tuple[np.ndarray, np.ndarray] | None = None  # the record path: that range (lowest, highest)


@dataclass(frozen=True)
class _Features:
    scales: list[_Scale]
    ex: np.ndarray


def _features(x: np.ndarray, ts: np.ndarray, cfg: DetectorConfig, ex: np.ndarray) -> _Features:
    """Everything ``_decide`` needs that does not depend on the sensitivity, margins, floors,
    direction or suppression (a parameter search computes this once per series)."""
    m, n = x.shape
    xs = _carry_forward(x, ex, cfg.baseline)  # planned points count as the level before them
    out = []
    for s in sorted(set(cfg.scales)):
        z = _window_means(xs, s)
        base = _baseline(xs, s, max(cfg.baseline, 2 * s))
        dev = np.abs(z - base)
        q = _learned(dev, ex, cfg, cfg.sensitivity, s)
        daily = _envelope(z, ts, cfg)
        gates = [(daily, cfg.min_cycles)]
        gates += [(_one_cycle_spread(_envelope(z, ts, replace(cfg, period_seconds=p)), daily), 1) for p in cfg.also_periods]
        out.append(_Scale(s, z, base, q, gates))
    if cfg.season_sensitivity is not None and cfg.period_seconds is not None:
        out.append(_seasonal(out[-1].z, out[-1].gates[0][0], ex, cfg, out[-1].s))
    if cfg.record_margin is not None:
        out.append(_record(xs, ex, cfg.record_warmup))
    return _Features(out, ex)


def _record(xs: np.ndarray, ex: np.ndarray, warmup: int = 0) -> _Scale:
    """The record path: each point against the range of every earlier point (planned points
    left out): ``base`` is the nearest edge of that range (the point itself inside it), ``q``
    its width (inf until two points were seen, and before ``warmup``)."""
    m, n = xs.shape
    hi = np.maximum.accumulate(np.where(ex, -np.inf, xs), axis=1)
    lo = np.minimum.accumulate(np.where(ex, np.inf, xs), axis=1)
    seen = np.cumsum(~ex, axis=1)
    # what was seen before each point
    hi = np.concatenate([np.full((m, 1), -np.inf), hi[:, :-1]], axis=1)
    lo = np.concatenate([np.full((m, 1), np.inf), lo[:, :-1]], axis=1)
    seen = np.concatenate([np.zeros((m, 1), dtype=seen.dtype), seen[:, :-1]], axis=1)
    enough = (seen >= 2) & (np.arange(n) >= warmup)
    base = np.where(enough, np.clip(xs, np.where(enough, lo, 0.0), np.where(enough, hi, 0.0)), np.nan)
    q = np.where(enough, hi - lo, np.inf)
    return _Scale(1, xs, base, q, [], record=True, edges=(lo, hi))


def _seasonal(z: np.ndarray, env: tuple[np.ndarray, ...], ex: np.ndarray, cfg: DetectorConfig, s: int) -> _Scale:
    """The seasonal path of scale ``s``: how far ``z`` is outside its seasonal envelope ``env``
    (``_envelope``: the usual range within +-``season_window`` of the same time of day on
    earlier days, from the second earlier day on; 0 inside it, so a job that runs a little
    early or late is normal), with its own learned quantile."""
    mU, mL, _, _, cnt = env
    base = np.where(cnt >= 2, np.clip(z, mL, mU), np.nan)  # the nearest edge of the usual range
    q = _learned(np.abs(z - base), ex, cfg, cfg.season_sensitivity or cfg.sensitivity, s)
    return _Scale(s, z, base, q, [], seasonal=True)


def _window_means(xs: np.ndarray, s: int) -> np.ndarray:
    """Trailing means of ``s`` points (fewer at the start); the values themselves for ``s == 1``."""
    if s == 1:
        return xs.copy()
    m, n = xs.shape
    csum = np.concatenate([np.zeros((m, 1)), np.cumsum(xs, axis=1)], axis=1)
    idx = np.arange(n)
    lo = np.maximum(idx - s + 1, 0)
    return (csum[:, idx + 1] - csum[:, lo]) / (idx + 1 - lo)


def _baseline(xs: np.ndarray, s: int, L: int) -> np.ndarray:
    """Median of the ``L`` points before each trailing window of ``s`` points (NaN until
    there are that many)."""
    m, n = xs.shape
    out = np.full((m, n), np.nan)
    first = s + L - 1
    if n <= first:
        return out
    win = sliding_window_view(xs[:, : n - s], L, axis=1)  # window k covers k .. k+L-1
    h = L // 2
    if L % 2:
        med = np.partition(win, h, axis=2)[:, :, h]
    else:
        p = np.partition(win, (h - 1, h), axis=2)
        med = (p[:, :, h - 1] + p[:, :, h]) / 2
    out[:, first:] = med
    return out


def _learned(dev: np.ndarray, ex: np.ndarray, cfg: DetectorConfig, sensitivity: float, s: int = 1) -> np.ndarray:
    """The learned quantile in force at each point: the ``quantile`` of the deviations over the
    ``history`` points before each refresh point (every ``refresh`` points from the warm-up
    on), held until the next refresh; inf before the first. The warm-up of a scale ``s`` is at
    least ``MIN_WINDOWS`` windows of it: the means of overlapping windows are few independent
    samples, and a threshold learnt from too few is easy to pass on noise alone.

    Left out of the history: planned points, points without a baseline, and deviations that
    were beyond ``sensitivity`` x the quantile in force when they happened (taken without this
    exclusion, so all of it is one vectorised pass more, not a loop over time): an incident is
    not learnt as normal, so the next one like it is still flagged."""
    start = max(cfg.warmup, MIN_WINDOWS * s, 1)
    plain = _rolling_quantile(dev, ex, cfg, start)
    with np.errstate(invalid="ignore"):
        over = dev > sensitivity * plain
    return _rolling_quantile(dev, ex | over, cfg, start)


def _rolling_quantile(dev: np.ndarray, drop: np.ndarray, cfg: DetectorConfig, start: int) -> np.ndarray:
    m, n = dev.shape
    out = np.full((m, n), np.inf)
    points = np.arange(start, n, cfg.refresh)
    if len(points) == 0:
        return out
    H = min(cfg.history, n)  # a history longer than the series holds the same points
    pad = np.concatenate([np.full((m, H), np.nan), np.where(drop, np.nan, dev)], axis=1)
    hist = sliding_window_view(pad, H, axis=1)[:, points]  # (m, refreshes, H): dev[t-H .. t-1]
    vals = _quantile_rows(hist.reshape(-1, H), np.isnan(hist.reshape(-1, H)), cfg.quantile).reshape(m, len(points))
    held = np.searchsorted(points, np.arange(n), side="right") - 1
    ok = held >= 0
    out[:, ok] = vals[:, held[ok]]
    return out


def _decide(f: _Features, cfg: DetectorConfig, *, explain: bool = True) -> ScanResult:
    """Flags, scores and bands from the features: the cheap, per-point part of the scan.

    ``explain=False`` (a parameter search) computes the flags only; the other arrays of the
    result are then zeros."""
    ex = f.ex
    m, n = ex.shape
    best = np.zeros((m, n))
    anomalous = np.zeros((m, n), dtype=bool)
    expected, lower, upper, judged = (np.full((m, n), np.nan) for _ in range(4))
    cause = np.zeros((m, n), dtype=np.int64)
    passed = np.zeros((m, n))  # the largest ratio of a path that flagged the point
    warm = np.arange(n) >= cfg.warmup
    up_ok = cfg.direction in ("both", "up")
    down_ok = cfg.direction in ("both", "down")
    for sc in f.scales:
        if sc.record:
            thr = np.where(np.isfinite(sc.q), (cfg.record_margin or 0.0) * sc.q, np.inf)  # margin 0: 0 x inf
        else:
            thr = (cfg.season_sensitivity if sc.seasonal and cfg.season_sensitivity is not None else cfg.sensitivity) * sc.q
        dev = sc.z - sc.base
        d = np.abs(dev)
        valid = np.isfinite(d)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(thr > 0, d / thr, np.where(d > 0, np.inf, 0.0))
        r = np.where(np.isfinite(thr) & valid & warm, r, 0.0)
        ok = r > 1.0
        ok &= (dev > 0) & up_ok | (dev < 0) & down_ok
        ok &= (d > cfg.abs_floor) & (d > cfg.rel_floor * np.abs(sc.base))
        for (mU, mL, sU, sL, cnt), min_cycles in sc.gates:
            seasonal = cnt >= min_cycles
            outside = (sc.z > mU + cfg.season_margin * sU) | (sc.z < mL - cfg.season_margin * sL)
            ok &= ~seasonal | outside
        if sc.record:
            # the record path (last) explains and scores only the points no other path flagged:
            # a spike's band around its local baseline says more than the edge of the range
            ok &= ~anomalous
        anomalous |= ok
        if not explain:
            continue
        best = np.maximum(best, np.where(ok, r, 0.0 if sc.record else np.minimum(r, _BELOW)))
        take = ok & (r > passed)
        if sc.s == 1 and not sc.seasonal and not sc.record:
            take |= ~anomalous  # the point's own band until a path flags it
        passed = np.where(ok, np.maximum(passed, r), passed)
        judged = np.where(take, sc.z, judged)
        expected = np.where(take, sc.base, expected)
        lo, hi = sc.edges if sc.edges is not None else (sc.base, sc.base)
        with np.errstate(invalid="ignore"):  # the record path before it has a range: inf - inf
            lower, upper = np.where(take, lo - thr, lower), np.where(take, hi + thr, upper)
        code = RECORD if sc.record else -sc.s if sc.seasonal else sc.s
        cause = np.where(take & ok, code, np.where(take, 0, cause))
    anomalous &= ~ex
    cause = np.where(anomalous, cause, 0)
    best = np.where(ex, np.minimum(best, _BELOW), best)
    score = np.where(np.isfinite(best), 1.0 - np.exp2(-best), 1.0)
    reported = onsets(anomalous, cfg.suppress)
    return ScanResult(score, reported, anomalous, expected, lower, upper, best, judged, cause)


def onsets(anomalous: np.ndarray, suppress: int) -> np.ndarray:
    """The onsets of incidents along the last axis: an anomalous point after at least
    ``suppress`` points with no anomaly at all (a burst of bursts is one incident, one alert)."""
    idx = np.arange(anomalous.shape[-1])
    seen = np.maximum.accumulate(np.where(anomalous, idx, -(10**9)), axis=-1)
    before = np.concatenate([np.full((*anomalous.shape[:-1], 1), -(10**9)), seen[..., :-1]], axis=-1)
    return anomalous & (idx - before > suppress)


def _carry_forward(x: np.ndarray, ex: np.ndarray, span: int) -> np.ndarray:
    """``x`` with excluded cells replaced by the median of the ``span`` points up to the last
    earlier non-excluded one (one noisy value held over a long planned window would bend every
    window mean that covers it); a row that starts excluded keeps its values until then."""
    if not ex.any():
        return x
    m, n = x.shape
    span = max(1, min(span, n))
    pad = np.concatenate([np.repeat(x[:, :1], span - 1, axis=1), x], axis=1)
    med = np.median(sliding_window_view(pad, span, axis=1), axis=2)  # med[:, t]: x[t-span+1 .. t]
    idx = np.where(~ex, np.arange(n)[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = np.take_along_axis(med, idx, axis=1)
    return np.where(~ex | (ex & (idx == 0) & ex[:, :1]), x, out)


def _quantile_rows(h: np.ndarray, drop: np.ndarray, q: float) -> np.ndarray:
    """Per-row ``q`` quantile (linear) of ``h`` ignoring NaN and dropped cells; inf when empty."""
    if h.shape[1] == 0:
        return np.full(h.shape[0], np.inf)
    h = np.where(drop, np.nan, h)
    c = np.sum(~np.isnan(h), axis=1)
    if q == 1.0:  # the largest value: what the partition below would read, without it
        with np.errstate(invalid="ignore"):
            top = np.fmax.reduce(h, axis=1)
        return np.where(c >= 2, top, np.inf)
    pos = q * np.maximum(c - 1, 0)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, np.maximum(c - 1, 0))
    frac = pos - lo
    rr = np.arange(h.shape[0])
    # Only the order statistics at lo and hi are read: partitioning at those (NaN go last, as
    # in a sort) gives the same values as a full sort, far cheaper over long histories.
    ks = np.unique(np.concatenate([lo, hi]))
    srt = np.partition(h, ks, axis=1) if len(ks) <= 64 else np.sort(h, axis=1)
    val = srt[rr, lo] * (1 - frac) + srt[rr, hi] * frac
    return np.where(c >= 2, val, np.inf)


def _one_cycle_spread(env: tuple[np.ndarray, ...], main: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """An extra gate's envelope (``also_periods``, e.g. weekly) where it has one earlier cycle
    only: one cycle gives no spread across cycles (0), so its band would be that cycle's own
    min/max, and a quiet weekend hour 2.5% below last Saturday's was flagged (the demo, with the
    14 days ``pipepulse detect`` reads: every judged point has one earlier week). There it takes
    the main gate's spread at the same point (the same quantity over the daily cycles), when
    larger; from two cycles on, its own."""
    mU, mL, sU, sL, cnt = env
    one = cnt == 1
    sU = np.where(one, np.fmax(sU, main[2]), sU)
    sL = np.where(one, np.fmax(sL, main[3]), sL)
    return mU, mL, sU, sL, cnt


def _envelope(z: np.ndarray, ts: np.ndarray, cfg: DetectorConfig):
    """Seasonal envelope of ``z`` at each point from earlier cycles only: median across cycles
    of the windowed max/min around the same phase, the robust spread of those, and how many
    cycles were available."""
    m, n = z.shape
    if cfg.period_seconds is None or n == 0:
        nan = np.full((m, n), np.nan)
        return nan, nan, nan, nan, np.zeros((m, n), dtype=int)
    w = cfg.season_window
    if w > 0:
        pad = np.pad(z, ((0, 0), (w, w)), mode="edge")
        win = sliding_window_view(pad, 2 * w + 1, axis=1)
        mx, mn = win.max(axis=2), win.min(axis=2)
    else:
        mx, mn = z, z
    K = cfg.season_cycles
    Ms = np.full((K, m, n), np.nan)
    Ns = np.full((K, m, n), np.nan)
    pos = np.arange(n)
    for j in range(1, K + 1):
        target = ts - j * cfg.period_seconds
        # nearest point at or after the same phase, its window wholly before t, and not off the
        # start of the series (where the window would be truncated)
        i = np.searchsorted(ts, target - 1e-6)
        ok = (target >= ts[0]) & (i + w < pos) & (i - w >= 0)
        if w == 0:
            ok &= (i < n) & (np.abs(ts[np.minimum(i, n - 1)] - target) < 0.5 * cfg.period_seconds / max(K, 1))
        i = np.clip(i, 0, n - 1)
        Ms[j - 1] = np.where(ok, mx[:, i], np.nan)
        Ns[j - 1] = np.where(ok, mn[:, i], np.nan)
    cnt = np.sum(~np.isnan(Ms), axis=0)
    mU, mL = _nanmedian0(Ms, cnt), _nanmedian0(Ns, cnt)
    sU = 1.4826 * _nanmedian0(np.abs(Ms - mU), cnt)
    sL = 1.4826 * _nanmedian0(np.abs(Ns - mL), cnt)
    return mU, mL, sU, sL, cnt


def _nanmedian0(a: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN (``cnt`` valid values per cell; NaN where none).

    The axis is short (one entry per earlier cycle), so it is sorted with a sorting network of
    elementwise min/max over whole slices (NaN read as +inf, so it goes last as in ``np.sort``;
    only the first ``cnt`` positions are read): the same values as ``np.sort(a, axis=0)``, and
    far cheaper than numpy sorting millions of 7-element columns one by one."""
    k = a.shape[0]
    srt = np.where(np.isnan(a), np.inf, a)
    for rnd in range(k):  # odd-even transposition sort: k rounds sort k values
        for i in range(rnd % 2, k - 1, 2):
            low = np.minimum(srt[i], srt[i + 1])
            np.maximum(srt[i], srt[i + 1], out=srt[i + 1])
            srt[i] = low
    lo = np.clip((cnt - 1) // 2, 0, k - 1)[None]
    hi = np.clip(cnt // 2, 0, k - 1)[None]
    med = 0.5 * (np.take_along_axis(srt, lo, 0)[0] + np.take_along_axis(srt, hi, 0)[0])
    return np.where(cnt > 0, med, np.nan)


def _epoch_seconds(timestamps) -> np.ndarray:
    if isinstance(timestamps, np.ndarray) and timestamps.dtype.kind in "fi":
        return timestamps.astype(float)
    idx = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True))
    return np.asarray((idx - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1), dtype=float)


def _step(ts: np.ndarray) -> float:
    if len(ts) < 2:
        return 300.0
    d = np.diff(ts)
    d = d[d > 0]
    return float(np.median(d)) if len(d) else 300.0


# ---- incidents -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AnomalyEvent:
    """One incident: a run of anomalous points (gaps up to ``gap`` points merged)."""

    window_start: pd.Timestamp
    window_end: pd.Timestamp
    observed: float  # what was judged at the peak: the value, or the mean of a window
    expected: float
    lower: float
    upper: float
    score: float
    ratio: float
    severity: str
    direction: str  # up | down
    points: int
    reason: str = ""  # why the peak is outside its band (``reason``)


def severity_of(ratio: float) -> str:
    """low / medium / high / critical from the deviation-to-threshold ratio."""
    if not math.isfinite(ratio):
        return "critical"
    for bound, name in SEVERITY_RATIOS:
        if ratio >= bound:
            return name
    return "low"


def reason(cause: int, direction: str, *, step_seconds: float, config: DetectorConfig | None = None) -> str:
    """Why a point with this ``ScanResult.cause`` is outside its band, in words.

    >>> reason(12, "up", step_seconds=300)
    'the mean of the last 1 h is above its band around the median of the points before it'
    """
    if cause == 0:
        return ""
    side = "above" if direction == "up" else "below"
    if cause == RECORD:
        edge = "highest" if direction == "up" else "lowest"
        return f"the value is {side} its band around the {edge} value seen before it"
    s = abs(int(cause))
    what = "the value" if s == 1 else f"the mean of the last {_span_text(s * step_seconds)}"
    if cause < 0:
        return f"{what} is {side} its band around the same time of day on earlier days"
    before = "the points before it"
    if config is not None:
        before = f"the {_span_text(max(config.baseline, 2 * s) * step_seconds)} before it"
    return f"{what} is {side} its band around the median of {before}"


def outside_text(observed: float | None, lower: float | None, upper: float | None) -> str:
    """How far ``observed`` is outside ``[lower, upper]``, in words ("" when inside or unknown).

    >>> outside_text(130.0, 80.0, 120.0)
    '10 above the upper edge 120'
    """
    vals = [observed, lower, upper]
    if any(v is None or not math.isfinite(float(v)) for v in vals):
        return ""
    o, lo, hi = (float(v) for v in vals)  # type: ignore[arg-type]
    if o > hi:
        return f"{o - hi:,.4g} above the upper edge {hi:,.4g}"
    if o < lo:
        return f"{lo - o:,.4g} below the lower edge {lo:,.4g}"
    return ""


def _span_text(seconds: float) -> str:
    if seconds >= DAY and seconds % DAY == 0:
        return f"{seconds / DAY:g} d"
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min"


def events(scanned: pd.DataFrame, *, gap: int = 0, time_col: str = "timestamp", value_col: str = "value",
           config: DetectorConfig | None = None) -> list[AnomalyEvent]:
    """Group the anomalous points of a ``scan_frame`` output into incidents, oldest first.

    Each incident's figures are those of its peak (the largest deviation-to-threshold ratio):
    what was judged there (``judged``: the value or a window's mean), its expected value and
    band, and the reason it is outside (``config`` names the baseline's span in it)."""
    if scanned.empty or not scanned["anomalous"].any():
        return []
    pos = np.flatnonzero(scanned["anomalous"].to_numpy())
    groups: list[list[int]] = [[int(pos[0])]]
    for p in pos[1:]:
        if p - groups[-1][-1] <= gap + 1:
            groups[-1].append(int(p))
        else:
            groups.append([int(p)])
    ts = pd.to_datetime(scanned[time_col], utc=True).to_numpy()
    step = _step(_epoch_seconds(scanned[time_col]))
    out = []
    for g in groups:
        part = scanned.iloc[g]
        ratio = part["ratio"].to_numpy(float)
        k = int(np.argmax(np.where(np.isfinite(ratio), ratio, np.finfo(float).max)))
        peak = part.iloc[k]
        judged = peak["judged"] if "judged" in part else np.nan
        observed = float(judged) if np.isfinite(judged) else float(peak[value_col])
        exp = float(peak["expected"])
        up = observed >= exp
        cause = int(peak["cause"]) if "cause" in part else 0
        out.append(
            AnomalyEvent(
                window_start=pd.Timestamp(ts[g[0]]).tz_localize("UTC") if pd.Timestamp(ts[g[0]]).tzinfo is None else pd.Timestamp(ts[g[0]]),
                window_end=pd.Timestamp(ts[g[-1]]).tz_localize("UTC") if pd.Timestamp(ts[g[-1]]).tzinfo is None else pd.Timestamp(ts[g[-1]]),
                observed=observed,
                expected=exp,
                lower=float(peak["lower"]),
                upper=float(peak["upper"]),
                score=float(part["score"].max()),
                ratio=float(ratio[k]),
                severity=severity_of(float(ratio[k])),
                direction="up" if up else "down",
                points=len(g),
                reason=reason(cause, "up" if up else "down", step_seconds=step, config=config),
            )
        )
    return out


def fingerprint(kind: str, subject: str, window_start: datetime, *, bucket_seconds: int = 86_400) -> str:
    """Stable id of an incident: kind + subject + the bucket its window starts in."""
    import hashlib

    ts = pd.Timestamp(window_start)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    bucket = int(ts.timestamp() // bucket_seconds) * bucket_seconds
    return hashlib.sha256(f"{kind}\x1f{subject}\x1f{bucket}".encode()).hexdigest()[:32]
