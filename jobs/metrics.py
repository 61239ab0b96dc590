"""pipepulse's own health as Prometheus metrics, served on ``/metrics`` by ``pipepulse schedule``.

``Metrics`` holds one ``prometheus_client`` registry (not the library's global one, so tests and
two schedulers in one process never collide) and turns what the scheduler's jobs return into
samples: ``observe(outcome, seconds)`` is the scheduler's ``on_outcome`` hook. Names (all
prefixed ``pipepulse_``; ``deploy/grafana/pipepulse.json`` reads them):

=========================================  ============================================================
metric                                     what
=========================================  ============================================================
collector_passes_total{source,status}      collector passes by source, ``succeeded`` or ``failed``
collector_rows_written_total{source}       rows a source's passes wrote to the store
collector_api_calls_total{source}          AWS API calls the collectors made
collector_api_cost_usd_total{source}       their price at list prices (``[prices]``)
collector_lag_seconds{source}              seconds since the source's last successful pass
                                           (from the start of the scheduler until the first one)
job_runs_total{job,status}                 scheduled job runs: ``ran``, ``failed``, ``skipped``
job_duration_seconds{job}                  histogram of job run times
notifications_total{period,channel,status} digest and alert messages: email, slack or webhook;
                                           ``sent`` or ``failed``
notification_attempts_total{channel}       HTTP tries Slack/webhook messages took (retries show here)
database_up                                1 when the store answered the last probe, else 0
database_down_since_timestamp_seconds      served by the scheduler: since when its jobs find the
                                           database unreachable (Unix time), 0 while it is reachable
=========================================  ============================================================

The database probe is injectable (``database_probe``): by default ``SELECT 1`` on the engine at
scrape time. ``pipepulse schedule`` also hands over its scheduler's state (``down_since``, from
``Scheduler.health()``): while its jobs find the database unreachable, ``database_up`` is 0 whatever
the probe says, and the scrape's help text and the gauge say since when.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["METRIC_NAMES", "Metrics", "serve"]

log = logging.getLogger(__name__)

METRIC_NAMES = (
    "pipepulse_collector_passes_total",
    "pipepulse_collector_rows_written_total",
    "pipepulse_collector_api_calls_total",
    "pipepulse_collector_api_cost_usd_total",
    "pipepulse_collector_lag_seconds",
    "pipepulse_job_runs_total",
    "pipepulse_job_duration_seconds",
    "pipepulse_notifications_total",
    "pipepulse_notification_attempts_total",
    "pipepulse_database_up",
    "pipepulse_database_down_since_timestamp_seconds",
)
_DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class _Live(Collector):
    """Gauges computed at scrape time: collector lag and database reachability."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        m = self.metrics
        lag = GaugeMetricFamily("pipepulse_collector_lag_seconds", "Seconds since the source's last successful pass",
                                labels=["source"])
        now = m.clock()
        with m.lock:
            for source in sorted(m.sources):
                lag.add_metric([source], max(0.0, now - m.last_success.get(source, m.started)))
        yield lag
        up = GaugeMetricFamily("pipepulse_database_up", "1 when the store answered the last probe, else 0")
        since = m.down_since() if m.down_since is not None else None
        try:
            ok = since is None and (bool(m.database_probe()) if m.database_probe is not None else True)
        except Exception:  # noqa: BLE001 - a probe that raises means the database is not up
            ok = False
        up.add_metric([], 1.0 if ok else 0.0)
        yield up
        if m.down_since is not None:
            text = "ok" if since is None else f"database unreachable since {since:%Y-%m-%d %H:%M:%S} UTC"
            down = GaugeMetricFamily("pipepulse_database_down_since_timestamp_seconds",
                                     f"Since when the scheduler's jobs find the database unreachable (0: reachable); now: {text}")
            down.add_metric([], since.timestamp() if since is not None else 0.0)
            yield down


