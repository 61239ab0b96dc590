"""CloudWatch Logs -> ``run_logs``: for each failed run, its error and warning events.

Runs come from the store (the run sources of the same pass stored them first), read by the
runner before the pass (``reads``): failed or timed out runs updated since the watermark
(``since`` plus the ids handled at exactly that time, so nothing is skipped or read twice). For each, ``FilterLogEvents`` in the run's log group over its
time span, with the correlation id as a plain-term filter pattern; then, on the client side,
only events whose ``correlation_id`` equals the run's and whose level is ERROR or WARN(ING) are
kept, at most ``max_events_per_run``. Before the first run of a log group in a pass, one
``DescribeLogGroups`` says whether the group exists (no filtering of a missing group) and how
many days it keeps events; the pass records ``lookback_days`` and, per run source and pipeline,
the group and its retention in its details, so the dashboard can say why a run has no lines. The client-side filter matters: moto's JSON filter
patterns silently match every event, and AWS's plain term matches substrings (``c-12`` in
``c-123``).

Config ``[collectors.logs]``::

    max_events_per_run = 50
    max_runs = 200             # runs per pass; the rest next pass
    max_pages_per_run = 10
    lookback_days = 14         # ignore runs that ended earlier
    [collectors.logs.log_groups]   # per run source; {pipeline}, {run} (bare id) are filled in
    reference = "/pipepulse/reference/{pipeline}"
    glue = "/aws-glue/jobs/error"
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from collectors.base import Batch, Collector, Context, FailedRunsQuery, LogRow, Reads
from pipepulse.errors import CollectorError, ConfigError
from pipepulse.settings import Settings, opt, require_table

__all__ = ["LEVELS", "LogsCollector", "create", "event_row"]

NAME = "logs"
LEVELS = {"ERROR": "ERROR", "CRITICAL": "ERROR", "FATAL": "ERROR", "WARN": "WARN", "WARNING": "WARN"}
DEFAULT_GROUPS = {"reference": "/pipepulse/reference/{pipeline}", "glue": "/aws-glue/jobs/error"}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _mark(ctx: Context) -> tuple[datetime | None, set[str]]:
    """The watermark: the last ``updated_at`` handled, and the run ids handled at exactly then."""
    mark = json.loads(ctx.watermark("since") or "{}")
    since = datetime.fromisoformat(mark["since"]) if mark.get("since") else None
    return since, set(mark.get("done", []))


def event_row(event: dict[str, Any], *, group: str, run_id: str, correlation_id: str) -> LogRow | None:
    """The run_logs row for one event, or None unless it is the run's error or warning."""
    text = event.get("message", "")
    level = stage = None
    message = text
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        if str(data.get("correlation_id", "")) != correlation_id:
            return None
        level = LEVELS.get(str(data.get("level", "")).upper())
        stage = data.get("stage")
        message = str(data.get("message", text))
    else:
        if correlation_id not in text.split() and f"correlation_id={correlation_id}" not in text:
            return None
        level = next((LEVELS[w] for w in ("ERROR", "CRITICAL", "FATAL", "WARNING", "WARN") if w in text.upper()), None)
    if level is None:
        return None
    return LogRow(
        log_id=f"{group}:{event['eventId']}",
        run_id=run_id,
        correlation_id=correlation_id,
        ts=datetime.fromtimestamp(event["timestamp"] / 1000, UTC),
        level=level,
        stage=stage,
        message=message,
        log_group=group,
        log_stream=event.get("logStreamName", ""),
    )


