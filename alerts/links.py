"""Links from a digest into the dashboard.

The dashboard keeps each page's state in its URL query parameters (``dashboard/state.py`` and
the pages' widgets bound with ``bind="query-params"``), so a link opens the same view the digest
describes. ``base`` is ``[pipepulse] dashboard_url`` (no trailing slash):

=====================  ===================================================================
what                   link
=====================  ===================================================================
one run                ``{base}/run?run=<run id>``
one pipeline           ``{base}/pipelines?range=<24h|7d|...>&to=<YYYY-MM-DD>&pipeline=<name>``
open anomalies         ``{base}/anomalies?status=open``
one anomaly            ``{base}/anomalies?status=open&status=snoozed&fp=<fingerprint>``
spend                  ``{base}/costs?range=30d&to=<YYYY-MM-DD>`` (the Spend view)
forecast and budget    ``{base}/costs?range=30d&to=<YYYY-MM-DD>&view=Forecast``
collectors             ``{base}/collectors?range=<...>&to=<YYYY-MM-DD>``
overview               ``{base}/?range=<...>&to=<YYYY-MM-DD>`` (the default page is served at the root)
=====================  ===================================================================

``range`` is one of the dashboard's ranges (``24h``, ``7d``, ``30d``, ...), ``to`` the UTC day
the window ends (the dashboard shows "up to now" when that day is today, and that whole day when
the link is opened later). Values are percent-encoded (run ids hold ``:`` and ``/``).
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

__all__ = [
    "PERIOD_RANGE",
    "anomalies_link",
    "anomaly_link",
    "collectors_link",
    "costs_link",
    "overview_link",
    "pipeline_link",
    "run_link",
]

# The dashboard range that shows a digest period.
PERIOD_RANGE = {"immediate": "24h", "daily": "24h", "weekly": "7d"}


def _url(base: str, page: str, params: list[tuple[str, str]]) -> str:
    query = urlencode(params)
    path = f"{base.rstrip('/')}/{page}"
    return f"{path}?{query}" if query else path


def run_link(base: str, run_id: str) -> str:
    return _url(base, "run", [("run", run_id)])


def pipeline_link(base: str, pipeline: str, *, range_key: str, to: date) -> str:
    return _url(base, "pipelines", [("range", range_key), ("to", to.isoformat()), ("pipeline", pipeline)])


def anomalies_link(base: str, status: str = "open") -> str:
    return _url(base, "anomalies", [("status", status)])


def anomaly_link(base: str, fingerprint: str) -> str:
    # open and snoozed: a digest reports open anomalies and those whose snooze has ended
    return _url(base, "anomalies", [("status", "open"), ("status", "snoozed"), ("fp", fingerprint)])


def costs_link(base: str, *, to: date, range_key: str = "30d", view: str | None = None) -> str:
    """The Costs page; ``view`` names one of its tabs (``Forecast``, ``Unit costs``), else Spend."""
    return _url(base, "costs", [("range", range_key), ("to", to.isoformat())] + ([("view", view)] if view else []))


def collectors_link(base: str, *, range_key: str, to: date) -> str:
    return _url(base, "collectors", [("range", range_key), ("to", to.isoformat())])


def overview_link(base: str, *, range_key: str, to: date) -> str:
    return _url(base, "", [("range", range_key), ("to", to.isoformat())])
