"""The fault table's test bed: a seeded local AWS and row accounting against that source.

``seed(aws, now)`` fills the local AWS (over HTTP, through boto3) with several pages per listing:
Step Functions executions (ListExecutions pages of 100, histories in pages of 3 events, some
executions still running), Glue job runs (GetJobRuns pages of 200), CloudWatch series, Cost
Explorer days (the stand-in's pages of 5 groups) and a FOCUS export in S3. It returns a ``Source``
that knows what a complete, exact store holds. ``account(engine, source)`` compares the store with
it item by item:

- runs (by run id, and a Step Functions run's status must be the source's: an ended run left
  ``running`` is a lost ending), steps (run, stage, attempt), metric points (series, time, value);
- cost cells: (source, query shape, day, service, currency) with the source's amount to the cent.
- log lines (``LogSource``, ``account_logs``): failed reference-pipeline runs in the ledger with
  their events in CloudWatch Logs; ``run_logs`` rows by (run, event time, message).

``stored`` counts what the store holds of those kinds; ``doubled`` the items stored that the
source does not have or with more than the source's amount (a Sum or a cost counted twice);
``lost`` the items missing, stale, or with less than the source's amount.

Rows of the printed table travel as ``user_properties`` (``("fault_row", {...})``), so
``faulttable.py`` prints them at the end of the session also under xdist.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pandas as pd
import sqlalchemy as sa

from collectors.stepfunctions import ENDED, STATUS
from devkit.localaws.costexplorer import CostExplorerStandIn
from devkit.localaws.stepfunctions import StepFunctionsHistoryStandIn
from store.schema import (
    collector_runs,
    cost_daily,
    locks,
    metric_points,
    metric_series,
    run_logs,
    run_steps,
    runs,
)

N_EXECUTIONS = 110  # 2 ListExecutions pages of 100
N_GLUE_RUNS = 210  # 2 GetJobRuns pages of 200
N_SERIES = 8
N_POINTS = 8  # per series, every 5 minutes
CE_DAYS = 10
CE_PAGE = 5
FOCUS_LINES = 300
RUNNING_EVERY = 10  # every 10th execution is still running when seeded
NAMESPACE = "Pipepulse/Fault"
FOCUS_KEY = "focus/demo/data/BILLING_PERIOD=2024-09/demo-00001.csv"
STAGES = ("extract", "load")

CONFIG = f"""
[collectors]
sources = ["stepfunctions", "glue", "cloudwatch", "ce", "focus"]
[collectors.stepfunctions]
history_page_size = 4
[collectors.glue]
[collectors.cloudwatch]
namespaces = ["{NAMESPACE}"]
stats = ["Sum"]
period_seconds = 300
lookback_hours = 1
[collectors.ce]
backfill_days = {CE_DAYS + 2}
forecast = false
[collectors.focus]
paths = ["s3://exports/focus/"]
"""


def history(started: datetime, *, ended: bool) -> list[dict[str, Any]]:
    """An execution's events: two Task states, then (when ``ended``) ExecutionSucceeded."""
    events: list[dict[str, Any]] = [{"type": "ExecutionStarted", "executionStartedEventDetails": {"input": "{}"}}]
    for stage in STAGES:
        events.append({"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": stage, "input": "{}"}})
        events.append({"type": "TaskStateExited", "stateExitedEventDetails": {"name": stage, "output": "{}"}})
    if ended:
        events.append({"type": "ExecutionSucceeded", "executionSucceededEventDetails": {"output": "{}"}})
    for i, ev in enumerate(events, 1):
        ev["id"], ev["previousEventId"] = i, i - 1
    return events


@dataclass
class Source:
    """What the seeded local AWS holds, as a complete store would hold it."""

    now: datetime
    machine: str = ""
    executions: dict[str, dict[str, Any]] = field(default_factory=dict)  # arn -> {started, ended}
    glue_runs: set[str] = field(default_factory=set)
    points: dict[tuple[str, str], float] = field(default_factory=dict)  # (pipeline, ts iso) -> value
    costs: dict[tuple[str, ...], float] = field(default_factory=dict)  # (source, shape, day, service, cur) -> amount
    focus_csv: bytes = b""
    kinds: tuple[str, ...] = ("runs", "steps", "points", "ce", "focus")

    def finish(self, aws: Any, arns: list[str] | None = None) -> None:
        """End the still-running executions (all, or ``arns``): their histories get ExecutionSucceeded."""
        stand_in = aws.app(StepFunctionsHistoryStandIn)
        for arn in arns if arns is not None else [a for a, e in self.executions.items() if not e["ended"]]:
            ex = self.executions[arn]
            stand_in.record(arn, history(ex["started"], ended=True), started_at=ex["started"])
            ex["ended"] = True

    def running(self) -> list[str]:
        return sorted(a for a, e in self.executions.items() if not e["ended"])


