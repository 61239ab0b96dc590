"""CloudWatch metrics -> ``metric_series`` and ``metric_points``, with few GetMetricData calls.

Series come from configured queries plus ``ListMetrics`` discovery in configured namespaces
(each discovered metric with each configured statistic). Points are fetched with GetMetricData,
500 queries per call (the API's limit), following ``NextToken``. Windows are incremental: the
watermark ``end`` is the end of the last window fetched; the next window starts ``overlap``
earlier (CloudWatch accepts points up to two weeks late and aggregates keep changing for a
while), ends at the last whole period before ``now``, and the upsert stores only what changed.
Series not stored before get the whole ``lookback`` instead. So a pass costs
``ceil(known / 500) + ceil(new / 500)`` calls (plus pages when AWS pages) and ``ListMetrics`` pages;
a first pass over a long lookback is cut into windows of at most ``max_window_hours`` and of at
most 100,800 datapoints per call (AWS's limit), one call per window.

Config ``[collectors.cloudwatch]``::

    namespaces = ["Pipepulse/Reference"]   # discovery; [] for configured queries only
    stats = ["Sum"]                        # statistics for discovered metrics
    period_seconds = 300
    lookback_hours = 24                    # first window of a new series
    overlap_minutes = 15                   # re-read to catch late points
    max_window_hours = 24                  # longest window one call asks for (first passes)
    queries = [{namespace = "AWS/States", metric = "ExecutionsFailed",
                dimensions = {StateMachineArn = "arn:..."}, stat = "Sum", period_seconds = 300}]

Limits: percentile statistics (``p95``) work on AWS but crash moto's server (HTTP 500), so the
tests and the demo use Sum/Average/Minimum/Maximum/SampleCount only. moto never returns
``NextToken`` and ignores ``MaxDatapoints``; the paging path is exercised against AWS only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from collectors.base import Batch, Collector, Context, MetricData, MetricPoint, Reads
from pipepulse.errors import CollectorError, ConfigError
from pipepulse.settings import Settings, check_keys, opt

__all__ = ["MAX_QUERIES", "CloudWatchCollector", "Series", "create", "series_key"]

NAME = "cloudwatch"
MAX_QUERIES = 500  # GetMetricData's limit per call
MAX_DATAPOINTS = 100_800  # GetMetricData's limit of datapoints per call


def series_key(namespace: str, metric: str, dimensions: Mapping[str, str], stat: str, period: int) -> str:
    """The canonical key of one series (``metric_series.series_key``): JSON of namespace, metric
    name, sorted dimensions, statistic and period."""
    return json.dumps(
        {"d": sorted(dimensions.items()), "m": metric, "n": namespace, "p": int(period), "s": stat},
        sort_keys=True,
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class Series:
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    period: int

    @property
    def key(self) -> str:
        return series_key(self.namespace, self.metric, dict(self.dimensions), self.stat, self.period)

    def row(self) -> dict[str, Any]:
        dims = dict(self.dimensions)
        return {
            "series_key": self.key,
            "namespace": self.namespace,
            "metric_name": self.metric,
            "dimensions": json.dumps(dims, sort_keys=True),
            "stat": self.stat,
            "period_seconds": self.period,
            "unit": "",
            "pipeline": dims.get("Pipeline"),
            "stage": dims.get("Stage"),
        }

    def query(self, qid: str) -> dict[str, Any]:
        return {
            "Id": qid,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions],
                },
                "Period": self.period,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


def _floor(moment: datetime, period: int) -> datetime:
    epoch = int(moment.astimezone(UTC).timestamp())
    return datetime.fromtimestamp(epoch - epoch % period, UTC)


class CloudWatchCollector(Collector):
    name = NAME
    scope = "regional"  # every account x region (collectors/accounts.py)

    def __init__(self, *, namespaces: list[str], stats: list[str], period: int, lookback: timedelta,
                 overlap: timedelta, queries: list[Series], max_queries: int = MAX_QUERIES,
                 max_window: timedelta = timedelta(hours=24)) -> None:
        self.namespaces = namespaces
        self.stats = stats
        self.period = period
        self.lookback = lookback
        self.overlap = overlap
        self.queries = queries
        self.max_queries = max_queries
        self.max_window = max_window

    def reads(self, ctx: Context) -> Reads:
        return Reads(metric_series=True)  # series not stored yet get the whole lookback

    def collect(self, ctx: Context) -> Batch:
        cw = ctx.client("cloudwatch")
        batch = Batch()
        series = {s.key: s for s in self.queries}
        for ns in self.namespaces:
            for metric in self._discover(cw, ns):
                for stat in self.stats:
                    s = Series(ns, metric["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))),
                               stat, self.period)
                    series.setdefault(s.key, s)
        if not series:
            return batch
        known = ctx.stored.metric_series
        end = _floor(ctx.now, self.period)
        mark = ctx.watermark("end")
        incremental_start = None
        if mark:
            incremental_start = _floor(datetime.fromisoformat(mark) - self.overlap, self.period)
        groups: list[tuple[datetime, list[Series]]] = []
        fresh = [s for k, s in sorted(series.items()) if k not in known or incremental_start is None]
        old = [s for k, s in sorted(series.items()) if k in known and incremental_start is not None]
        if fresh:
            groups.append((end - self.lookback, fresh))
        if old:
            groups.append((min(incremental_start, end - timedelta(seconds=self.period)), old))
        points: list[MetricPoint] = []
        calls = 0
        minimum = 0
        for start, group in groups:
            if start >= end:
                continue
            for i in range(0, len(group), self.max_queries):
                chunk = group[i : i + self.max_queries]
                for w_start, w_end in self._windows(start, end, len(chunk)):
                    got, n = self._fetch(ctx, cw, chunk, w_start, w_end)
                    points.extend(got)
                    calls += n
                    minimum += 1
        batch.metrics = MetricData(series=[s.row() for s in series.values()], points=points)
        batch.watermarks["end"] = end.isoformat()
        batch.window_start = min(g[0] for g in groups)
        batch.window_end = end
        batch.details.update({"series": len(series), "new_series": len(fresh), "points_fetched": len(points),
                              "get_metric_data_calls": calls,
                              "minimum_calls": minimum})
        return batch

    def _windows(self, start: datetime, end: datetime, queries: int) -> list[tuple[datetime, datetime]]:
        """``[start, end)`` cut so that no call asks for more than AWS's 100,800 datapoints nor
        spans more than ``max_window`` (a long first window in one call is slow to answer, on
        AWS and far more so on moto, whose time grows with window length squared)."""
        buckets = max(1, MAX_DATAPOINTS // max(queries, 1))
        span = min(self.max_window, timedelta(seconds=self.period * buckets))
        span = max(span, timedelta(seconds=self.period))
        out = []
        t = start
        while t < end:
            out.append((t, min(t + span, end)))
            t += span
        return out

    @staticmethod
    def _discover(cw: Any, namespace: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in cw.get_paginator("list_metrics").paginate(Namespace=namespace):
            out.extend(page.get("Metrics", []))
        return out

    def _fetch(self, ctx: Context, cw: Any, chunk: list[Series], start: datetime, end: datetime) -> tuple[list[MetricPoint], int]:
        by_id = {f"q{i}": s for i, s in enumerate(chunk)}
        queries = [s.query(qid) for qid, s in by_id.items()]
        out: list[MetricPoint] = []
        token = None
        calls = 0
        price = ctx.settings.prices.cloudwatch_metrics_requested_per_1000 / 1000
        while True:
            kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end, "ScanBy": "TimestampAscending"}
            if token:
                kwargs["NextToken"] = token
            answer = cw.get_metric_data(**kwargs)
            calls += 1
            ctx.calls.add_billed(len(queries) * price)  # billed per metric requested
            for result in answer.get("MetricDataResults", []):
                s = by_id.get(result.get("Id"))
                if s is None:
                    raise CollectorError(NAME, f"GetMetricData answered an unknown query id {result.get('Id')!r}")
                stamps, values = result.get("Timestamps", []), result.get("Values", [])
                if len(stamps) != len(values):
                    raise CollectorError(NAME, f"GetMetricData answer for {s.metric}: {len(stamps)} timestamps but {len(values)} values")
                key = s.key
                out.extend((key, ts.astimezone(UTC), float(v)) for ts, v in zip(stamps, values, strict=True))
            token = answer.get("NextToken")
            if not token:
                return out, calls


def _series(item: Any, i: int, label: str, period: int) -> Series:
    where = f"collectors.cloudwatch.queries #{i + 1}"
    if not isinstance(item, dict):
        raise ConfigError(f"{label}: [{where}]: expected a table {{namespace, metric, dimensions, stat}}")
    check_keys(item, "collectors.cloudwatch.queries", label, where=where)
    ns = opt(item, "namespace", str, label, where)
    metric = opt(item, "metric", str, label, where)
    if not ns or not metric:
        raise ConfigError(f"{label}: [{where}]: namespace and metric are required")
    dims = opt(item, "dimensions", dict, label, where, default={})
    return Series(ns, metric, tuple(sorted((str(k), str(v)) for k, v in dims.items())),
                  opt(item, "stat", str, label, where, default="Sum"), opt(item, "period_seconds", int, label, where, default=period))


def create(settings: Settings) -> CloudWatchCollector:
    label, where = settings.config_label, "collectors.cloudwatch"
    own = settings.section("collectors").get("cloudwatch", {}) or {}
    period = opt(own, "period_seconds", int, label, where, default=300)
    if period <= 0 or (period >= 60 and period % 60) or (period < 60 and period not in (1, 5, 10, 30)):
        raise ConfigError(f"{label}: [{where}] period_seconds: expected 1, 5, 10, 30 or a multiple of 60, got {period}")
    namespaces = opt(own, "namespaces", list, label, where, default=["Pipepulse/Reference"])
    stats = opt(own, "stats", list, label, where, default=["Sum"])
    lookback = opt(own, "lookback_hours", (int, float), label, where, default=24)
    overlap = opt(own, "overlap_minutes", (int, float), label, where, default=15)
    max_window = opt(own, "max_window_hours", (int, float), label, where, default=24)
    if lookback <= 0 or overlap < 0 or max_window <= 0:
        raise ConfigError(f"{label}: [{where}] lookback_hours and max_window_hours must be > 0 and overlap_minutes >= 0")
    queries = [_series(q, i, label, period) for i, q in enumerate(opt(own, "queries", list, label, where, default=[]))]
    return CloudWatchCollector(namespaces=[str(n) for n in namespaces], stats=[str(s) for s in stats], period=period,
                               lookback=timedelta(hours=lookback), overlap=timedelta(minutes=overlap), queries=queries,
                               max_window=timedelta(hours=max_window))
