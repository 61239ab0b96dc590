"""Links from a digest into the dashboard.

The dashboard keeps each page's state in its URL query parameters, so a link opens the same view
the digest describes. Scheme (``base`` is ``[pipepulse] dashboard_url``, no trailing slash):

=====================  ===============================================================
what                   link
=====================  ===============================================================
one run                ``{base}/run_detail?run=<run id>``
one pipeline           ``{base}/pipelines?pipeline=<name>&from=<YYYY-MM-DD>&to=<YYYY-MM-DD>``
open anomalies         ``{base}/anomalies?status=open``
one anomaly            ``{base}/anomalies?anomaly=<fingerprint>``
spend                  ``{base}/costs?from=<YYYY-MM-DD>&to=<YYYY-MM-DD>``
one collector          ``{base}/collectors?source=<source>``
overview               ``{base}/?from=<YYYY-MM-DD>&to=<YYYY-MM-DD>``
=====================  ===============================================================

Values are percent-encoded (run ids hold ``:`` and ``/``); ``from``/``to`` are inclusive UTC days.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

__all__ = ["anomalies_link", "anomaly_link", "collector_link", "costs_link", "overview_link", "pipeline_link", "run_link"]


def _url(base: str, page: str, params: dict[str, str]) -> str:
    query = urlencode(params)
    path = f"{base.rstrip('/')}/{page}"
    return f"{path}?{query}" if query else path


def run_link(base: str, run_id: str) -> str:
    return _url(base, "run_detail", {"run": run_id})


def pipeline_link(base: str, pipeline: str, start: date, end: date) -> str:
    return _url(base, "pipelines", {"pipeline": pipeline, "from": start.isoformat(), "to": end.isoformat()})


def anomalies_link(base: str, status: str = "open") -> str:
    return _url(base, "anomalies", {"status": status})


def anomaly_link(base: str, fingerprint: str) -> str:
    return _url(base, "anomalies", {"anomaly": fingerprint})


def costs_link(base: str, start: date, end: date) -> str:
    return _url(base, "costs", {"from": start.isoformat(), "to": end.isoformat()})


def collector_link(base: str, source: str) -> str:
    return _url(base, "collectors", {"source": source})


def overview_link(base: str, start: date, end: date) -> str:
    return _url(base, "", {"from": start.isoformat(), "to": end.isoformat()})
