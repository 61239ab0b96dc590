"""Cost insights: spend by dimension, top movers, unit costs per pipeline, estimate vs bill.

Inputs are frames from ``store.costs.daily_cost`` (``day``, optional dimension column,
``billed_cost``, ``effective_cost``) and per-pipeline run summaries (``run_cost_summary`` here
for a frame of runs, or ``store.runs.run_cost_summary`` computed in SQL), so the same functions
serve the dashboard and the digests. Windows over days are half-open: ``start <= day < end``.

Unit costs use the tagged bill when a pipeline has one in the window (``basis == "bill"``),
otherwise the sum of the run-level estimates (``basis == "estimate"``): the bill is what was
paid, the estimate is what pipepulse can attribute run by run. Spend on failed runs and on
retries is always from the run-level estimates (a bill has no notion of a run).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from pipepulse.vocab import ALL, FAILURES, SUCCEEDED

__all__ = [
    "daily_spend",
    "estimate_vs_bill",
    "month_to_date",
    "run_cost_summary",
    "top_movers",
    "unit_costs",
]


def daily_spend(costs: pd.DataFrame, *, by: str | None = None, value: str = "billed_cost") -> pd.DataFrame:
    """Spend per day (and per ``by`` value): columns ``day``, ``<by>``, ``cost``; every day of
    the range is present (zero when nothing was billed)."""
    frame = _days(costs)
    keys = ["day", *([by] if by else [])]
    if frame.empty:
        return pd.DataFrame(columns=[*keys, "cost"])
    out = frame.groupby(keys, as_index=False).agg(cost=(value, "sum"))
    days = pd.Index([d.date() for d in pd.date_range(min(out["day"]), max(out["day"]), freq="D")], name="day")
    if by is None:
        out = out.set_index("day").reindex(days, fill_value=0.0).reset_index()
    else:
        full = pd.MultiIndex.from_product([days, sorted(out[by].unique())], names=keys)
        out = out.set_index(keys).reindex(full, fill_value=0.0).reset_index()
    return out


def month_to_date(costs: pd.DataFrame, today: date, *, by: str | None = None, value: str = "billed_cost") -> pd.DataFrame:
    """Spend from the first of ``today``'s month to ``today`` (included): ``<by>``, ``cost``,
    ``share`` of the total, largest first; a single ``total`` row when ``by`` is None."""
    frame = _days(costs)
    frame = frame[(frame["day"] >= today.replace(day=1)) & (frame["day"] <= today)]
    if by is None:
        total = float(frame[value].sum()) if not frame.empty else 0.0
        return pd.DataFrame({"total": ["total"], "cost": [total], "share": [1.0 if total else None]})
    out = frame.groupby(by, as_index=False).agg(cost=(value, "sum"))
    total = out["cost"].sum()
    out["share"] = out["cost"] / total if total else np.nan
    return out.sort_values(["cost", by], ascending=[False, True], kind="stable").reset_index(drop=True)


def top_movers(
    costs: pd.DataFrame, *, by: str, start: date, end: date, n: int = 10, value: str = "billed_cost"
) -> pd.DataFrame:
    """The ``by`` values whose spend changed most between ``[start, end)`` and the window of the
    same length before it: ``<by>``, ``current``, ``previous``, ``change`` ($), ``change_pct``
    (None when previous was 0), ordered by absolute dollar change."""
    frame = _days(costs)
    span = end - start
    prev_start = start - span
    cur = frame[(frame["day"] >= start) & (frame["day"] < end)].groupby(by)[value].sum()
    prev = frame[(frame["day"] >= prev_start) & (frame["day"] < start)].groupby(by)[value].sum()
    out = pd.DataFrame({"current": cur, "previous": prev}).fillna(0.0)
    out.index.name = by
    out = out.reset_index()
    out["change"] = out["current"] - out["previous"]
    out["change_pct"] = [c / p if p else None for c, p in zip(out["change"], out["previous"], strict=True)]
    out = out.assign(_abs=out["change"].abs()).sort_values(["_abs", by], ascending=[False, True], kind="stable")
    return out.drop(columns="_abs").head(n).reset_index(drop=True)


def run_cost_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per pipeline from a frame of runs: ``runs``, ``succeeded``, ``failed``, ``records_out``
    (of succeeded runs), ``cost_usd`` (sum of run estimates), ``failed_cost_usd``,
    ``retry_cost_usd`` (runs with attempt > 1 or trigger "retry")."""
    cols = ["pipeline", "runs", "succeeded", "failed", "records_out", "cost_usd", "failed_cost_usd", "retry_cost_usd"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    r = runs.copy()
    cost = pd.to_numeric(_column(r, "cost_usd", 0.0), errors="coerce").fillna(0.0)
    ok = r["status"] == SUCCEEDED
    bad = r["status"].isin(FAILURES)
    attempt = pd.to_numeric(_column(r, "attempt", 1), errors="coerce").fillna(1)
    trig = _column(r, "trigger", "")
    retry = (attempt > 1) | (trig == "retry")
    recs = pd.to_numeric(_column(r, "records_out", 0.0), errors="coerce").fillna(0.0)
    frame = pd.DataFrame({
        "pipeline": r["pipeline"],
        "runs": 1,
        "succeeded": ok.astype(int),
        "failed": bad.astype(int),
        "records_out": recs.where(ok, 0.0),
        "cost_usd": cost,
        "failed_cost_usd": cost.where(bad, 0.0),
        "retry_cost_usd": cost.where(retry, 0.0),
    })
    return frame.groupby("pipeline", as_index=False).sum()[cols]


def _column(frame: pd.DataFrame, name: str, default: object) -> pd.Series:
    """``frame[name]``, or ``default`` on every row when the frame has no such column."""
    return frame[name] if name in frame else pd.Series(default, index=frame.index)


def unit_costs(summary: pd.DataFrame, billed: pd.DataFrame | None = None, *, value: str = "billed_cost") -> pd.DataFrame:
    """Cost per run, per successful run and per million records, per pipeline.

    ``summary``: ``run_cost_summary`` (or its SQL twin) for the window; ``billed``: tagged spend
    per pipeline for the same window (``pipeline``, ``<value>``; e.g. ``daily_cost(by="pipeline")``,
    untagged ``''`` rows ignored). Columns: pipeline, runs, succeeded, records_out, cost, basis,
    cost_per_run, cost_per_successful_run, cost_per_million_records, failed_cost_usd,
    retry_cost_usd, wasted_share (failed + retry estimate over the estimate)."""
    s = summary.set_index("pipeline")
    bill = _bill_by_pipeline(billed, value).to_dict()
    rows = []
    for name, r in s.iterrows():
        has_bill = name in bill
        cost = float(bill[name]) if has_bill else float(r["cost_usd"])
        runs, ok, recs = int(r["runs"]), int(r["succeeded"]), float(r["records_out"])
        est = float(r["cost_usd"])
        rows.append({
            "pipeline": name,
            "runs": runs,
            "succeeded": ok,
            "records_out": recs,
            "cost": cost,
            "basis": "bill" if has_bill else "estimate",
            "cost_per_run": cost / runs if runs else None,
            "cost_per_successful_run": cost / ok if ok else None,
            "cost_per_million_records": cost / recs * 1e6 if recs else None,
            "failed_cost_usd": float(r["failed_cost_usd"]),
            "retry_cost_usd": float(r["retry_cost_usd"]),
            "wasted_share": (float(r["failed_cost_usd"]) + float(r["retry_cost_usd"])) / est if est else None,
        })
    return pd.DataFrame(rows, columns=[
        "pipeline", "runs", "succeeded", "records_out", "cost", "basis", "cost_per_run",
        "cost_per_successful_run", "cost_per_million_records", "failed_cost_usd", "retry_cost_usd", "wasted_share",
    ])  # fmt: skip


def estimate_vs_bill(summary: pd.DataFrame, billed: pd.DataFrame, *, value: str = "billed_cost") -> pd.DataFrame:
    """Per pipeline: ``estimate`` (sum of run estimates), ``billed`` (tagged bill), ``gap``
    (billed - estimate) and ``gap_pct`` (gap / billed). Pipelines on only one side appear with
    the other side 0; ordered by absolute gap."""
    est = summary.set_index("pipeline")["cost_usd"].astype(float) if not summary.empty else pd.Series(dtype=float)
    bill = _bill_by_pipeline(billed, value)
    out = pd.DataFrame({"estimate": est, "billed": bill}).fillna(0.0)
    out.index.name = "pipeline"
    out = out.reset_index()
    out["gap"] = out["billed"] - out["estimate"]
    out["gap_pct"] = [g / b if b else None for g, b in zip(out["gap"], out["billed"], strict=True)]
    out = out.assign(_abs=out["gap"].abs()).sort_values(["_abs", "pipeline"], ascending=[False, True], kind="stable")
    return out.drop(columns="_abs").reset_index(drop=True)


def _bill_by_pipeline(billed: pd.DataFrame | None, value: str) -> pd.Series:
    if billed is None or billed.empty:
        return pd.Series(dtype=float)
    b = billed[billed["pipeline"].astype(str).str.len() > 0]
    b = b[b["pipeline"] != ALL]
    return b.groupby("pipeline")[value].sum().astype(float)


def _days(costs: pd.DataFrame) -> pd.DataFrame:
    frame = costs.copy()
    if not frame.empty:
        frame["day"] = pd.to_datetime(frame["day"]).dt.date
    return frame
