"""Global controls (time range, end date, pipelines, accounts, auto-refresh), kept in the URL.

Each control is a widget in the sidebar's "Filters" popover, bound to a query parameter
(``bind="query-params"``), so a link such as ``/pipelines?range=30d&pipeline=orders`` (from an
alert email) opens the same view, and changing a control updates the address bar. Values not
among the options are ignored.

    range     24h | 7d | 30d | 90d | 180d | 365d
    to        YYYY-MM-DD: look at the window ending that day (default: now)
    pipeline  repeated: ?pipeline=orders&pipeline=clickstream
    account   repeated: AWS account ids (cost, and the run lists)
    region    repeated: AWS regions (the run lists)
    refresh   true: rerun the page every ``[dashboard] refresh_seconds``
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import streamlit as st

from dashboard.config import RANGES
from dashboard.ui import esc

__all__ = ["Filters", "RANGE_LENGTHS", "controls", "current", "now_minute", "partial_bucket", "summary", "window"]

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
    regions: tuple[str, ...] | None = None
    refresh: bool = False

    @property
    def start_day(self) -> date:
        """First day of day-granular reads: whole days, ``range`` of them ending at ``end_day``."""
        days = RANGE_LENGTHS[self.range].days
        return self.end_day - timedelta(days=days - 1) if days > 1 else self.start.date()

    @property
    def end_day(self) -> date:
        # the window is [start, end): a window ending at midnight does not include that day
        return (self.end - timedelta(microseconds=1)).date()

    @property
    def bucket(self) -> str:
        """The run trends' bucket: "hour" for windows of a week or less (a day holds one or two
        daily points), "day" for longer ones (the daily rollup)."""
        return "hour" if RANGE_LENGTHS[self.range] <= timedelta(days=7) else "day"

    @property
    def partial_from(self) -> datetime | None:
        """The start of the trend bucket (hour or day, as ``bucket``) the window's end cuts short:
        charts draw it as not over. None when the window ends on a bucket's edge ("Up to" a past day)."""
        return partial_bucket(self.end, timedelta(hours=1) if self.bucket == "hour" else timedelta(days=1))

    @property
    def partial_day(self) -> date | None:
        """The day the window's end cuts short (today, unless "Up to" a past day): daily charts
        (spend) draw it as not over."""
        start = partial_bucket(self.end, timedelta(days=1))
        return None if start is None else start.date()


def partial_bucket(end: datetime, step: timedelta) -> datetime | None:
    """The start of the bucket of length ``step`` (a day or an hour, counted from UTC midnight)
    that ``end`` (a window's exclusive end) cuts short, or None when ``end`` falls on a bucket's edge."""
    midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
    into = (end - midnight) % step
    return None if not into else end - into


def now_minute() -> datetime:
    """Now, floored to the minute: cached reads keyed by it are reused for a minute."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def window(range_key: str, to: date | None, now: datetime) -> tuple[datetime, datetime, datetime, datetime]:
    """``(start, end, previous start, previous end)`` for a range ending now or at the end of ``to``."""
    length = RANGE_LENGTHS[range_key]
    end = now if to is None or to >= now.date() else datetime.combine(to + timedelta(days=1), time(0), UTC)
    start = end - length
    return start, end, start - length, start


def controls(
    pipeline_options: list[str], account_options: list[str], *, default_range: str, refresh_seconds: int,
    region_options: list[str] | None = None,
) -> Filters:
    """Draw the global controls and return the filters they select.

    They all sit in one "Filters" popover in the sidebar, and ``summary`` (which ``app.py`` writes
    under it) says what they select. The browser draws a popover's widgets only when it is opened,
    and each widget drawn costs every page load (README: the dashboard's figures)."""
    box = st.sidebar.popover("Filters", icon=":material/tune:", width="stretch")
    range_key = box.selectbox(
        "Time range", RANGES, index=RANGES.index(default_range), key="range", bind="query-params"
    )
    to = box.date_input("Up to", value=None, key="to", bind="query-params", help="Leave empty for now")
    chosen = box.multiselect(
        "Pipelines", pipeline_options, key="pipeline", bind="query-params", placeholder="All pipelines"
    )
    accounts = box.multiselect(
        "Accounts", account_options, key="account", bind="query-params", placeholder="All accounts",
        help="Filters cost and the lists of runs and failures (trend charts are per pipeline)",
    )
    # only when runs or cost name more than one region: a single-region setup draws no extra widget
    regions = box.multiselect(
        "Regions", region_options, key="region", bind="query-params", placeholder="All regions",
        help="Filters the lists of runs and failures (trend charts are per pipeline)",
    ) if region_options and len(region_options) > 1 else []
    refresh = box.toggle(
        "Auto-refresh", key="refresh", bind="query-params", help=f"Rerun the page every {refresh_seconds} s"
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
        regions=tuple(regions) or None,
        refresh=refresh,
    )


def summary(f: Filters) -> str:
    """What the filters select, in words, for the caption under the popover (Markdown escaped)."""
    parts = [f"Last {f.range}: {f.start:%Y-%m-%d %H:%M} to {f.end:%Y-%m-%d %H:%M} UTC"]
    parts.append("pipelines " + ", ".join(f.pipelines) if f.pipelines else "all pipelines")
    if f.accounts:
        parts.append("accounts " + ", ".join(f.accounts))
    if f.regions:
        parts.append("regions " + ", ".join(f.regions))
    return esc("; ".join(parts))


def current() -> Filters:
    """The filters ``app.py`` read from the controls in this run."""
    filters = st.session_state.get("_pp_filters")
    if not isinstance(filters, Filters):
        st.error("Open the dashboard through its main page.")
        st.stop()
    return filters
