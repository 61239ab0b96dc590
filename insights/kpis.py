"""Pipeline KPIs over a window, per pipeline and overall, with the change against the window
before it.

Input: a runs frame with the ``runs`` table's columns (pipeline, status, trigger, attempt,
queued_at, started_at, ended_at, duration_seconds, records_in, records_out, records_rejected,
retries, cost_usd). A run belongs to the window its ``started_at`` falls in (``[start, end)``).
The overall row has ``pipeline == ALL``.

Definitions (also the column names of ``window_kpis``):

* ``runs``: runs that started in the window; ``finished``: of those, terminal ones;
  ``success_rate`` / ``error_rate``: SUCCEEDED / (FAILED + TIMED_OUT) over ``finished``
  (CANCELLED counts in neither numerator), None when nothing finished.
* ``duration_p50/p95/max`` (s): over finished runs, linear-interpolated percentiles.
* ``queue_p50`` / ``queue_mean`` (s): ``started_at - queued_at`` where both are known.
* ``records_per_minute``: records_out of succeeded runs over their summed duration;
  ``records_per_run``: mean records_out of succeeded runs.
* ``rejected_rate``: records_rejected / records_in over finished runs.
* ``retries``: step retries summed over runs; ``retried_runs``: runs with attempt > 1.
* ``recoveries`` / ``mttr_seconds`` / ``max_ttr_seconds``: for each failure streak that starts
  in the window, the time from the first failure's end (its start when unknown) to the end of
  the next successful run (which may lie after the window); ``failing_since`` is the start of a
  streak with no success yet.

``store.runs.kpi_aggregates`` computes the same columns in SQL for big windows; ``compare``
works on either.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from pipepulse.vocab import FAILURES, SUCCEEDED, TERMINAL

__all__ = ["ALL", "KPI_COLUMNS", "ROLLUP_COLUMNS", "compare", "kpis", "rollup_kpis", "time_to_recover", "window_kpis"]

ALL = "(all)"
KPI_COLUMNS = [
    "runs", "finished", "succeeded", "failed", "success_rate", "error_rate",
    "duration_p50", "duration_p95", "duration_max", "queue_p50", "queue_mean",
    "records_in", "records_out", "records_rejected", "records_per_minute", "records_per_run",
    "rejected_rate", "retries", "retried_runs", "cost_usd",
    "recoveries", "mttr_seconds", "max_ttr_seconds", "failing_since",
]  # fmt: skip
# KPIs where a rise is bad (the dashboard colours the change with this).
HIGHER_IS_WORSE = frozenset({"error_rate", "duration_p50", "duration_p95", "duration_max", "queue_p50",
                             "queue_mean", "rejected_rate", "retries", "retried_runs", "failed",
                             "mttr_seconds", "max_ttr_seconds", "cost_usd"})


def window_kpis(runs: pd.DataFrame, *, start: datetime, end: datetime) -> pd.DataFrame:
    """KPIs of runs started in ``[start, end)``: one row per pipeline plus ``ALL``, indexed by
    pipeline, columns ``KPI_COLUMNS``. Pipelines without runs in the window are left out."""
    runs = _prepare(runs)
    cur = runs[(runs["started_at"] >= start) & (runs["started_at"] < end)]
    rows = {name: _one(group) for name, group in cur.groupby("pipeline", sort=True)}
    rows[ALL] = _one(cur)
    out = pd.DataFrame.from_dict(rows, orient="index", columns=KPI_COLUMNS)
    ttr = time_to_recover(runs, start=start, end=end)
    for name in out.index:
        sel = ttr if name == ALL else ttr[ttr["pipeline"] == name]
        done = sel["recovered_at"].notna()
        secs = sel.loc[done, "seconds"]
        out.at[name, "recoveries"] = int(done.sum())
        out.at[name, "mttr_seconds"] = float(secs.mean()) if len(secs) else None
        out.at[name, "max_ttr_seconds"] = float(secs.max()) if len(secs) else None
        still = sel.loc[~done, "failed_at"]
        out.at[name, "failing_since"] = still.min() if len(still) else None
    out.index.name = "pipeline"
    return out


def compare(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Long frame: pipeline, metric, value, previous, change (value - previous) and
    change_pct (change / |previous|, None when previous is 0 or missing)."""
    rows = []
    metrics = [c for c in current.columns if c != "failing_since"]
    for name in current.index:
        for m in metrics:
            v = _num(current.at[name, m])
            p = _num(previous.at[name, m]) if name in previous.index else None
            change = v - p if v is not None and p is not None else None
            pct = change / abs(p) if change is not None and p else None
            rows.append({"pipeline": name, "metric": m, "value": v, "previous": p, "change": change,
                         "change_pct": pct, "higher_is_worse": m in HIGHER_IS_WORSE})
    return pd.DataFrame(rows, columns=["pipeline", "metric", "value", "previous", "change", "change_pct", "higher_is_worse"])


