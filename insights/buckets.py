"""Run trends in buckets shorter than a day (hours), the same shape as the daily rollup.

The ``run_daily`` rollup (``store.rollups``) is the source of every run trend over weeks; a
window of a day or a week needs hourly points instead (a 24 h window holds one or two days:
one or two points, or none drawn as a line). ``rollup_runs`` turns the runs of such a window
(``store.dashboard_reads.run_points``) into rows with the rollup's columns, ``day`` being the
bucket's start (naive UTC), with the rollup's definitions: ``failed`` counts failed and timed
out runs, the duration percentiles are over the runs with a duration.
"""

from __future__ import annotations

import pandas as pd

from pipepulse.vocab import FAILURES, SUCCEEDED

__all__ = ["BUCKET_COLUMNS", "rollup_runs"]

BUCKET_COLUMNS = ["day", "pipeline", "runs", "succeeded", "failed", "duration_p50", "duration_p95", "records_out"]


def rollup_runs(points: pd.DataFrame, freq: str = "h") -> pd.DataFrame:
    """Per bucket of ``freq`` (a pandas frequency, "h" for hours) and pipeline: runs, succeeded,
    failed, duration_p50, duration_p95 and records_out, by bucket then pipeline."""
    if points.empty:
        return pd.DataFrame(columns=BUCKET_COLUMNS)
    f = points.copy()
    started = pd.to_datetime(f["started_at"], utc=True).dt.tz_convert(None)
    f["day"] = started.dt.floor(freq)
    f["ok"] = f["status"].eq(SUCCEEDED)
    f["bad"] = f["status"].isin(FAILURES)
    f["duration_seconds"] = pd.to_numeric(f["duration_seconds"], errors="coerce")
    f["records_out"] = pd.to_numeric(f["records_out"], errors="coerce")
    g = f.groupby(["day", "pipeline"], sort=True)
    out = pd.DataFrame({
        "runs": g.size(),
        "succeeded": g["ok"].sum().astype(int),
        "failed": g["bad"].sum().astype(int),
        "duration_p50": g["duration_seconds"].quantile(0.5),
        "duration_p95": g["duration_seconds"].quantile(0.95),
        "records_out": g["records_out"].sum(min_count=1),
    }).reset_index()
    return out[BUCKET_COLUMNS]