class Metrics:
    """The scheduler's metrics (see the module docstring)."""

    def __init__(self, *, sources: list[str] | tuple[str, ...] = (), clock: Callable[[], float] = time.time,
                 database_probe: Callable[[], bool] | None = None,
                 down_since: Callable[[], datetime | None] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.clock = clock
        self.started = clock()
        self.sources: set[str] = set(sources)
        self.last_success: dict[str, float] = {}
        self.database_probe = database_probe
        self.down_since = down_since  # the scheduler's "database unreachable since" (None: reachable)
        self.lock = threading.Lock()
        r = self.registry
        self.passes = Counter("pipepulse_collector_passes", "Collector passes by source and status",
                              ["source", "status"], registry=r)
        self.rows = Counter("pipepulse_collector_rows_written", "Rows collector passes wrote", ["source"], registry=r)
        self.api_calls = Counter("pipepulse_collector_api_calls", "AWS API calls made by the collectors", ["source"],
                                 registry=r)
        self.api_cost = Counter("pipepulse_collector_api_cost_usd", "Price of the collectors' AWS API calls (USD, list prices)",
                                ["source"], registry=r)
        self.job_runs = Counter("pipepulse_job_runs", "Scheduled job runs by status", ["job", "status"], registry=r)
        self.job_seconds = Histogram("pipepulse_job_duration_seconds", "Scheduled job run time", ["job"],
                                     buckets=_DURATION_BUCKETS, registry=r)
        self.notifications = Counter("pipepulse_notifications", "Digest and alert messages by channel and status",
                                     ["period", "channel", "status"], registry=r)
        self.attempts = Counter("pipepulse_notification_attempts", "HTTP tries of Slack and webhook messages",
                                ["channel"], registry=r)
        r.register(_Live(self))
        for source in self.sources:  # every source shows from the first scrape, at zero
            for status in ("succeeded", "failed"):
                self.passes.labels(source, status)
            for counter in (self.rows, self.api_calls, self.api_cost):
                counter.labels(source)

    # ---- what the jobs return -> samples ------------------------------------------------------

    def observe(self, outcome: Any, seconds: float) -> None:
        """Record one scheduler outcome (``JobOutcome``) that took ``seconds``."""
        self.job_runs.labels(outcome.job, outcome.status).inc()
        if outcome.status != "skipped":
            self.job_seconds.labels(outcome.job).observe(seconds)
        result = outcome.result
        for p in _passes(result):
            self.record_pass(p)
        for d in getattr(result, "digests", None) or []:
            if d.status in ("sent", "failed"):
                channel = d.channel.partition(":")[0] if getattr(d, "channel", "email") != "email" else "email"
                self.notifications.labels(result.period, channel, d.status).inc()
                if channel != "email":
                    self.attempts.labels(channel).inc(d.attempts)

    def record_pass(self, p: Any) -> None:
        """One collector pass (``collectors.runner.PassResult``)."""
        self.passes.labels(p.source, p.status).inc()
        self.rows.labels(p.source).inc(p.rows_written)
        self.api_calls.labels(p.source).inc(p.api_calls)
        self.api_cost.labels(p.source).inc(p.api_cost_usd)
        with self.lock:
            self.sources.add(p.source)
            if p.ok:
                self.last_success[p.source] = self.clock()


def _passes(result: Any) -> list[Any]:
    if result is None:
        return []
    if hasattr(result, "rows_written") and hasattr(result, "source"):  # one source's pass
        return [result]
    return list(getattr(result, "passes", None) or [])  # the collect job


def serve(metrics: Metrics, *, host: str, port: int) -> tuple[Any, threading.Thread]:
    """Serve ``/metrics`` on ``host:port`` in a daemon thread; returns (server, thread) so the
    caller can ``server.shutdown()``. Port 0 picks a free port (``server.server_port``)."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    log.info("serving metrics", extra={"host": host, "port": server.server_port})
    return server, thread
