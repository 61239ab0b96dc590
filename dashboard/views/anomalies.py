"""Anomalies: open, acknowledged, snoozed, resolved; acknowledge, snooze or resolve (admins).

A status set here is stored with who set it, when and the note; the alert digests leave out
acknowledged, resolved and still-snoozed anomalies. A snooze that has ended counts as open.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pandas as pd
import streamlit as st

from dashboard import auth, data, state, ui
from pipepulse.errors import InputError
from pipepulse.vocab import ANOMALY_KINDS, ANOMALY_STATUSES


def _num(v: object) -> str:
    return "n/a" if v is None or v != v else f"{float(v):,.4g}"  # v != v: NaN


def _when(ts: object) -> str:
    t = pd.Timestamp(ts)  # type: ignore[arg-type]
    return (t.tz_convert("UTC") if t.tzinfo is not None else t).strftime("%Y-%m-%d %H:%M")


def _status(effective: str, stored: str, until: object, note: object) -> str:
    """The status as read on the page: with the snooze's end and the note set with it."""
    text = effective
    if not pd.isna(until):
        if effective == "snoozed":
            text += f" until {_when(until)}"
        elif stored == "snoozed":
            text += f" (snooze ended {_when(until)})"
    if isinstance(note, str) and note:
        text += f": {note}"
    return text


f = state.current()
user = auth.current_user()

st.title("Anomalies")
if flash := st.session_state.pop("_pp_flash", None):
    st.success(ui.esc(flash))
a, b = st.columns(2)
statuses = a.multiselect("Status", ANOMALY_STATUSES, default=["open"], key="status", bind="query-params")
kinds = b.multiselect(
    "Kind", ANOMALY_KINDS, key="kind", bind="query-params", placeholder="All kinds"
)
frame = data.anomalies(statuses=tuple(statuses) or None, kinds=tuple(kinds) or None, pipelines=f.pipelines)
if frame.empty:
    total = data.anomalies()
    if total.empty:
        ui.empty("No anomalies detected yet", "pipepulse detect")
    else:
        st.success("No anomalies with this status.")
    st.stop()

# shown, in five columns that fit a 1024 px window: what (severity, kind and subject), its status,
# when, the value against what was expected (with units) and the root cause; the CSV also has the
# raw numbers, when it was last seen, who set the status, and the full fingerprint
what = frame["severity"] + " " + frame["kind"] + ": " + frame["subject"]
value = [
    f"{o or 'n/a'} (expected {e or 'n/a'}" + (f"; band {b})" if b else ")")
    for o, e, b in zip(frame["observed_text"], frame["expected_text"], frame["band_text"], strict=True)
]
status = [_status(e, s, u, n) for e, s, u, n in
          zip(frame["effective_status"], frame["status"], frame["snoozed_until"], frame["status_note"], strict=True)]
shown = ["anomaly", "status_text", "window_start", "value", "root_cause_text"]
raw = ["severity", "kind", "subject", "observed", "expected", "lower", "upper", "last_seen", "effective_status", "status_by",
       "status_note", "snoozed_until", "fingerprint"]
view = frame.assign(anomaly=what, value=value, status_text=status)[shown + raw]
ui.table(view, key="anomalies", filename="anomalies.csv", height=360, static=True, hide=tuple(raw), column_config={
    "status_text": st.column_config.TextColumn(
        "status", help="A snooze's end, and the note left when the status was set, follow the status"),
    "window_start": st.column_config.DatetimeColumn("window", format="YYYY-MM-DD HH:mm"),
    "value": st.column_config.TextColumn(
        "observed", help="The value the detector judged, in its unit, what this series' own history predicted, and the "
                         "normal band (values inside it are not anomalies)"),
    "root_cause_text": st.column_config.TextColumn("root cause"),
})

st.subheader("Act on one")
labels = {fp: f"{sev} {kind}: {subj} ({fp[:8]})" for fp, sev, kind, subj in zip(frame["fingerprint"], frame["severity"], frame["kind"], frame["subject"], strict=True)}
# kept in the URL as ?fp=<fingerprint> (a bound selectbox would put the long label there)
wanted = st.query_params.get("fp")
fp = st.selectbox("Anomaly", list(labels), index=list(labels).index(wanted) if wanted in labels else 0, format_func=labels.get, key="fp_pick")
st.query_params["fp"] = fp
row = frame[frame["fingerprint"] == fp].iloc[0]
st.text(
    f"{row['subject']}\nobserved {row['observed_text'] or 'n/a'}, expected {row['expected_text'] or 'n/a'} "
    f"(band {row['band_text'] or 'n/a'}), score {_num(row['score'])}"
)
if why := row["why_text"]:
    # what was judged is the value or a window's mean, whichever strayed furthest (insights.anomaly)
    st.text(f"why: observed is {why}; the band is the expected value ± the threshold learned from this series' own history")
if row["root_cause_text"]:
    st.text(f"root cause: {row['root_cause_text']}")
by = f" (set by {row['status_by']} at {_when(row['status_at'])})" if isinstance(row["status_by"], str) and not pd.isna(row["status_at"]) else ""
st.caption(ui.esc(f"status: {_status(row['effective_status'], row['status'], row['snoozed_until'], row['status_note'])}{by}"))

if not user.is_admin:
    st.info("Only admins can acknowledge, snooze or resolve anomalies.")
    st.stop()

a, b = st.columns([3, 1])
note = a.text_input("Note", key="anomaly_note", placeholder="what you found, or why it is fine")
until = b.date_input("Snooze until", value=f.now.date() + timedelta(days=7), min_value=f.now.date() + timedelta(days=1), key="snooze_until")
c = st.columns([1, 1, 1, 3])
done = None
if c[0].button("Acknowledge", key="ack", type="primary", width="stretch"):
    done = ("acknowledged", None)
if c[1].button("Snooze", key="snooze", width="stretch"):
    done = ("snoozed", datetime.combine(until, time(0), UTC))
if c[2].button("Resolve", key="resolve", width="stretch"):
    done = ("resolved", None)
if done is not None:
    auth.require_admin(user)  # the buttons are drawn for admins only; the write checks again
    status, snooze = done
    try:
        data.set_anomaly_status(fp, status, by=user.name, client=auth.client_address(), note=note or None, snoozed_until=snooze)
    except InputError as exc:
        st.error(str(exc))
    else:
        st.session_state["_pp_flash"] = f"{status.capitalize()}: {row['subject']}"
        st.rerun()
