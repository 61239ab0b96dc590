"""Online anomaly detection for metric series, pipeline run aggregates and daily cost.

One detector family serves every kind of series pipepulse watches (CloudWatch metrics at 5
minutes, per-pipeline duration / throughput / failure rate per hour, daily cost per dimension).
It is *online*: the flag and score of point ``t`` depend only on points ``<= t``; scanning a
prefix of a series gives exactly the same output for those points (tests prove it).

How a point is judged, for every *scale* ``s`` (1 = the point itself, 12 = the mean of the last
hour at 5 minutes, ...):

1. **Local baseline**: the median of the ``max(L, 2s)`` *clean* points before the window.
   Clean history is the series with earlier anomalies and planned windows replaced by the
   baseline they broke from, so an incident is never learnt into the baseline. A deviation that
   lasts longer than ``persist`` points is a new normal (a level shift): its raw values are put
   back, and the baseline follows it.
2. **Learned threshold**: the deviation ``|mean of window - baseline|`` must exceed
   ``sensitivity x`` the ``quantile`` of the same deviations over the last ``history`` points,
   leaving out points that were anomalous or planned. Noisy series thus get wide bands and quiet
   ones narrow bands, with no per-series tuning. Refreshed every ``refresh`` points.
3. **Seasonal gate** (when there are at least ``min_cycles`` earlier cycles, e.g. days): the
   window mean must also fall outside the seasonal envelope: the median over earlier cycles of
   the max (min) of the windowed series within +-``season_window`` of the same phase, widened by
   ``season_margin`` robust spreads across cycles. A daily batch spike at 03:00 +- 30 minutes is
   therefore normal, the same spike at 17:00 is not. ``also_periods`` adds gates (e.g. weekly
   beside daily for pipeline runs): the point must fall outside each envelope that has an
   earlier cycle, so a quiet weekend hour is normal when last week's weekend was as quiet.
4. **Floors**: the deviation must also exceed ``abs_floor`` (dollars, records, seconds) and
   ``rel_floor x |baseline|``, so tiny changes on tiny lines never alert.

A point is anomalous when any scale passes all of the above. Reported detections
(``is_anomaly``) mark the onset of an incident: an anomalous point is reported only when none of
the ``suppress`` points before it was anomalous, so an incident that keeps flaring is one alert
(its later points are still scored, ``anomalous`` and ``score >= 0.5``).

``score`` is ``1 - 2 ** -r`` where ``r`` is the largest deviation-to-threshold ratio (capped
just below 1 for scales the seasonal gate or a floor rejected): 0.5 exactly at the threshold.

Limits: values must be finite (drop missing points before scanning); the seasonal gate uses
one period (daily for intraday data, weekly for daily data); the first ``warmup`` points are
never flagged.

Extending: a new kind of series needs only a ``DetectorConfig`` (``DetectorConfig.for_step``
picks sensible time-based defaults for the sampling interval) and, for reporting, ``events``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "STEP_POINTS",
    "AnomalyEvent",
    "DetectorConfig",
    "ScanResult",
    "events",
    "fingerprint",
    "planned_mask",
    "scan",
    "scan_frame",
    "scan_matrix",
    "severity_of",
]

SEVERITY_RATIOS = ((6.0, "critical"), (3.0, "high"), (1.5, "medium"))
_BELOW = 0.999  # ratio cap for a scale that the seasonal gate or a floor rejected
DAY = 86_400.0
STEP_POINTS = 13  # points the default sampling step is read from


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
    persist: int = 36  # a deviation longer than this is a level shift, learnt as normal
    period_seconds: float | None = DAY  # seasonality; None switches the gate off
    also_periods: tuple[float, ...] = ()  # more seasonal gates (e.g. weekly for run series)
    season_cycles: int = 7
    min_cycles: int = 2
    season_window: int = 12  # +- points around the same phase
    season_margin: float = 3.0
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
        if self.direction not in {"both", "up", "down"}:
            raise ValueError(f"direction must be both, up or down, got {self.direction!r}")
        for name in ("baseline", "history", "refresh", "season_cycles", "min_cycles"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if any(not p > 0 for p in self.also_periods):
            raise ValueError(f"also_periods must be positive seconds, got {self.also_periods}")
        for name in ("warmup", "suppress", "persist", "season_window", "abs_floor", "rel_floor"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @classmethod
    def for_step(cls, step_seconds: float, **overrides) -> DetectorConfig:
        """Time-based defaults for a series sampled every ``step_seconds``.

        Intraday (<= 15 min): 1 h baseline and smoothing, 3 days of learned history, 1 day
        warm-up, daily seasonality +- 1 h from the second day on. Hourly-ish: the same in hours. Daily or coarser:
        one-week baseline, weekly seasonality on the same weekday, 8 weeks of history.
        """
        step = float(step_seconds)
        if step <= 0:
            raise ValueError("step_seconds must be positive")
        base: dict[str, Any]
        if step < DAY:

            def pts(seconds: float, least: int = 1) -> int:
                return max(least, int(round(seconds / step)))

            base = dict(
                scales=tuple(sorted({1, pts(3600, 1)})) if step <= 900 else (1, 3),
                baseline=pts(3600, 6),
                history=pts(3 * DAY, 48),
                warmup=pts(DAY, 12),
                refresh=pts(3600, 1),
                suppress=pts(12 * 3600, 1),
                persist=pts(3 * 3600, 3),
                period_seconds=DAY,
                min_cycles=1,  # yesterday around the same hour already tells a daily job
                season_window=pts(3600, 1),
            )
        else:
            base = dict(
                scales=(1,),
                baseline=7,
                history=56,
                warmup=14,
                refresh=1,
                suppress=3,
                persist=3,
                period_seconds=7 * DAY,
                season_cycles=4,
                min_cycles=3,
                season_window=0,
            )
        base.update(overrides)
        return cls(**base)


@dataclass(frozen=True)
class ScanResult:
    """Per-point output of a scan over ``n`` points (arrays of shape ``(n,)`` or ``(series, n)``)."""

    score: np.ndarray  # 0..1
    is_anomaly: np.ndarray  # reported detections (onsets), bool
    anomalous: np.ndarray  # every point judged anomalous, bool
    expected: np.ndarray  # point-scale baseline
    lower: np.ndarray  # band at point scale: baseline -+ threshold
    upper: np.ndarray
    ratio: np.ndarray  # deviation / threshold, the best scale


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
    anomalous, ratio``; points inside ``planned`` windows are neither flagged nor learnt."""
    out = frame.copy()
    if out.empty:
        for c in ("expected", "lower", "upper", "score", "ratio"):
            out[c] = pd.Series(dtype=float)
        out["is_anomaly"] = pd.Series(dtype=int)
        out["anomalous"] = pd.Series(dtype=bool)
        return out
    ts = pd.to_datetime(out[time_col], utc=True)
    mask = planned_mask(ts, planned)
    r = scan(out[value_col].to_numpy(float), ts, config, excluded=mask)
    out["expected"], out["lower"], out["upper"] = r.expected, r.lower, r.upper
    out["score"], out["ratio"] = r.score, r.ratio
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
    across series; the loop runs over time only."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError("x must be 2-D: (series, points)")
    if not np.isfinite(x).all():
        raise ValueError("values must be finite; drop missing points before scanning")
    cfg = config
    m, n = x.shape
    ts = _epoch_seconds(timestamps)
    if len(ts) != n:
        raise ValueError(f"{len(ts)} timestamps for {n} points")
    # Points are taken in arrival order; a clock that steps back (real exports have such
    # lines) is read as "no later than the latest time seen", which keeps the scan online.
    ts = np.maximum.accumulate(ts) if n else ts
    ex = np.zeros((m, n), dtype=bool) if excluded is None else np.broadcast_to(excluded, (m, n)).copy()
    scales = tuple(sorted(set(cfg.scales)))
    S = len(scales)
    rows = np.arange(m)

    # Windowed means of the series (trailing, so online) and their seasonal envelopes. Planned
    # points count as the last value seen before them, so a window's mean never carries them.
    xs = _carry_forward(x, ex)
    csum = np.concatenate([np.zeros((m, 1)), np.cumsum(xs, axis=1)], axis=1)
    Z = []
    for s in scales:
        idx = np.arange(n)
        lo = np.maximum(idx - s + 1, 0)
        Z.append((csum[:, idx + 1] - csum[:, lo]) / (idx + 1 - lo))
    # one gate per period, each with the cycles it needs: ``also_periods`` apply from the first
    # earlier cycle on, so a weekly job's weekend is normal even though yesterday was a weekday
    gates = [([_envelope(z, ts, cfg) for z in Z], cfg.min_cycles)]
    gates += [([_envelope(z, ts, replace(cfg, period_seconds=p)) for z in Z], 1) for p in cfg.also_periods]

    clean = x.copy()
    D = np.full((S, m, n), np.nan)  # deviations, NaN where not learnable
    th = np.full((S, m), np.inf)
    score = np.zeros((m, n))
    ratio_out = np.zeros((m, n))
    anomalous = np.zeros((m, n), dtype=bool)
    reported = np.zeros((m, n), dtype=bool)
    expected = np.full((m, n), np.nan)
    lower = np.full((m, n), np.nan)
    upper = np.full((m, n), np.nan)
    run = np.zeros(m, dtype=int)
    last = np.full(m, -(10**9))
    start = max(scales) + cfg.baseline - 1
    L = cfg.baseline
    up_ok = cfg.direction in ("both", "up")
    down_ok = cfg.direction in ("both", "down")

    for t in range(start, n):
        refresh = t >= cfg.warmup and ((t - cfg.warmup) % cfg.refresh == 0 or not np.isfinite(th).any())
        e = np.zeros(m, dtype=bool)
        best = np.zeros(m)
        for si, s in enumerate(scales):
            Ls = max(L, 2 * s)
            a = t - s - Ls + 1
            if a < 0:
                continue
            b = _median_rows(clean[:, a : t - s + 1])
            z = Z[si][:, t]
            dev = z - b
            d = np.abs(dev)
            D[si, :, t] = d
            if s == 1:
                expected[:, t] = b
            if t < cfg.warmup:
                continue
            if refresh:
                th[si] = cfg.sensitivity * _quantile_rows(D[si, :, max(0, t - cfg.history) : t], anomalous[:, max(0, t - cfg.history) : t] | ex[:, max(0, t - cfg.history) : t], cfg.quantile)
            thr = th[si]
            if s == 1:
                lower[:, t], upper[:, t] = b - thr, b + thr
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(thr > 0, d / thr, np.where(d > 0, np.inf, 0.0))
            r = np.where(np.isfinite(thr), r, 0.0)
            ok = r > 1.0
            ok &= (dev > 0) & up_ok | (dev < 0) & down_ok
            ok &= (d > cfg.abs_floor) & (d > cfg.rel_floor * np.abs(b))
            for envs, min_cycles in gates:
                mU, mL, sU, sL, cnt = envs[si]
                seasonal = cnt[:, t] >= min_cycles
                outside = (z > mU[:, t] + cfg.season_margin * sU[:, t]) | (z < mL[:, t] - cfg.season_margin * sL[:, t])
                ok &= ~seasonal | outside
            r = np.where(ok, r, np.minimum(r, _BELOW))
            best = np.maximum(best, r)
            e |= ok
        e &= ~ex[:, t]
        best = np.where(ex[:, t], np.minimum(best, _BELOW), best)
        ratio_out[:, t] = best
        score[:, t] = np.where(np.isfinite(best), 1.0 - np.exp2(-best), 1.0)
        anomalous[:, t] = e
        # Clean history: anomalies and planned points replaced by the baseline they broke from;
        # a deviation that persists past `persist` points is a level shift and is learnt.
        hide = e | ex[:, t]
        run = np.where(e, run + 1, 0)
        if hide.any():
            med = _median_rows(clean[hide, t - L : t])
            clean[hide, t] = med
        shift = rows[run > cfg.persist]
        if len(shift):
            a = max(0, t - cfg.persist)
            clean[shift, a : t + 1] = x[shift, a : t + 1]
        # Report the onset of an incident only: an anomalous point after at least `suppress`
        # points with no anomaly at all (a burst of bursts is one incident, one alert).
        rep = e & (t - last > cfg.suppress)
        reported[:, t] = rep
        last = np.where(e, t, last)

    return ScanResult(score, reported, anomalous, expected, lower, upper, ratio_out)


