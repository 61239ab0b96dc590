"""Run detail: the stages as a timeline with retries and queue time, the error, the logs, the cost."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, data, ui

st.title("Run detail")
run_id = st.text_input("Run id", key="run", bind="query-params", placeholder="reference:..., stepfunctions:arn:..., glue:job:run")
if not run_id:
    st.info("Pick a run from Overview or Pipelines (the *details* links), or paste a run id.")
    st.stop()

run, steps, logs = data.run_detail(run_id.strip())
if run is None:
    st.warning("No run with that id is stored.")
    st.stop()

st.subheader("Pipeline")
st.text(run["pipeline"])


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds:,.0f} s" if seconds < 1000 else f"{seconds / 60:,.1f} min"


queued = (run["started_at"] - run["queued_at"]).total_seconds() if run.get("started_at") and run.get("queued_at") else None
cost = run.get("cost_usd")
per_run = run.get("pipeline_day_cost_per_run")
# the change as shown: a difference that rounds to zero is "same as", not "-0.0000" (or "+-0.0000")
vs_day = f"{abs(cost - per_run):,.4f}" if cost is not None and per_run else None
same = vs_day is not None and not any(ch in "123456789" for ch in vs_day)
# plain HTML tiles, not st.metric: their values shrink to the tile (at 1024 px st.metric cut
# "32.7 min" to "32...")
ui.tiles([
    ui.Tile("Status", str(run["status"]), good="off"),
    ui.Tile("Duration", _dur(run.get("duration_seconds"))),
    ui.Tile("Queue time", _dur(queued)),
    ui.Tile("Step retries", f"{run.get('retries') or 0}"),
    ui.Tile(f"Cost ({data.settings().currency}, estimate)", f"{cost:,.4f}" if cost is not None else "n/a",
            None if vs_day is None else ("same as the day's average" if same else f"{vs_day} vs day avg"),
            change=0 if vs_day is None or same else (1 if cost > per_run else -1), good="down",
            help="Against the average cost of this pipeline's runs on the same day"),
], key="run_kpis", columns=5)
# times to the second (a stage can take 2 s), in UTC, without the offset and microseconds noise
TIME = "%Y-%m-%d %H:%M:%S"
COUNTS = ("records_in", "records_out", "records_rejected")


def _at(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    ts = pd.Timestamp(value)
    return (ts.tz_convert("UTC") if ts.tzinfo is not None else ts).strftime(TIME)


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` for a grid: times as ``TIME`` and counts as whole numbers, text both, so that a
    missing one shows as a dash (the grid writes "None" for a missing time or number)."""
    times = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
    counts = [c for c in COUNTS if c in frame.columns]
    return frame.assign(
        **{c: frame[c].map(_at).astype(object) for c in times},
        **{c: frame[c].map(lambda v: None if v is None or pd.isna(v) else str(int(v))).astype(object) for c in counts},
    )


meta = {
    "run id": run["run_id"],
    "trigger": run.get("trigger"),
    "attempt": run.get("attempt"),
    "scheduled for": _at(run.get("scheduled_for")),
    "queued at": _at(run.get("queued_at")),
    "started at": _at(run.get("started_at")),
    "ended at": _at(run.get("ended_at")),
    "records in / out / rejected": " / ".join("\u2014" if run.get(k) is None else f"{run[k]:,}" for k in COUNTS),
    "correlation id": run.get("correlation_id"),
    "account / region": f"{run.get('account') or '-'} / {run.get('region') or '-'}",
}
st.caption("Times are UTC.")
# a static table: a long run id (a Step Functions execution ARN) wraps instead of being cut off
ui.table(
    pd.DataFrame({"field": list(meta), "value": [ui.DASH if v is None else str(v) for v in meta.values()]}),
    key="run_meta",
    filename="run.csv",
    static=True,
)

if run.get("error_message") or run.get("error_type"):
    st.subheader("Error")
    # st.code shows the text exactly as stored: never Markdown, never HTML
    st.code(f"{run.get('error_type') or ''}: {run.get('error_message') or ''}".strip(": "), language=None, wrap_lines=True)

st.subheader("Stages")
st.plotly_chart(charts.run_timeline(steps), key="timeline", config=charts.CONFIG)
if not steps.empty:
    ui.table(
        _shown(steps[["stage", "attempt", "status", "queued_at", "started_at", "ended_at", "duration_seconds", *COUNTS, "error_type", "error_message", "next_retry_at"]]),
        key="steps",
        filename="steps.csv",
    )

invocations = data.run_invocations(run["run_id"])
if not invocations.empty:
    st.subheader("Lambda invocations")
    cold = int(invocations["cold_start"].sum())
    st.caption(f"{len(invocations)} invocation(s) of the pipeline's Lambda functions while the run ran, "
               f"{cold} cold start(s), from their REPORT lines")
    ui.table(invocations, key="invocations", filename="invocations.csv", static=True, column_config={
        "ended_at": st.column_config.DatetimeColumn("ended at", format="YYYY-MM-DD HH:mm:ss"),
        "duration_ms": st.column_config.NumberColumn("duration (ms)", format="%.2f"),
        "billed_duration_ms": st.column_config.NumberColumn("billed (ms)", format="%.0f"),
        "memory_size_mb": st.column_config.NumberColumn("memory size (MB)"),
        "max_memory_used_mb": st.column_config.NumberColumn("max memory used (MB)"),
        "init_duration_ms": st.column_config.NumberColumn("init (ms), cold start", format="%.2f"),
    })

st.subheader("Log lines")
if run.get("correlation_id"):
    st.caption("Correlation id")
    st.code(run["correlation_id"], language=None)
if logs.empty:
    # say why (the run's status, the collector's lookback, the group's retention, CloudWatch's
    # 14 days), not just that the table is empty
    why = data.no_log_lines_reason(run["run_id"])
    if why is None:
        ui.empty("No log lines stored for this run", "pipepulse collect --source logs")
    elif why.command:
        ui.empty(why.reason, why.command)
    else:
        st.info(why.reason, icon=":material/info:")
else:
    ui.table(_shown(logs), key="logs", filename="logs.csv", height=360, column_config={"message": st.column_config.TextColumn("message", width="large")})