def kpis(runs: pd.DataFrame, *, start: datetime, end: datetime) -> pd.DataFrame:
    """``compare`` of ``[start, end)`` against the window of the same length just before it.
    ``runs`` must cover both windows (and, for time to recover, a little after)."""
    span = end - start
    return compare(window_kpis(runs, start=start, end=end), window_kpis(runs, start=start - span, end=start))


def time_to_recover(runs: pd.DataFrame, *, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
    """One row per failure streak (consecutive failed runs of a pipeline, by start time) whose
    first failure started in ``[start, end)``: pipeline, failed_at, failures, recovered_at
    (end of the next successful run, NaT when none yet) and seconds between them."""
    runs = _prepare(runs)
    done = runs[runs["status"].isin((*FAILURES, SUCCEEDED))].sort_values(["pipeline", "started_at"])
    rows = []
    for name, group in done.groupby("pipeline", sort=True):
        streak: dict[str, Any] | None = None
        for status, started, ended in zip(group["status"], group["started_at"], group["ended_at"], strict=True):
            if status in FAILURES:
                if streak is None:
                    at = ended if not pd.isna(ended) else started
                    streak = {"pipeline": name, "first_start": started, "failed_at": at, "failures": 0}
                streak["failures"] += 1
            elif streak is not None:
                streak["recovered_at"] = ended
                rows.append(streak)
                streak = None
        if streak is not None:
            streak["recovered_at"] = pd.NaT
            rows.append(streak)
    out = pd.DataFrame(rows, columns=["pipeline", "first_start", "failed_at", "failures", "recovered_at"])
    if start is not None:
        out = out[out["first_start"] >= start]
    if end is not None:
        out = out[out["first_start"] < end]
    out = out.assign(seconds=(pd.to_datetime(out["recovered_at"], utc=True) - pd.to_datetime(out["failed_at"], utc=True)).dt.total_seconds())
    return out.drop(columns="first_start").reset_index(drop=True)


ROLLUP_COLUMNS = [
    "runs", "succeeded", "failed", "success_rate", "error_rate", "duration_mean", "duration_p95_max",
    "duration_max", "queue_mean", "records_in", "records_out", "records_rejected", "records_per_minute",
    "records_per_run", "rejected_rate", "retries", "cost_usd", "failed_cost_usd",
]  # fmt: skip


def rollup_kpis(daily: pd.DataFrame, *, start: date, end: date) -> pd.DataFrame:
    """KPIs for days ``start <= day < end`` from the ``run_daily`` rollup (``store.rollups.
    run_daily_frame``): cheap for long windows over millions of runs. Daily percentiles cannot be
    combined, so instead of p50/p95 it gives ``duration_mean`` (from ``duration_sum``) and
    ``duration_p95_max`` (the worst day's p95). Rates are over ``succeeded + failed`` (the
    rollup keeps no count of cancelled runs). Indexed by pipeline plus ``ALL``; ``compare`` works
    on two of these too."""
    d = daily.copy()
    d["day"] = pd.to_datetime(d["day"]).dt.date
    d = d[(d["day"] >= start) & (d["day"] < end)]
    rows = {name: _rollup_one(g) for name, g in d.groupby("pipeline", sort=True)}
    rows[ALL] = _rollup_one(d)
    out = pd.DataFrame.from_dict(rows, orient="index", columns=ROLLUP_COLUMNS)
    out.index.name = "pipeline"
    return out


def _rollup_one(g: pd.DataFrame) -> dict:
    num = {c: pd.to_numeric(g[c], errors="coerce") for c in g.columns if c not in ("day", "pipeline", "updated_at")}
    runs, ok, bad = int(num["runs"].sum()), int(num["succeeded"].sum()), int(num["failed"].sum())
    done = ok + bad
    dur_sum = float(num["duration_sum"].sum())
    rin, rout = float(num["records_in"].sum()), float(num["records_out"].sum())
    minutes = dur_sum / 60.0
    return {
        "runs": runs,
        "succeeded": ok,
        "failed": bad,
        "success_rate": ok / done if done else None,
        "error_rate": bad / done if done else None,
        "duration_mean": dur_sum / runs if runs and num["duration_sum"].notna().any() else None,
        "duration_p95_max": float(num["duration_p95"].max()) if num["duration_p95"].notna().any() else None,
        "duration_max": float(num["duration_max"].max()) if num["duration_max"].notna().any() else None,
        "queue_mean": float(num["queue_seconds_sum"].sum()) / runs if runs and num["queue_seconds_sum"].notna().any() else None,
        "records_in": rin,
        "records_out": rout,
        "records_rejected": float(num["records_rejected"].sum()),
        # all runs' records over all runs' time: the rollup does not split records by status
        "records_per_minute": rout / minutes if minutes > 0 else None,
        "records_per_run": rout / runs if runs else None,
        "rejected_rate": float(num["records_rejected"].sum()) / rin if rin > 0 else None,
        "retries": float(num["retries"].sum()),
        "cost_usd": float(num["cost_usd"].sum()),
        "failed_cost_usd": float(num["failed_cost_usd"].sum()),
    }


# ---- helpers -----------------------------------------------------------------------------------


def _prepare(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs.copy()
    for c in ("queued_at", "started_at", "ended_at"):
        if c not in runs:
            runs[c] = pd.NaT
        runs[c] = pd.to_datetime(runs[c], utc=True)
    for c in ("duration_seconds", "records_in", "records_out", "records_rejected", "retries", "cost_usd"):
        if c not in runs:
            runs[c] = np.nan
        runs[c] = pd.to_numeric(runs[c], errors="coerce").astype(float)
    if "attempt" not in runs:
        runs["attempt"] = 1
    missing = runs["duration_seconds"].isna() & runs["ended_at"].notna()
    runs.loc[missing, "duration_seconds"] = (runs.loc[missing, "ended_at"] - runs.loc[missing, "started_at"]).dt.total_seconds()
    return runs


def _one(g: pd.DataFrame) -> dict:
    fin = g[g["status"].isin(TERMINAL)]
    ok = fin[fin["status"] == SUCCEEDED]
    bad = fin[fin["status"].isin(FAILURES)]
    dur = fin["duration_seconds"].dropna()
    queue = (g["started_at"] - g["queued_at"]).dt.total_seconds().dropna()
    ok_minutes = ok["duration_seconds"].sum() / 60.0
    rin = fin["records_in"].sum()
    return {
        "runs": len(g),
        "finished": len(fin),
        "succeeded": len(ok),
        "failed": len(bad),
        "success_rate": len(ok) / len(fin) if len(fin) else None,
        "error_rate": len(bad) / len(fin) if len(fin) else None,
        "duration_p50": float(np.percentile(dur, 50)) if len(dur) else None,
        "duration_p95": float(np.percentile(dur, 95)) if len(dur) else None,
        "duration_max": float(dur.max()) if len(dur) else None,
        "queue_p50": float(np.percentile(queue, 50)) if len(queue) else None,
        "queue_mean": float(queue.mean()) if len(queue) else None,
        "records_in": float(rin),
        "records_out": float(fin["records_out"].sum()),
        "records_rejected": float(fin["records_rejected"].sum()),
        "records_per_minute": float(ok["records_out"].sum() / ok_minutes) if ok_minutes > 0 else None,
        "records_per_run": float(ok["records_out"].mean()) if len(ok) and ok["records_out"].notna().any() else None,
        "rejected_rate": float(fin["records_rejected"].sum() / rin) if rin > 0 else None,
        "retries": float(g["retries"].fillna(0).sum()),
        "retried_runs": int((pd.to_numeric(g["attempt"], errors="coerce").fillna(1) > 1).sum()),
        "cost_usd": float(g["cost_usd"].sum()),
    }


def _num(v) -> float | None:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return None
    return float(v)