class LogsCollector(Collector):
    name = NAME

    def __init__(self, *, groups: dict[str, str], max_events: int, max_runs: int, max_pages: int, lookback: timedelta) -> None:
        self.groups = groups
        self.max_events = max_events
        self.max_runs = max_runs
        self.max_pages = max_pages
        self.lookback = lookback

    def reads(self, ctx: Context) -> Reads:
        since, done = _mark(ctx)
        return Reads(failed_runs=FailedRunsQuery(since=since, done=frozenset(done), ended_after=ctx.now - self.lookback,
                                                 limit=self.max_runs))

    def collect(self, ctx: Context) -> Batch:
        batch = Batch()
        batch.details["lookback_days"] = self.lookback.days
        since, done = _mark(ctx)
        runs = ctx.stored.failed_runs
        if not runs:
            return batch
        logs = ctx.client("logs")
        stats = {"runs": 0, "events": 0, "missing_groups": 0}
        retention: dict[str, int | None | bool] = {}  # group -> days kept (None: never expire); False: missing
        seen: dict[str, dict[str, Any]] = {}
        for run in runs:
            stats["runs"] += 1
            template = self.groups.get(run["source"])
            if template and run["correlation_id"] and run["started_at"]:
                group = template.format(pipeline=run["pipeline"], run=run["run_id"].split(":", 1)[-1])
                if group not in retention:
                    retention[group] = _retention(logs, group)
                kept = retention[group]
                seen[f"{run['source']}:{run['pipeline']}"] = {"group": group, "retention_days": None if kept is False else kept,
                                                              "exists": kept is not False}
                if kept is False:
                    stats["missing_groups"] += 1
                else:
                    stats["events"] += self._run(logs, batch, run, group, stats)
            ts = run["updated_at"]
            if since is None or ts > since:
                since, done = ts, set()
            done.add(run["run_id"])
        assert since is not None
        batch.watermarks["since"] = json.dumps({"since": since.isoformat(), "done": sorted(done)})
        batch.details.update(stats)
        batch.details["log_groups"] = seen
        return batch

    def _run(self, logs: Any, batch: Batch, run: Mapping[str, Any], group: str, stats: dict) -> int:
        cid = run["correlation_id"]
        start = run["started_at"] - timedelta(minutes=1)
        end = (run["ended_at"] or run["started_at"]) + timedelta(minutes=5)
        kept = 0
        token = None
        for _ in range(self.max_pages):
            kwargs: dict[str, Any] = {"logGroupName": group, "startTime": _ms(start), "endTime": _ms(end),
                                      "filterPattern": f'"{cid}"', "limit": 1000}
            if token:
                kwargs["nextToken"] = token
            try:
                page = logs.filter_log_events(**kwargs)
            except CollectorError as exc:
                if "ResourceNotFoundException" in str(exc):
                    stats["missing_groups"] += 1
                    return kept
                raise
            for event in page.get("events", []):
                row = event_row(event, group=group, run_id=run["run_id"], correlation_id=cid)
                if row is not None:
                    batch.logs.append(row)
                    kept += 1
                    if kept >= self.max_events:
                        return kept
            token = page.get("nextToken")
            if not token:
                break
        return kept


def _retention(logs: Any, group: str) -> int | None | bool:
    """Days ``group`` keeps its events (None: never expire), or False when there is no such group."""
    page = logs.describe_log_groups(logGroupNamePrefix=group)
    for g in page.get("logGroups", []):  # sorted by name: the exact name comes first
        if g["logGroupName"] == group:
            return g.get("retentionInDays")
    return False


def create(settings: Settings) -> LogsCollector:
    label, where = settings.config_label, "collectors.logs"
    own = settings.section("collectors").get("logs", {}) or {}
    groups = dict(DEFAULT_GROUPS)
    for k, v in require_table(own.get("log_groups", {}), label, f"{where}.log_groups").items():
        if not isinstance(v, str):
            raise ConfigError(f"{label}: [{where}.log_groups] {k}: expected a log group name, got {v!r}")
        groups[k] = v
    values = {k: opt(own, k, int, label, where, default=d) for k, d in
              (("max_events_per_run", 50), ("max_runs", 200), ("max_pages_per_run", 10), ("lookback_days", 14))}
    for k, v in values.items():
        if v <= 0:
            raise ConfigError(f"{label}: [{where}] {k}: expected a positive number, got {v}")
    return LogsCollector(groups=groups, max_events=values["max_events_per_run"], max_runs=values["max_runs"],
                         max_pages=values["max_pages_per_run"], lookback=timedelta(days=values["lookback_days"]))
