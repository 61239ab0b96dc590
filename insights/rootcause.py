"""Root cause of a cost anomaly: which service, region, usage type or pipeline drove it.

For each dimension value, the impact is the day's cost minus its expected cost (the median of
the same value over the baseline days before it); values are ranked by the absolute dollar
impact, across all dimensions, so the line that moved the most money comes first. A dimension
with a single value in the window (one region, say) is left out: it cannot say what moved. Pure: a
frame of daily cost rows in, a list of dicts out (stored as JSON on the anomaly).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import pandas as pd

__all__ = ["DIMENSIONS", "root_cause"]

DIMENSIONS = ("service", "region", "usage_type", "pipeline")


def root_cause(
    costs: pd.DataFrame,
    day: date,
    *,
    baseline_days: int = 14,
    dimensions: Sequence[str] = DIMENSIONS,
    value: str = "billed_cost",
    top: int = 5,
    min_impact: float = 0.01,
) -> list[dict]:
    """Ranked drivers of the change on ``day``: ``[{dimension, value, impact, observed,
    expected}]``, largest absolute dollar impact first; ``costs`` has ``day``, the dimension
    columns and ``value``, one row per (day, dimension values)."""
    if costs.empty:
        return []
    frame = costs.copy()
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    first = day - timedelta(days=baseline_days)
    window = frame[(frame["day"] >= first) & (frame["day"] <= day)]
    out: list[dict] = []
    for dim in dimensions:
        if dim not in window.columns or window[dim].dropna().nunique() < 2:
            continue  # one region (or one account ...) explains nothing about what moved
        per = window.groupby(["day", dim])[value].sum().unstack(dim, fill_value=0)
        days = pd.Index([first + timedelta(days=i) for i in range(baseline_days + 1)], name="day")
        per = per.reindex(days, fill_value=0.0)
        observed = per.loc[day].to_dict()
        expected = per.iloc[:-1].median().to_dict()
        for name in per.columns:
            impact = float(observed[name] - expected[name])
            if abs(impact) >= min_impact:
                out.append(
                    {
                        "dimension": dim,
                        "value": name if name != "" else "(untagged)",
                        "impact": round(impact, 6),
                        "observed": round(float(observed[name]), 6),
                        "expected": round(float(expected[name]), 6),
                    }
                )
    out.sort(key=lambda r: (-abs(r["impact"]), r["dimension"], str(r["value"])))
    return out[:top]
