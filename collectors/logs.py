"""CloudWatch Logs -> ``run_logs`` (each failed run's error and warning events) and
``lambda_invocations`` (the figures of every Lambda REPORT line).

Every event is read by the parsers of ``collectors/logformats.py`` (Lambda text and JSON log
formats, Glue driver/executor logs); a record's level is its own field, never a word found in
its message.

Runs come from the store (the run sources of the same pass stored them first), read by the
runner before the pass (``reads``): failed or timed out runs this collector has not read yet
(``log_reads``, written with the log rows in the pass's transaction), or whose end changed since,
or that it read less than ``reread_minutes`` after their end (late events may still arrive: they
are read again, and the rows, keyed by log group and event id, are not stored twice). The mark
is what was read, never a time another pass stored the run at: a slow pass that commits a run
after this collector's pass is read by the next one, whatever its ``updated_at``. For each, ``FilterLogEvents`` in the run's log group over its
time span, with the correlation id as a plain-term filter pattern; then, on the client side,
only events whose ``correlation_id`` equals the run's and whose level is ERROR or WARN(ING) are
kept, at most ``max_events_per_run``. Before the first run of a log group in a pass, one
``DescribeLogGroups`` says whether the group exists (no filtering of a missing group) and how
many days it keeps events; the pass records ``lookback_days`` and, per run source and pipeline,
the group and its retention in its details, so the dashboard can say why a run has no lines. The client-side filter matters: moto's JSON filter
patterns silently match every event, and AWS's plain term matches substrings (``c-12`` in
``c-123``).

Glue runs are read where Glue writes them: the log groups ``glue_groups`` (by default
``/aws-glue/jobs/error`` and ``/aws-glue/jobs/output``), streams named by the job run id (the
driver's stream is the id, executors' streams start with it), so no filter pattern is needed:
every ERROR/WARN record of the run is kept, and from the error group also the records without a
level that carry an error (a Python traceback), stored as ERROR, or no level at all (stderr of the
JVM, e.g. ``# java.lang.OutOfMemoryError``), stored as STDERR.

Step Functions runs are read from the execution log of their state machine (the log group of its
``loggingConfiguration``, found by one ``DescribeStateMachine`` per machine and pass), with the
execution ARN as a plain-term filter pattern; the records (``id``, ``type``, ``details``,
``previous_event_id``, ``event_timestamp``, ``execution_arn``) of that execution whose type is a
failure (``*Failed``, ``*TimedOut``, ``*Aborted``: ERROR) are kept, with the state's name as the
stage and ``error: cause`` as the message. A machine without logging is recorded in the details
(``log_groups``) as having no group. A ``log_groups`` entry for ``stepfunctions`` overrides this.

Lambda: for each function in ``lambda_functions`` (name -> pipeline), and, with
``lambda_discover``, every ``/aws/lambda/`` log group (at most ``max_functions``), the REPORT
lines (``platform.report`` records in the JSON format) since the last pass (first pass:
``lookback_days``), with ``?"REPORT RequestId" ?"platform.report"`` as the filter pattern. Each
becomes one ``lambda_invocations`` row keyed by log group and request id, so the five minutes
read again each pass (for late events) write nothing twice.

Config ``[collectors.logs]``::

    max_events_per_run = 50
    max_runs = 200             # runs per pass; the rest next pass
    max_pages_per_run = 10
    lookback_days = 14         # ignore runs that ended earlier
    reread_minutes = 15        # a run read sooner than this after its end is read again
    [collectors.logs.log_groups]   # per run source; {pipeline}, {run} (bare id) are filled in
    reference = "/pipepulse/reference/{pipeline}"
    glue_groups = ["/aws-glue/jobs/error", "/aws-glue/jobs/output"]
    lambda_discover = false    # true: also every /aws/lambda/ group (at most max_functions)
    max_functions = 50
    max_pages_per_function = 20
    [collectors.logs.lambda_functions]   # function name -> the pipeline its invocations belong to
    orders-load = "orders"
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from collectors.base import (
    Batch,
    Collector,
    Context,
    FailedRunsQuery,
    InvocationRow,
    LogRead,
    LogRow,
    Reads,
)
from collectors.logformats import parse_glue, parse_lambda, parse_sfn
from collectors.stepfunctions import log_group_of
from pipepulse.errors import CollectorError, ConfigError
from pipepulse.settings import Settings, opt, require_table

__all__ = ["LEVELS", "LogsCollector", "create", "event_row", "glue_rows", "invocation_rows", "sfn_rows"]

NAME = "logs"
LEVELS = {"ERROR": "ERROR", "CRITICAL": "ERROR", "FATAL": "ERROR", "WARN": "WARN", "WARNING": "WARN"}
DEFAULT_GROUPS = {"reference": "/pipepulse/reference/{pipeline}"}
GLUE_GROUPS = ("/aws-glue/jobs/error", "/aws-glue/jobs/output")
LAMBDA_PREFIX = "/aws/lambda/"
REPORT_PATTERN = '?"REPORT RequestId" ?"platform.report"'
OVERLAP = timedelta(minutes=5)  # CloudWatch may store an event a little after its timestamp


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


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
        records = parse_lambda(text)  # one event: its first record says what it is
        if records:
            level = LEVELS.get(str(records[0].get("level") or "").upper())
            message = str(records[0].get("message") or text) if records[0]["kind"] == "APP" else text
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


def glue_rows(events: list[dict[str, Any]], *, group: str, run_id: str, correlation_id: str | None) -> list[LogRow]:
    """The run_logs rows of one Glue run's events in ``group``: its errors and warnings."""
    out: list[LogRow] = []
    stderr = group.rstrip("/").endswith("/error")
    for event in events:
        for i, rec in enumerate(parse_glue(event.get("message", ""))):
            level = LEVELS.get(str(rec.get("level") or "").upper())
            if level is None and stderr:
                level = "ERROR" if rec.get("error_type") else "STDERR"
            if level is None:
                continue
            out.append(LogRow(
                log_id=f"{group}:{event['eventId']}" + (f":{i}" if i else ""),
                run_id=run_id,
                correlation_id=correlation_id,
                ts=datetime.fromtimestamp(event["timestamp"] / 1000, UTC),
                level=level,
                stage=rec.get("logger"),
                message=str(rec.get("message", "")),
                log_group=group,
                log_stream=event.get("logStreamName", ""),
            ))
    return out