def _carry_forward(x: np.ndarray, ex: np.ndarray) -> np.ndarray:
    """``x`` with excluded cells replaced by the last earlier non-excluded value of the row."""
    if not ex.any():
        return x
    idx = np.where(~ex, np.arange(x.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = np.take_along_axis(x, idx, axis=1)
    return np.where(ex & (idx == 0) & ex[:, :1], x, out)


def _median_rows(a: np.ndarray) -> np.ndarray:
    """``np.median(a, axis=1)`` for finite ``a``, to the bit: the same partition and the same
    mean of the two middle values, without ``np.median``'s per-call overhead (it runs once per
    point and scale)."""
    k = a.shape[1]
    h = k // 2
    if k % 2:
        return np.partition(a, h, axis=1)[:, h]
    p = np.partition(a, (h - 1, h), axis=1)
    return (p[:, h - 1] + p[:, h]) / 2


def _quantile_rows(h: np.ndarray, drop: np.ndarray, q: float) -> np.ndarray:
    """Per-row ``q`` quantile (linear) of ``h`` ignoring NaN and dropped cells; inf when empty."""
    if h.shape[1] == 0:
        return np.full(h.shape[0], np.inf)
    h = np.where(drop, np.nan, h)
    c = np.sum(~np.isnan(h), axis=1)
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
    observed: float  # value at the peak
    expected: float
    lower: float
    upper: float
    score: float
    ratio: float
    severity: str
    direction: str  # up | down
    points: int


def severity_of(ratio: float) -> str:
    """low / medium / high / critical from the deviation-to-threshold ratio."""
    if not math.isfinite(ratio):
        return "critical"
    for bound, name in SEVERITY_RATIOS:
        if ratio >= bound:
            return name
    return "low"


def events(scanned: pd.DataFrame, *, gap: int = 0, time_col: str = "timestamp", value_col: str = "value") -> list[AnomalyEvent]:
    """Group the anomalous points of a ``scan_frame`` output into incidents, oldest first."""
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
    out = []
    for g in groups:
        part = scanned.iloc[g]
        ratio = part["ratio"].to_numpy(float)
        k = int(np.argmax(np.where(np.isfinite(ratio), ratio, np.finfo(float).max)))
        peak = part.iloc[k]
        observed, exp = float(peak[value_col]), float(peak["expected"])
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
                direction="up" if observed >= exp else "down",
                points=len(g),
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
