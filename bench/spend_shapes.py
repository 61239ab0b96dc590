"""A seeded library of synthetic daily cloud-spend series, one shape per thing that breaks a forecast.

``library(seeds=10, days=120)`` returns ``{name: series}`` with names ``<shape>/<seed>``; every
series is a daily ``pd.Series`` (USD, one value a day, from ``START``) and the same seed always
gives the same series. What every shape shares (drawn per seed):

* a daily level between $5 and $5,000 (log-uniform; the figures are ratios, so scale is noise);
* multiplicative Gaussian noise with a coefficient of variation of 2-10%;
* in half the seeds a mild weekly cycle (weekends 5-20% lower: batch jobs that idle on weekends).

The shapes (``SHAPES``), each what real AWS bills show:

* ``step-up``: spend rises 30-150% for good on a day 40-75% into the series (a new cluster,
  a bigger instance class, a new pipeline).
* ``step-down``: spend falls 30-70% for good (a rightsizing, a cluster removed).
* ``decommission``: spend falls to 3-8% of its level for good (resources shut down; what is
  left is storage, snapshots, a NAT gateway), noisier in relative terms afterwards.
* ``month-start-fee``: a charge of 3-20 days' spend on the 1st of every month (support plans,
  reserved-instance and savings-plan monthly fees, AWS Marketplace subscriptions).
* ``weekly-cycle``: a strong weekly cycle, weekends 30-70% below weekdays (dev environments
  stopped at weekends, business-hours workloads).
* ``growth``: compounding growth of 0.3-1.5% a day (a product taking off, data piling up).
* ``one-day-spike``: one to three one-day spikes of 3-10x (a runaway job, a backfill, a
  retry storm) that are not repeated (at least 10 days apart, never a whole number of weeks).
* ``incident``: one or two incidents of 2-4 days at 2-5x the level (a runaway job, data
  transfer sent the wrong way, a retry storm), then back to normal: the demo's own bill has a
  two-day data-transfer spike and a four-day runaway.
* ``credits``: promotional credits cover usage (net spend 2-5% of gross: the services the
  credits exclude) until they run out on a day 30-70% into the series, then the full bill;
  plus one refund day (a negative amount of 1-3 days' spend) before that.

And one control, ``CONTROLS``, kept out of ``library()``'s default and of the targets:

* ``random-walk``: each day's level is the day before's times a random step of 3-8%
  (autoscaled usage with no pattern): the one shape where "same as yesterday" is the best
  forecast there is, so a forecast can at most tie with last-value.

Not in the library: holidays, end-of-quarter effects, hourly data, and series shorter than
three months (the CUR month and the FOCUS sample cover short ones).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["CONTROLS", "SHAPES", "START", "library", "make"]

START = "2026-06-10"
PERIOD = 7
SHAPES = (
    "step-up",
    "step-down",
    "decommission",
    "month-start-fee",
    "weekly-cycle",
    "growth",
    "one-day-spike",
    "credits",
    "incident",
)
CONTROLS = ("random-walk",)  # not a target: last-value is the best forecast there is


def make(shape: str, seed: int, days: int = 120, start: str = START) -> pd.Series:
    """One series of ``shape`` (see the module docstring)."""
    known = SHAPES + CONTROLS
    if shape not in known:
        raise ValueError(f"unknown shape {shape!r}; one of {', '.join(known)}")
    rng = np.random.default_rng([known.index(shape), seed])
    idx = pd.date_range(start, periods=days, freq="D")
    level = float(np.exp(rng.uniform(np.log(5.0), np.log(5000.0))))
    cv = rng.uniform(0.02, 0.10)
    weekly = np.ones(days)
    weekend = idx.day_of_week >= 5
    if rng.random() < 0.5:
        weekly[weekend] = 1 - rng.uniform(0.05, 0.20)
    base = np.full(days, level)
    extra = np.zeros(days)
    t = np.arange(days)

    if shape == "step-up":
        at = int(days * rng.uniform(0.40, 0.75))
        base[at:] *= 1 + rng.uniform(0.30, 1.50)
    elif shape == "step-down":
        at = int(days * rng.uniform(0.40, 0.75))
        base[at:] *= 1 - rng.uniform(0.30, 0.70)
    elif shape == "decommission":
        at = int(days * rng.uniform(0.40, 0.75))
        base[at:] *= rng.uniform(0.03, 0.08)
        weekly[at:] = 1.0  # what is left does not idle at weekends
    elif shape == "month-start-fee":
        fee = level * rng.uniform(3.0, 20.0)
        extra[idx.day == 1] = fee
    elif shape == "weekly-cycle":
        weekly = np.where(weekend, 1 - rng.uniform(0.30, 0.70), 1.0)
    elif shape == "growth":
        base = level * (1 + rng.uniform(0.003, 0.015)) ** t
    elif shape == "one-day-spike":
        count = int(rng.integers(1, 4))
        spikes: list[int] = []
        while len(spikes) < count:
            d = int(rng.integers(int(days * 0.2), days))
            # not repeated: at least 10 days from another spike, and not a whole number of weeks
            if all(abs(d - o) >= 10 and (d - o) % PERIOD for o in spikes):
                spikes.append(d)
        for d in spikes:
            extra[d] += level * rng.uniform(3.0, 10.0)
    elif shape == "incident":
        for _ in range(int(rng.integers(1, 3))):
            d = int(rng.integers(int(days * 0.2), days - 4))
            extra[d : d + int(rng.integers(2, 5))] += level * rng.uniform(1.0, 4.0)
    elif shape == "random-walk":
        # autoscaled usage with no pattern: each day's level is the last one's times a random step
        base = level * np.exp(np.cumsum(rng.normal(0.0, rng.uniform(0.03, 0.08), days)))
        weekly = np.ones(days)
    elif shape == "credits":
        at = int(days * rng.uniform(0.30, 0.70))
        base[:at] *= rng.uniform(0.02, 0.05)
        refund = int(rng.integers(int(days * 0.15), at))
        extra[refund] -= level * rng.uniform(1.0, 3.0)

    y = base * weekly * rng.normal(1.0, cv, days) + extra
    if shape != "credits":
        y = np.maximum(y, 0.0)
    return pd.Series(np.round(y, 4), index=idx, name="amount")


def library(seeds: int = 10, days: int = 120, shapes: tuple[str, ...] = SHAPES, first: int = 0) -> dict[str, pd.Series]:
    """Every shape for seeds ``first..first+seeds-1``: ``{"<shape>/<seed>": series}``."""
    return {f"{shape}/{seed}": make(shape, seed, days) for shape in shapes for seed in range(first, first + seeds)}