def sfn_rows(events: list[dict[str, Any]], *, group: str, run_id: str, execution_arn: str,
             correlation_id: str | None) -> list[LogRow]:
    """The run_logs rows of one execution's log records among ``events``: its failures."""
    out: list[LogRow] = []
    for event in events:
        for rec in parse_sfn(event.get("message", "")):
            if rec.get("execution_arn") != execution_arn:
                continue
            level = LEVELS.get(str(rec.get("level") or "").upper())
            if level is None:
                continue
            what = rec["kind"].removeprefix("sfn.")
            error, cause = rec.get("error_type"), rec.get("error_message")
            message = ": ".join(str(p) for p in (error, cause) if p) or what
            out.append(LogRow(
                log_id=f"{group}:{event['eventId']}",
                run_id=run_id,
                correlation_id=correlation_id,
                ts=datetime.fromtimestamp(event["timestamp"] / 1000, UTC),
                level=level,
                stage=str(rec.get("state") or what),
                message=f"{what}: {message}" if message != what else what,
                log_group=group,
                log_stream=event.get("logStreamName", ""),
            ))
    return out


def _machine_arn(execution_arn: str) -> str | None:
    """The state machine of an execution ARN (``...:execution:<machine>:<name>`` or
    ``...:express:<machine>:<name>:<id>``)."""
    parts = execution_arn.split(":")
    if len(parts) < 8 or parts[2] != "states" or parts[5] not in ("execution", "express"):
        return None
    return ":".join([*parts[:5], "stateMachine", parts[6]])