def seed(aws: Any, now: datetime, focus_lines: list[str]) -> Source:
    """Fill the local AWS (reset by the ``aws`` fixture) with several pages per listing."""
    src = Source(now=now)
    # Step Functions: executions with recorded histories (every RUNNING_EVERY-th still running)
    sfn = boto3.client("stepfunctions")
    src.machine = sfn.create_state_machine(name="etl", roleArn="arn:aws:iam::123456789012:role/sfn", definition=json.dumps(
        {"StartAt": "extract", "States": {"extract": {"Type": "Pass", "Next": "load"}, "load": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    stand_in = aws.app(StepFunctionsHistoryStandIn)
    for i in range(N_EXECUTIONS):
        out = sfn.start_execution(stateMachineArn=src.machine, name=f"e{i:04d}")
        started = out["startDate"].astimezone(UTC)
        ended = i % RUNNING_EVERY != 0
        stand_in.record(out["executionArn"], history(started, ended=ended), started_at=started)
        src.executions[out["executionArn"]] = {"started": started, "ended": ended}
    # Glue: one job, many runs
    glue = boto3.client("glue")
    glue.create_job(Name="nightly", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://b/job.py"},
                    ExecutionProperty={"MaxConcurrentRuns": 10_000})
    src.glue_runs = {glue.start_job_run(JobName="nightly")["JobRunId"] for _ in range(N_GLUE_RUNS)}
    # CloudWatch: N_SERIES series of N_POINTS points, well inside the first pass's window
    cw = boto3.client("cloudwatch")
    base = now.replace(second=0, microsecond=0) - timedelta(minutes=5 * (N_POINTS + 2))
    base -= timedelta(minutes=base.minute % 5)
    data = []
    for s in range(N_SERIES):
        for p in range(N_POINTS):
            ts = base + timedelta(minutes=5 * p)
            value = float(s * 100 + p + 1)
            data.append({"MetricName": "RecordsIn", "Dimensions": [{"Name": "Pipeline", "Value": f"p{s}"}], "Timestamp": ts, "Value": value})
            src.points[(f"p{s}", ts.isoformat())] = value
    for i in range(0, len(data), 20):
        cw.put_metric_data(Namespace=NAMESPACE, MetricData=data[i:i + 20])
    # Cost Explorer: CE_DAYS days x 3 services x 2 usage types, in pages of CE_PAGE groups
    ce = aws.app(CostExplorerStandIn)
    today = now.date()
    ce.configure(today=today, page_size=CE_PAGE)
    items = []
    for d in range(1, CE_DAYS + 1):
        day = today - timedelta(days=d)
        for s, svc in enumerate(["Amazon S3", "AWS Glue", "AWS Lambda"]):
            for u in range(2):
                items.append({"date": day.isoformat(), "service": svc, "region": "us-east-1", "usage_type": f"u{u}",
                              "tags": {"pipeline": f"p{u}"}, "unblended_cost": round(1.0 + s + u * 0.5 + d * 0.01, 2),
                              "amortized_cost": 1.0, "usage_quantity": 1.0})
    ce.load_line_items(items)
    for it in items:
        for shape in ("region", "usage", "pipeline"):
            key = ("ce", shape, it["date"], it["service"], "USD")
            src.costs[key] = src.costs.get(key, 0.0) + it["unblended_cost"]
    # FOCUS: the first FOCUS_LINES line items of the real sample, in S3
    src.focus_csv = ("\n".join(focus_lines[: FOCUS_LINES + 1]) + "\n").encode()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="exports")
    s3.put_object(Bucket="exports", Key=FOCUS_KEY, Body=src.focus_csv)
    src.costs.update(focus_cells(src.focus_csv))
    return src


LOG_GROUP = "/pipepulse/reference/orders"  # the logs collector's default group of the reference pipeline
LOG_LEVELS = ("ERROR", "WARNING", "ERROR", "INFO")  # per failed run; the INFO line is not a run_logs row


@dataclass
class LogSource:
    """Failed reference-pipeline runs (ledger rows) and their events in CloudWatch Logs: the
    run_logs rows a complete store holds, by (run, event time, message)."""

    start: datetime  # the first run's start; runs follow a minute apart
    lines: Counter = field(default_factory=Counter)
    runs: int = 0

    def put(self, ledger: Any, logs: Any, batch: str, n_failed: int, n_succeeded: int = 2) -> list[str]:
        """``n_failed`` failed runs (and ``n_succeeded`` succeeded ones, whose lines are never stored)
        in the ledger, each with its events (and another run's look-alike) in one stream per batch."""
        events, ids = [], []
        for i in range(n_failed + n_succeeded):
            rid, failed = f"{batch}-{i:03d}", i < n_failed
            started = self.start + timedelta(minutes=self.runs)
            self.runs += 1
            ended = started + timedelta(seconds=50)
            ledger.run(run_id=rid, pipeline="orders", status="FAILED" if failed else "SUCCEEDED", trigger="schedule", attempt=1,
                       started_at=started.isoformat(), ended_at=ended.isoformat(), correlation_id=f"c-{rid}",
                       error_type="ValueError" if failed else None, error_message="bad row" if failed else None)
            for k, level in enumerate(LOG_LEVELS if failed else ("INFO",)):
                ts = started + timedelta(seconds=5 * (k + 1))
                message = f"{rid} {level.lower()} {k}"
                events.append({"timestamp": int(ts.timestamp() * 1000), "message": json.dumps(
                    {"correlation_id": f"c-{rid}", "stage": "load", "level": level, "message": message})})
                if failed and level != "INFO":
                    self.lines[(f"reference:{rid}", ts.isoformat(), message)] += 1
            # a look-alike: another correlation id with this one as its prefix (AWS's plain term matches it)
            events.append({"timestamp": int((started + timedelta(seconds=30)).timestamp() * 1000), "message": json.dumps(
                {"correlation_id": f"c-{rid}0", "stage": "load", "level": "ERROR", "message": "not this run"})})
            if failed:
                ids.append(f"reference:{rid}")
        stream = f"{self.start:%Y/%m/%d}/{batch}"
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        events.sort(key=lambda e: e["timestamp"])
        logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=events)
        return ids


def account_logs(engine: sa.Engine, expected: Counter) -> Counts:
    """run_logs rows against the source's, by (run, event time, message): rows beyond the source's
    are doubled, the source's rows missing are lost."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(run_logs.c.run_id, run_logs.c.ts, run_logs.c.message)).all()
    got: Counter = Counter()
    for rid, ts, message in rows:
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
        got[(rid, ts.isoformat(), message)] += 1
    return _compare_sets("log line", expected, got)


def focus_cells(csv: bytes) -> dict[tuple[str, ...], float]:
    """(``focus``, ``line``, day, service, currency) -> BilledCost of a FOCUS CSV, by pandas."""
    frame = pd.read_csv(io.BytesIO(csv), usecols=["BilledCost", "ChargePeriodStart", "BillingCurrency", "ServiceName"],
                        keep_default_na=False, na_values={"BilledCost": ["NULL"]})
    frame["ServiceName"] = frame["ServiceName"].replace("NULL", "")
    frame["day"] = pd.to_datetime(frame["ChargePeriodStart"], utc=True).dt.strftime("%Y-%m-%d")
    sums = frame.groupby(["day", "ServiceName", "BillingCurrency"])["BilledCost"].sum()
    return {("focus", "line", day, svc, cur): float(v) for (day, svc, cur), v in sums.items()}


def cur_cells(table: Any) -> dict[tuple[str, ...], float]:
    """(``cur``, ``line``, day, service, currency) -> unblended cost of CUR line items (each identity
    once; the service is the product name, else the product code)."""
    frame = table.select(["identity_line_item_id", "identity_time_interval", "line_item_usage_start_date", "product_product_name",
                          "line_item_product_code", "line_item_currency_code", "line_item_unblended_cost"]).to_pandas()
    frame = frame.drop_duplicates(["identity_line_item_id", "identity_time_interval"])
    frame["day"] = pd.to_datetime(frame["line_item_usage_start_date"], utc=True).dt.strftime("%Y-%m-%d")
    frame["service"] = frame["product_product_name"].where(frame["product_product_name"].fillna("") != "", frame["line_item_product_code"])
    sums = frame.groupby(["day", "service", "line_item_currency_code"])["line_item_unblended_cost"].sum()
    return {("cur", "line", day, svc, cur): float(v) for (day, svc, cur), v in sums.items()}


@dataclass
class Counts:
    expected: int = 0
    stored: int = 0
    doubled: int = 0
    lost: int = 0
    money_expected: float = 0.0
    money_stored: float = 0.0
    problems: list[str] = field(default_factory=list)  # the first few, for the assertion message

    def add(self, other: Counts) -> None:
        self.expected += other.expected
        self.stored += other.stored
        self.doubled += other.doubled
        self.lost += other.lost
        self.money_expected += other.money_expected
        self.money_stored += other.money_stored
        self.problems += other.problems[: 10 - len(self.problems)]

    @property
    def exact(self) -> bool:
        return self.expected == self.stored and self.doubled == 0 and self.lost == 0


def _shape(row: Any) -> str:
    if row.source != "ce":
        return "line"
    if row.region != "*":
        return "region"
    if row.usage_type != "*":
        return "usage"
    return "pipeline"


def _compare_sets(kind: str, expected: Counter, stored: Counter) -> Counts:
    c = Counts(expected=sum(expected.values()), stored=sum(stored.values()))
    for key, n in stored.items():
        extra = n - expected.get(key, 0)
        if extra > 0:
            c.doubled += extra
            c.problems.append(f"{kind} {key}: stored {n}, source {expected.get(key, 0)}")
    for key, n in expected.items():
        missing = n - stored.get(key, 0)
        if missing > 0:
            c.lost += missing
            c.problems.append(f"{kind} {key}: missing")
    return c


def account_costs(engine: sa.Engine, expected: dict[tuple[str, ...], float], sources: tuple[str, ...]) -> Counts:
    """Cost cells (source, shape, day, service, currency): lost below the source's amount, doubled above."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(cost_daily).where(cost_daily.c.source.in_(sources))).all()
    stored: dict[tuple[str, ...], float] = {}
    for r in rows:
        key = (r.source, _shape(r), r.day.isoformat() if isinstance(r.day, date) else str(r.day), r.service, r.currency)
        stored[key] = stored.get(key, 0.0) + float(r.billed_cost)
    c = Counts(expected=len(expected), stored=len(stored), money_expected=sum(expected.values()), money_stored=sum(stored.values()))
    for key in expected.keys() | stored.keys():
        want, got = expected.get(key), stored.get(key)
        if got is None or (want is not None and got < want - 0.005):
            c.lost += 1
            c.problems.append(f"cost {key}: stored {got}, source {want}")
        elif want is None or got > want + 0.005 or not math.isfinite(got):
            c.doubled += 1
            c.problems.append(f"cost {key}: stored {got}, source {want}")
    return c


def account(engine: sa.Engine, src: Source) -> Counts:
    """Row accounting of the whole store against ``src`` (see the module docstring)."""
    total = Counts()
    with engine.connect() as conn:
        stored_runs = conn.execute(sa.select(runs.c.run_id, runs.c.status).where(runs.c.source.in_(["stepfunctions", "glue"]))).all()
        stored_steps = conn.execute(sa.select(run_steps.c.run_id, run_steps.c.stage, run_steps.c.attempt)).all()
        stored_points = conn.execute(
            sa.select(metric_series.c.dimensions, metric_points.c.ts, metric_points.c.value)
            .join(metric_points, metric_points.c.series_id == metric_series.c.series_id)
            .where(metric_series.c.namespace == NAMESPACE)).all()
    if "runs" in src.kinds:
        want: Counter = Counter()
        for arn, ex in src.executions.items():
            want[(f"stepfunctions:{arn}", STATUS["SUCCEEDED" if ex["ended"] else "RUNNING"])] += 1
        for rid in src.glue_runs:
            want[(f"glue:nightly:{rid}", "*")] += 1
        got = Counter((r.run_id, r.status if r.run_id.startswith("stepfunctions:") else "*") for r in stored_runs)
        total.add(_compare_sets("run", want, got))
    if "steps" in src.kinds:
        want = Counter((f"stepfunctions:{arn}", stage, 1) for arn, ex in src.executions.items() if ex["ended"] for stage in STAGES)
        total.add(_compare_sets("step", want, Counter(tuple(r) for r in stored_steps)))
    if "points" in src.kinds:
        want = Counter({(p, ts, v): 1 for (p, ts), v in src.points.items()})
        got = Counter()
        for dims, ts, value in stored_points:
            ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
            got[(json.loads(dims).get("Pipeline"), ts.isoformat(), float(value))] += 1
        total.add(_compare_sets("point", want, got))
    cost_sources = tuple(s for s in ("ce", "focus") if s in src.kinds)
    if cost_sources:
        total.add(account_costs(engine, {k: v for k, v in src.costs.items() if k[0] in cost_sources}, cost_sources))
    return total


def leftovers(engine: sa.Engine) -> tuple[list[str], list[tuple[str, int]]]:
    """Locks still held, and passes left ``running``."""
    with engine.connect() as conn:
        held = conn.execute(sa.select(locks.c.name)).scalars().all()
        running = conn.execute(sa.select(collector_runs.c.source, collector_runs.c.collector_run_id)
                               .where(collector_runs.c.status == "running")).all()
    return list(held), [tuple(r) for r in running]


def ended_statuses() -> set[str]:
    return {STATUS[s] for s in ENDED}


def record_row(request: Any, order: int, fault: str, db: str, counts: Counts, note: str = "") -> None:
    """Hand one row of the table to ``conftest.py`` (through the report, so xdist keeps it)."""
    request.node.user_properties.append(("fault_row", {
        "order": order, "fault": fault, "db": db, "expected": counts.expected, "stored": counts.stored, "doubled": counts.doubled,
        "lost": counts.lost, "money": f"${counts.money_stored:,.2f} of ${counts.money_expected:,.2f}" if counts.money_expected else "",
        "note": note,
    }))
