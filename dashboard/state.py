"""Global controls (time range, end date, pipelines, accounts, auto-refresh), kept in the URL.

Each control is a sidebar widget bound to a query parameter (``bind="query-params"``), so a link
such as ``/pipelines?range=30d&pipeline=orders`` (from an alert email) opens the same view, and
changing a control updates the address bar. Values not among the options are ignored.

    range     24h | 7d | 30d | 90d | 180d | 365d
    to        YYYY-MM-DD: look at the window ending that day (default: now)
    pipeline  repeated: ?pipeline=orders&pipeline=clickstream
    account   repeated
    refresh   true: rerun the page every ``[dashboard] refresh_seconds``
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from dashboard.config import RANGES

__all__ = ["Filters", "RANGE_LENGTHS", "controls", "current", "now_minute", "window"]

RANGE_LENGTHS = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "180d": timedelta(days=180),
    "365d": timedelta(days=365),
}
assert tuple(RANGE_LENGTHS) == RANGES


@dataclass(frozen=True)
class Filters:
    range: str
    start: datetime
    end: datetime
    prev_start: datetime
    prev_end: datetime
    pipelines: tuple[str, ...] | None
    accounts: tuple[str, ...] | None
    now: datetime

    @property
    def start_day(self) -> date:
        """First day of day-granular reads: whole days, ``range`` of them ending at ``end_day``."""
        days = RANGE_LENGTHS[self.range].days
        return self.end_day - timedelta(days=days - 1) if days > 1 else self.start.date()

    @property
    def end_day(self) -> date:
        # the window is [start, end): a window ending at midnight does not include that day
        return (self.end - timedelta(microseconds=1)).date()


def now_minute() -> datetime:
    """Now, floored to the minute: cached reads keyed by it are reused for a minute."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def window(range_key: str, to: date | None, now: datetime) -> tuple[datetime, datetime, datetime, datetime]:
    """``(start, end, previous start, previous end)`` for a range ending now or at the end of ``to``."""
    length = RANGE_LENGTHS[range_key]
    end = now if to is None or to >= now.date() else datetime.combine(to + timedelta(days=1), time(0), UTC)
    start = end - length
    return start, end, start - length, start


def controls(pipeline_options: list[str], account_options: list[str], *, default_range: str) -> Filters:
    """Draw the sidebar controls and return the filters they select.

    Time range and pipelines are always in view; the end date and the accounts sit in a "More
    filters" popover (the browser draws a popover's widgets only when it is opened, and a date
    picker and a multiselect cost every page load 50-100 ms). The sidebar caption that ``app.py``
    writes under them names the window, and the accounts when some are chosen."""
    sb = st.sidebar
    range_key = sb.selectbox(
        "Time range", RANGES, index=RANGES.index(default_range), key="range", bind="query-params"
    )
    chosen = sb.multiselect(
        "Pipelines", pipeline_options, key="pipeline", bind="query-params", placeholder="All pipelines"
    )
    more = sb.popover("More filters", icon=":material/tune:", width="stretch")
    to = more.date_input("Up to", value=None, key="to", bind="query-params", help="Leave empty for now")
    accounts = more.multiselect(
        "Accounts", account_options, key="account", bind="query-params", placeholder="All accounts",
        help="Filters cost; runs are filtered by pipeline",
    )
    now = now_minute()
    start, end, prev_start, prev_end = window(range_key, to, now)
    return Filters(
        range=range_key,
        start=start,
        end=end,
        prev_start=prev_start,
        prev_end=prev_end,
        pipelines=tuple(chosen) or None,
        accounts=tuple(accounts) or None,
        now=now,
    )


def current() -> Filters:
    """The filters ``app.py`` read from the controls in this run."""
    filters = st.session_state.get("_pp_filters")
    if not isinstance(filters, Filters):
        st.error("Open the dashboard through its main page.")
        st.stop()
    return filters
