"""What the pipeline tells AWS about itself: CloudWatch metrics and CloudWatch Logs.

``Metrics`` buffers datums and sends them with PutMetricData, up to 1,000 per call (AWS's
limit), in namespace ``Pipepulse/Reference`` with dimensions ``Pipeline`` and ``Stage``.
``Logs`` writes structured JSON events to group ``/pipepulse/reference/<pipeline>``, stream
``<YYYY/MM/DD>/<run_id>``, one PutLogEvents call per stream per flush (events sorted by time, as
CloudWatch Logs requires), and echoes each event as a JSON line to ``echo`` (stdout for a live
run). Both use plain boto3 clients, so ``AWS_ENDPOINT_URL`` decides where they go.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import threading
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, TextIO

import boto3
from botocore.exceptions import ClientError

__all__ = ["MAX_LOG_EVENT_AGE", "MAX_METRIC_AGE", "NAMESPACE", "Logs", "Metrics", "log_group", "log_stream"]

NAMESPACE = "Pipepulse/Reference"
MAX_DATUMS_PER_PUT = 1000
# PutMetricData refuses datapoints more than two weeks old (the whole call fails).
MAX_METRIC_AGE = timedelta(days=14)
# PutLogEvents drops events more than 14 days old (tooOldLogEventEndIndex; the rest are kept).
MAX_LOG_EVENT_AGE = timedelta(days=14)
MAX_EVENTS_PER_PUT = 10_000
MAX_BYTES_PER_PUT = 1_000_000


def log_group(pipeline: str) -> str:
    return f"/pipepulse/reference/{pipeline}"


def log_stream(day: datetime, run_id: str) -> str:
    return f"{day:%Y/%m/%d}/{run_id}"


class Metrics:
    """A buffer of metric datums for one namespace; ``flush()`` sends them in batches."""

    def __init__(
        self,
        *,
        client=None,
        namespace: str = NAMESPACE,
        batch: int = MAX_DATUMS_PER_PUT,
        not_before: datetime | None = None,
    ) -> None:
        """``not_before``: datums older than this are not sent (a backfill sets it to 14 days
        before the wall clock plus a margin, because CloudWatch would refuse the whole call)."""
        self.cw = client or boto3.client("cloudwatch")
        self.not_before = not_before
        self.too_old = 0
        self.namespace = namespace
        self.batch = batch
        self.pending: list[dict[str, Any]] = []
        self.calls = 0
        self.sent = 0

    def add(
        self,
        name: str,
        value: float,
        at: datetime,
        *,
        unit: str,
        pipeline: str,
        stage: str | None = None,
    ) -> None:
        if self.not_before is not None and at < self.not_before:
            self.too_old += 1
            return
        dims = [{"Name": "Pipeline", "Value": pipeline}]
        if stage is not None:
            dims.append({"Name": "Stage", "Value": stage})
        self.pending.append(
            {
                "MetricName": name,
                "Dimensions": dims,
                "Timestamp": at,
                "Value": float(value),
                "Unit": unit,
            }
        )
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        while self.pending:
            chunk, self.pending = self.pending[: self.batch], self.pending[self.batch :]
            self.cw.put_metric_data(Namespace=self.namespace, MetricData=chunk)
            self.calls += 1
            self.sent += len(chunk)


class Logs:
    """Buffered structured log events per (group, stream)."""

    def __init__(
        self,
        *,
        client=None,
        echo: TextIO | None = None,
        workers: int = 1,
        not_before: datetime | None = None,
    ) -> None:
        """``not_before``: events older than this are counted in ``too_old`` and not sent (a
        backfill sets it to 14 days before the wall clock plus a margin: CloudWatch Logs would
        drop them)."""
        self.logs = client or boto3.client("logs")
        self.echo = echo
        self.not_before = not_before
        self.too_old = 0
        self.pending: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
        self._groups: set[str] = set()
        self._streams: set[tuple[str, str]] = set()
        self.calls = 0
        self.bytes = 0
        # workers > 1: streams are shipped by a thread pool, and ``flush(wait=False)`` returns at
        # once (a backfill keeps simulating while the calls of the previous day are in flight)
        self._pool = (
            cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="logs")
            if workers > 1
            else None
        )
        self._inflight: list[cf.Future] = []
        self._lock = threading.Lock()

    def event(self, group: str, stream: str, at: datetime, fields: dict[str, Any]) -> int:
        """Queue one JSON event; returns its size in bytes (what CloudWatch Logs bills: the run
        wrote it, even when it is too old to send now)."""
        body = {"ts": at.isoformat(), **fields}
        line = json.dumps(body, default=str, separators=(",", ":"))
        size = len(line.encode()) + 26  # AWS counts 26 bytes of overhead per event
        if self.not_before is not None and at < self.not_before:
            self.too_old += 1
            return size
        self.pending[(group, stream)].append((int(at.timestamp() * 1000), line))
        if self.echo is not None:
            self.echo.write(line + "\n")
        self.bytes += size
        return size

    def flush(self, *, wait: bool = True) -> None:
        """Send the queued events; with a pool and ``wait=False``, only start sending them."""
        pending, self.pending = self.pending, defaultdict(list)
        for group in sorted({g for g, _ in pending}):
            self._ensure_group(group)
        for (g, s), ev in sorted(pending.items()):
            if self._pool is None:
                self._flush_stream(g, s, ev)
            else:
                self._inflight.append(self._pool.submit(self._flush_stream, g, s, ev))
        if wait:
            inflight, self._inflight = self._inflight, []
            for f in inflight:
                f.result()

    def close(self) -> None:
        """Send everything queued and stop the pool."""
        try:
            self.flush()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Stop the pool (waiting for calls in flight) without sending what is still queued."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _flush_stream(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        self._ensure_stream(group, stream)
        events.sort(key=lambda e: e[0])
        batch: list[dict[str, Any]] = []
        size = 0
        for ts, msg in events:
            n = len(msg.encode()) + 26
            if batch and (len(batch) >= MAX_EVENTS_PER_PUT or size + n > MAX_BYTES_PER_PUT):
                self._put(group, stream, batch)
                batch, size = [], 0
            batch.append({"timestamp": ts, "message": msg})
            size += n
        if batch:
            self._put(group, stream, batch)

    def _put(self, group: str, stream: str, batch: list[dict[str, Any]]) -> None:
        self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
        with self._lock:
            self.calls += 1

    def _ensure_group(self, group: str) -> None:
        if group not in self._groups:
            try:
                self.logs.create_log_group(logGroupName=group)
                self.calls += 1
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
            self._groups.add(group)

    def _ensure_stream(self, group: str, stream: str) -> None:
        if (group, stream) not in self._streams:
            try:
                self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
                with self._lock:
                    self.calls += 1
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
            with self._lock:
                self._streams.add((group, stream))