def invocation_rows(events: list[dict[str, Any]], *, group: str, function: str, pipeline: str) -> list[InvocationRow]:
    """One row per REPORT line (or platform.report record) among ``events``."""
    out: list[InvocationRow] = []
    for event in events:
        for rec in parse_lambda(event.get("message", "")):
            if rec["kind"] not in ("REPORT", "platform.report") or not rec.get("request_id"):
                continue
            figures = [rec.get(k) for k in ("duration_ms", "billed_duration_ms", "memory_size_mb", "max_memory_used_mb")]
            if any(v is None for v in figures):
                continue
            out.append(InvocationRow(
                log_group=group, request_id=str(rec["request_id"]), function_name=function, pipeline=pipeline,
                ended_at=datetime.fromtimestamp(event["timestamp"] / 1000, UTC),
                duration_ms=float(rec["duration_ms"]), billed_duration_ms=float(rec["billed_duration_ms"]),
                memory_size_mb=int(rec["memory_size_mb"]), max_memory_used_mb=int(rec["max_memory_used_mb"]),
                init_duration_ms=None if rec.get("init_duration_ms") is None else float(rec["init_duration_ms"]),
                status=rec.get("status"), log_stream=event.get("logStreamName", ""),
            ))
    return out


class LogsCollector(Collector):
    name = NAME
    scope = "regional"  # every account x region (collectors/accounts.py)

    def __init__(self, *, groups: dict[str, str], max_events: int, max_runs: int, max_pages: int, lookback: timedelta,
                 glue_groups: tuple[str, ...] = GLUE_GROUPS, functions: dict[str, str] | None = None,
                 discover: bool = False, max_functions: int = 50, max_function_pages: int = 20,
                 reread: timedelta = timedelta(minutes=15)) -> None:
        self.groups = groups
        self.max_events = max_events
        self.max_runs = max_runs
        self.max_pages = max_pages
        self.lookback = lookback
        self.glue_groups = glue_groups
        self.functions = dict(functions or {})
        self.discover = discover
        self.max_functions = max_functions
        self.max_function_pages = max_function_pages
        self.reread = reread

    def reads(self, ctx: Context) -> Reads:
        return Reads(failed_runs=FailedRunsQuery(ended_after=ctx.now - self.lookback, limit=self.max_runs))

    def collect(self, ctx: Context) -> Batch:
        batch = Batch()
        batch.details["lookback_days"] = self.lookback.days
        logs = ctx.client("logs")
        self._failed_runs(ctx, logs, batch)
        if self.functions or self.discover:
            self._lambda(ctx, logs, batch)
        return batch

    def _failed_runs(self, ctx: Context, logs: Any, batch: Batch) -> None:
        runs = ctx.stored.failed_runs
        if not runs:
            return
        stats = {"runs": 0, "events": 0, "missing_groups": 0}
        retention: dict[str, int | None | bool] = {}  # group -> days kept (None: never expire); False: missing
        seen: dict[str, dict[str, Any]] = {}
        machine_groups: dict[str, str] = {}  # state machine ARN -> its execution log group ("": none)

        def found(key: str, group: str) -> bool:
            """Whether ``group`` exists (its retention asked once a pass), recorded under ``key``."""
            if group not in retention:
                retention[group] = _retention(logs, group)
            kept = retention[group]
            seen[key] = {"group": group, "exists": kept is not False, "retention_days": None if kept is False else kept}
            if kept is False:
                stats["missing_groups"] += 1
            return kept is not False

        for run in runs:
            stats["runs"] += 1
            template = self.groups.get(run["source"])
            if run["source"] == "stepfunctions" and template is None and run["started_at"]:
                group = self._sfn_group(ctx, run, machine_groups)
                key = f"stepfunctions:{run['pipeline']}"
                if group == "":
                    seen[key] = {"group": None, "exists": False, "retention_days": None}
                elif group is not None and found(key, group):
                    stats["events"] += self._sfn_run(logs, batch, run, group, stats)
            elif run["source"] == "glue" and template is None and run["correlation_id"] and run["started_at"]:
                for group in self.glue_groups:
                    if found(f"glue:{run['pipeline']}:{group}", group):
                        stats["events"] += self._glue_run(logs, batch, run, group, stats)
            elif template and run["correlation_id"] and run["started_at"]:
                group = template.format(pipeline=run["pipeline"], run=run["run_id"].split(":", 1)[-1])
                if found(f"{run['source']}:{run['pipeline']}", group):
                    stats["events"] += self._run(logs, batch, run, group, stats)
            ended = run["ended_at"]
            batch.log_reads.append(LogRead(run_id=run["run_id"], ended_at=ended, read_at=ctx.now,
                                           complete=ended is None or ctx.now >= ended + self.reread))
        stats["rereads"] = sum(1 for run in runs if not run.get("unread", True))
        batch.details.update(stats)
        batch.details["log_groups"] = seen

    def _sfn_group(self, ctx: Context, run: Mapping[str, Any], cache: dict[str, str]) -> str | None:
        """The log group of the execution log of the run's state machine ("": logging off; None: not
        an execution ARN)."""
        machine = _machine_arn(str(run["run_id"]).split(":", 1)[-1])
        if machine is None:
            return None
        if machine not in cache:
            try:
                described = ctx.client("stepfunctions").describe_state_machine(stateMachineArn=machine)
            except CollectorError as exc:
                if "StateMachineDoesNotExist" not in str(exc):
                    raise
                described = {}
            logging = described.get("loggingConfiguration") or {}
            group = None if str(logging.get("level", "OFF")).upper() == "OFF" else log_group_of(logging)
            cache[machine] = group or ""
        return cache[machine]

    def _sfn_run(self, logs: Any, batch: Batch, run: Mapping[str, Any], group: str, stats: dict) -> int:
        """The failure records of one execution in its machine's execution log."""
        execution_arn = str(run["run_id"]).split(":", 1)[-1]
        start = run["started_at"] - timedelta(minutes=1)
        end = (run["ended_at"] or run["started_at"]) + timedelta(minutes=5)
        kept = 0
        for page in _event_pages(logs, self.max_pages, stats, logGroupName=group, startTime=_ms(start), endTime=_ms(end),
                                 filterPattern=f'"{execution_arn}"', limit=1000):
            for row in sfn_rows(page, group=group, run_id=run["run_id"], execution_arn=execution_arn,
                                correlation_id=run["correlation_id"]):
                batch.logs.append(row)
                kept += 1
                if kept >= self.max_events:
                    return kept
        return kept

    def _glue_run(self, logs: Any, batch: Batch, run: Mapping[str, Any], group: str, stats: dict) -> int:
        """The run's streams in ``group`` (named by the job run id): its error and warning records."""
        job_run = str(run["correlation_id"])
        start = run["started_at"] - timedelta(minutes=1)
        end = (run["ended_at"] or run["started_at"]) + timedelta(minutes=5)
        kept = 0
        for page in _event_pages(logs, self.max_pages, stats, logGroupName=group, logStreamNamePrefix=job_run,
                                 startTime=_ms(start), endTime=_ms(end), limit=1000):
            # the prefix again on this side: a server that ignores logStreamNamePrefix returns every stream
            events = [e for e in page if str(e.get("logStreamName", "")).startswith(job_run)]
            for row in glue_rows(events, group=group, run_id=run["run_id"], correlation_id=job_run):
                batch.logs.append(row)
                kept += 1
                if kept >= self.max_events:
                    return kept
        return kept

    def _lambda(self, ctx: Context, logs: Any, batch: Batch) -> None:
        """REPORT lines of each Lambda function since the last pass -> ``batch.invocations``."""
        groups = {f"{LAMBDA_PREFIX}{name}": (name, pipeline) for name, pipeline in self.functions.items()}
        if self.discover:
            token = None
            while len(groups) < self.max_functions:
                kwargs: dict[str, Any] = {"logGroupNamePrefix": LAMBDA_PREFIX}
                if token:
                    kwargs["nextToken"] = token
                page = logs.describe_log_groups(**kwargs)
                for g in page.get("logGroups", []):
                    name = g["logGroupName"]
                    if name not in groups and len(groups) < self.max_functions:
                        groups[name] = (name[len(LAMBDA_PREFIX):], "")
                token = page.get("nextToken")
                if not token:
                    break
        found = 0
        for group, (function, pipeline) in sorted(groups.items()):
            mark = ctx.watermark(f"lambda:{group}")
            start = datetime.fromisoformat(mark) - OVERLAP if mark else ctx.now - self.lookback
            last: datetime | None = None
            for page in _event_pages(logs, self.max_function_pages, None, logGroupName=group, startTime=_ms(start),
                                     endTime=_ms(ctx.now), filterPattern=REPORT_PATTERN, limit=1000):
                rows = invocation_rows(page, group=group, function=function, pipeline=pipeline)
                batch.invocations.extend(rows)
                found += len(rows)
                for row in rows:
                    last = row.ended_at if last is None or row.ended_at > last else last
            if last is not None:
                batch.watermarks[f"lambda:{group}"] = last.isoformat()
        batch.details["lambda"] = {"functions": len(groups), "invocations": found}

    def _run(self, logs: Any, batch: Batch, run: Mapping[str, Any], group: str, stats: dict) -> int:
        cid = run["correlation_id"]
        start = run["started_at"] - timedelta(minutes=1)
        end = (run["ended_at"] or run["started_at"]) + timedelta(minutes=5)
        kept = 0
        for page in _event_pages(logs, self.max_pages, stats, logGroupName=group, startTime=_ms(start), endTime=_ms(end),
                                 filterPattern=f'"{cid}"', limit=1000):
            for event in page:
                row = event_row(event, group=group, run_id=run["run_id"], correlation_id=cid)
                if row is not None:
                    batch.logs.append(row)
                    kept += 1
                    if kept >= self.max_events:
                        return kept
        return kept


def _event_pages(logs: Any, max_pages: int, stats: dict | None, **request: Any) -> Iterator[list[dict[str, Any]]]:
    """The events of each FilterLogEvents page for ``request``, at most ``max_pages`` pages; a group
    that does not exist ends the pages (counted in ``stats["missing_groups"]`` when given)."""
    token = None
    for _ in range(max_pages):
        try:
            page = logs.filter_log_events(**request, **({"nextToken": token} if token else {}))
        except CollectorError as exc:
            if "ResourceNotFoundException" not in str(exc):
                raise
            if stats is not None:
                stats["missing_groups"] += 1
            return
        yield page.get("events", [])
        token = page.get("nextToken")
        if not token:
            return


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
              (("max_events_per_run", 50), ("max_runs", 200), ("max_pages_per_run", 10), ("lookback_days", 14),
               ("max_functions", 50), ("max_pages_per_function", 20), ("reread_minutes", 15))}
    for k, v in values.items():
        if v <= 0:
            raise ConfigError(f"{label}: [{where}] {k}: expected a positive number, got {v}")
    glue_groups = opt(own, "glue_groups", list, label, where, default=list(GLUE_GROUPS))
    if not all(isinstance(g, str) and g for g in glue_groups):
        raise ConfigError(f"{label}: [{where}] glue_groups: expected a list of log group names, got {glue_groups!r}")
    functions: dict[str, str] = {}
    for k, v in require_table(own.get("lambda_functions", {}), label, f"{where}.lambda_functions").items():
        if not isinstance(v, str):
            raise ConfigError(f"{label}: [{where}.lambda_functions] {k}: expected the pipeline's name (a string), got {v!r}")
        functions[k] = v
    discover = opt(own, "lambda_discover", bool, label, where, default=False)
    return LogsCollector(groups=groups, max_events=values["max_events_per_run"], max_runs=values["max_runs"],
                         max_pages=values["max_pages_per_run"], lookback=timedelta(days=values["lookback_days"]),
                         glue_groups=tuple(glue_groups), functions=functions, discover=discover,
                         max_functions=values["max_functions"], max_function_pages=values["max_pages_per_function"],
                         reread=timedelta(minutes=values["reread_minutes"]))
