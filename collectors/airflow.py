"""Apache Airflow (self-managed or Amazon MWAA) -> ``runs`` and ``run_steps``, incrementally.

A DAG run becomes a run (``airflow:<dag_id>:<run_id>``, pipeline = the ``[[pipelines]]`` entry
whose ``resource`` is the DAG id, else the DAG id); every try of every task instance becomes a
step (stage = the task id, ``task_id[map_index]`` for a mapped one; attempt = the try number;
``operator`` and ``map_index`` kept), so durations, failures and retries show on every page as
for any other source.

Reading, per pass, through Airflow's stable REST API (``api = "v2"``: Airflow 3, token from
``POST /auth/token``; ``api = "v1"``: Airflow 2.x, basic auth; the two differ in names only
where this module says so):

1. the runs that *ended* since the watermark minus ``reread_minutes`` (``end_date_gte``; a run
   cleared and run again ends again, so it is read again), ordered by end date;
2. the runs still queued or running (stored as such and read again until they end);
3. for each run not already stored with the same end: its task instances (one page per
   ``page_size``) and, for a task tried more than once, its earlier tries (``/tries``);
4. once per DAG seen: its tasks (operator, ``execution_timeout``) and details
   (``dagrun_timeout``). Airflow records a timeout as ``failed``; a failed try that lasted at
   least its ``execution_timeout`` (a run: its ``dagrun_timeout``) is stored as TIMED_OUT.

Watermark ``runs`` (JSON): the newest end date stored, the runs stored in the re-read window
with their end date (not read again unless it changed) and the runs stored unfinished. Every
write is an upsert by key: a pass read twice stores nothing twice.

Every HTTP request is counted in ``ctx.calls`` like the AWS calls (``airflow-api:<Operation>``;
through MWAA, boto3 counts ``airflow:InvokeRestApi``), and each answer is checked: a list key
missing from an answer is an error naming the request, never an empty page.

Amazon MWAA (``mwaa_environment``): each request goes through ``mwaa:InvokeRestApi`` (boto3,
``ctx.client("mwaa")``), which signs with the collector's AWS credentials; MWAA limits ``Path``
to 64 characters, so a run whose task-instance path is longer is read through the batch list
(``POST /dags/~/dagRuns/~/taskInstances/list``) and a try history whose path is longer is
skipped (only the latest try is stored; ``collector_runs.details`` counts them).

Config ``[collectors.airflow]``: see ``pipepulse.settings.AIRFLOW_KEYS``.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.config import Config

from collectors.aws import call_with_retry, default_client_config
from collectors.base import Batch, Collector, Context, RunRow, StepRow
from pipepulse.errors import CollectorError, TransientError
from pipepulse.settings import AirflowConfig, Settings, airflow_config
from pipepulse.vocab import AWAITING_RETRY, CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, TIMED_OUT

__all__ = ["AirflowCollector", "create", "dag_run_row", "task_steps"]

NAME = "airflow"
MWAA_PATH_LIMIT = 64  # InvokeRestApi's Path is at most 64 characters
WATERMARK = "runs"

# DAG run state -> ours
RUN_STATUS = {"queued": QUEUED, "running": RUNNING, "success": SUCCEEDED, "failed": FAILED}
RUN_ENDED = {"success", "failed"}
# task instance state -> ours (None: no state yet)
TASK_STATUS = {
    None: QUEUED,
    "scheduled": QUEUED,
    "queued": QUEUED,
    "deferred": RUNNING,
    "up_for_reschedule": QUEUED,
    "restarting": RUNNING,
    "running": RUNNING,
    "up_for_retry": AWAITING_RETRY,
    "success": SUCCEEDED,
    "failed": FAILED,
    "upstream_failed": CANCELLED,  # never ran: a task before it failed
    "skipped": CANCELLED,
    "removed": CANCELLED,
}
# DAG run_type -> our trigger
TRIGGER = {"scheduled": "schedule", "manual": "manual", "backfill": "manual", "asset_triggered": "event",
           "dataset_triggered": "event", "asset_materialization": "event"}


def _ts(value: Any, where: str) -> datetime | None:
    """An Airflow time (ISO 8601, ``Z`` or an offset) as a tz-aware UTC datetime."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise CollectorError(NAME, f"{where}: expected an ISO 8601 time, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CollectorError(NAME, f"{where}: not an ISO 8601 time: {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _seconds(delta: Any) -> float | None:
    """An Airflow TimeDelta (``{"days", "seconds", "microseconds"}``) or number in seconds."""
    if delta is None:
        return None
    if isinstance(delta, int | float):
        return float(delta)
    if isinstance(delta, Mapping):
        return float(delta.get("days") or 0) * 86400 + float(delta.get("seconds") or 0) + float(delta.get("microseconds") or 0) / 1e6
    return None


# ---- talking to Airflow ------------------------------------------------------------------------


class AirflowAPI:
    """Airflow's REST API over HTTP (token, basic or no auth): counted, retried, checked."""

    def __init__(self, config: AirflowConfig, ctx: Context) -> None:
        assert config.url is not None
        self.config = config
        self.ctx = ctx
        self.base = f"{config.url}/api/{config.api}"
        self._token: str | None = None

    def _password(self) -> str:
        assert self.config.password_env is not None
        return self.ctx.settings.secret(self.config.password_env, where="[collectors.airflow] password_env")

    def _auth_header(self) -> dict[str, str]:
        if self.config.auth == "basic":
            raw = f"{self.config.username}:{self._password()}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if self.config.auth == "token":
            if self._token is None:
                try:
                    answer = self._send("CreateToken", "POST", f"{self.config.url}/auth/token",
                                        {"username": self.config.username, "password": self._password()}, headers={})
                except _Unauthorized:
                    raise CollectorError(NAME, f"POST {self.config.url}/auth/token: Airflow refused user {self.config.username!r} (401); "
                                               "check username and the password in password_env") from None
                token = answer.get("access_token") if isinstance(answer, Mapping) else None
                if not isinstance(token, str) or not token:
                    raise CollectorError(NAME, f"POST {self.config.url}/auth/token answered without an access_token")
                self._token = token
            return {"Authorization": f"Bearer {self._token}"}
        return {}

    def request(self, operation: str, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: Mapping[str, Any] | None = None) -> Any:
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            return self._send(operation, method, url, body, headers=self._auth_header())
        except _Unauthorized:
            if self.config.auth != "token":
                raise CollectorError(NAME, f"{method} {path}: Airflow refused the credentials (401); check username and password_env") from None
            self._token = None  # expired: one new token, then give up
            try:
                return self._send(operation, method, url, body, headers=self._auth_header())
            except _Unauthorized:
                raise CollectorError(NAME, f"{method} {path}: Airflow refused a fresh token (401); check username and password_env") from None

    def _send(self, operation: str, method: str, url: str, body: Mapping[str, Any] | None, *, headers: dict[str, str]) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req_headers = {"Accept": "application/json", **headers}
        if data is not None:
            req_headers["Content-Type"] = "application/json"
        where = f"{method} {urllib.parse.urlsplit(url).path}"

        def once() -> Any:
            self.ctx.calls.add(f"airflow-api:{operation}")
            req = urllib.request.Request(url, data=data, method=method, headers=req_headers)
            try:
                with urllib.request.urlopen(req, timeout=self.config.timeout_seconds) as resp:
                    payload = resp.read()
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                if exc.code == 401:
                    raise _Unauthorized() from exc
                if exc.code == 429 or exc.code >= 500:
                    raise TransientError(NAME, f"{where} answered {exc.code}: {detail}") from exc
                if exc.code == 403:
                    raise CollectorError(NAME, f"{where} denied (403): give the Airflow user read access to DAGs, DAG runs and task instances ({detail})") from exc
                raise CollectorError(NAME, f"{where} answered {exc.code}: {detail}") from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                raise TransientError(NAME, f"{where}: cannot reach Airflow at {self.config.url}: {reason}") from exc
            try:
                return json.loads(payload)
            except ValueError as exc:
                raise CollectorError(NAME, f"{where}: the answer is not JSON: {payload[:200]!r}") from exc

        return call_with_retry(once, source=NAME, service="airflow-api", operation=operation, calls=self.ctx.calls)


class _Unauthorized(CollectorError):
    """A 401 answer (the token expired, or the credentials are wrong); not retried."""

    def __init__(self) -> None:
        super().__init__(NAME, "Airflow answered 401")


class MwaaAPI:
    """The same requests through Amazon MWAA's ``InvokeRestApi`` (boto3, counted and retried)."""

    def __init__(self, config: AirflowConfig, ctx: Context) -> None:
        self.config = config
        cfg = ctx.client_config or default_client_config()
        if ctx.settings.aws_endpoint_url:
            # MWAA's host prefix ("env.") cannot go in front of a local endpoint's address
            cfg = cfg.merge(Config(inject_host_prefix=False))
        self.client = ctx.client("mwaa", config=cfg)
        self.rest_calls: Counter[str] = Counter()

    def request(self, operation: str, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: Mapping[str, Any] | None = None) -> Any:
        if len(path) > MWAA_PATH_LIMIT:
            raise PathTooLong(path)
        kwargs: dict[str, Any] = {"Name": self.config.mwaa_environment, "Path": path, "Method": method}
        if params:
            kwargs["QueryParameters"] = dict(params)
        if body is not None:
            kwargs["Body"] = dict(body)
        self.rest_calls[operation] += 1
        answer = self.client.invoke_rest_api(**kwargs)
        return answer.get("RestApiResponse")


class PathTooLong(CollectorError):
    """A REST path longer than MWAA's InvokeRestApi accepts."""

    def __init__(self, path: str) -> None:
        super().__init__(NAME, f"REST path longer than MWAA's {MWAA_PATH_LIMIT} characters: {path}")


# ---- the watermark -----------------------------------------------------------------------------


@dataclass
class RunsMark:
    """Newest end stored; runs stored in the re-read window (key -> end); runs stored unfinished."""

    end: datetime | None = None
    seen: dict[str, str] = field(default_factory=dict)
    open: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, value: str | None) -> RunsMark:
        if not value:
            return cls()
        data = json.loads(value)
        end = datetime.fromisoformat(data["end"]) if data.get("end") else None
        return cls(end=end, seen=dict(data.get("seen", {})), open=set(data.get("open", [])))

    def dump(self) -> str:
        return json.dumps({"end": self.end.astimezone(UTC).isoformat() if self.end else None,
                           "seen": dict(sorted(self.seen.items())), "open": sorted(self.open)}, sort_keys=True)


def _key(dag_id: str, run_id: str) -> str:
    return f"{dag_id}:{run_id}"


# ---- rows --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskInfo:
    """What a DAG's task list says about one task."""

    operator: str | None
    timeout_seconds: float | None


def _list(answer: Any, key: str, where: str) -> list[Mapping[str, Any]]:
    """``answer[key]`` as a list of objects, or a CollectorError naming the request."""
    if not isinstance(answer, Mapping) or not isinstance(answer.get(key), list):
        got = sorted(answer)[:8] if isinstance(answer, Mapping) else type(answer).__name__
        raise CollectorError(NAME, f"{where}: the answer has no {key!r} list (got {got}); is this Airflow's REST API?")
    items = answer[key]
    if not all(isinstance(i, Mapping) for i in items):
        raise CollectorError(NAME, f"{where}: {key!r} holds something other than objects")
    return items


def _logical(run: Mapping[str, Any]) -> Any:
    return run.get("logical_date", run.get("execution_date"))  # v1 (2.x before 2.2) says execution_date


def _duration(item: Mapping[str, Any], start: datetime | None, end: datetime | None) -> float | None:
    if start is not None and end is not None and end >= start:
        return (end - start).total_seconds()
    value = item.get("duration")
    return float(value) if isinstance(value, int | float) else None


def dag_run_row(run: Mapping[str, Any], *, pipeline: str, steps: list[StepRow], dagrun_timeout: float | None,
                region: str = "") -> RunRow:
    """One DAG run as a ``RunRow`` (``steps``: its tries, for retries and the failed tasks)."""
    dag_id, run_id = str(run["dag_id"]), str(run["dag_run_id"])
    where = f"DAG run {dag_id}/{run_id}"
    state = run.get("state")
    if state not in RUN_STATUS:
        raise CollectorError(NAME, f"{where}: unexpected state {state!r}")
    status = RUN_STATUS[state]
    started, ended = _ts(run.get("start_date"), where), _ts(run.get("end_date"), where) if state in RUN_ENDED else None
    duration = _duration(run, started, ended) if ended else None
    error_type = error_message = None
    if status == FAILED:
        failed = sorted({s.stage for s in steps if s.status in (FAILED, TIMED_OUT)})
        if dagrun_timeout is not None and duration is not None and duration >= dagrun_timeout:
            status, error_type = TIMED_OUT, "DagRunTimeout"
            error_message = f"the run took {duration:.0f} s; dagrun_timeout is {dagrun_timeout:.0f} s"
        elif any(s.status == TIMED_OUT for s in steps):
            status, error_type = TIMED_OUT, "AirflowTaskTimeout"
            error_message = "task timed out: " + ", ".join(sorted({s.stage for s in steps if s.status == TIMED_OUT}))
        else:
            error_type = "TaskFailed"
            error_message = ("failed tasks: " + ", ".join(failed)) if failed else "the DAG run failed"
    run_type = str(run.get("run_type") or "")
    return RunRow(
        run_id=f"airflow:{dag_id}:{run_id}",
        pipeline=pipeline,
        source=NAME,
        status=status,
        trigger=TRIGGER.get(run_type, "manual" if run_type else "schedule"),
        scheduled_for=_ts(run.get("data_interval_end") or _logical(run), where),
        queued_at=_ts(run.get("queued_at"), where),
        started_at=started,
        ended_at=ended,
        duration_seconds=duration,
        retries=sum(1 for s in steps if s.attempt > 1),
        error_type=error_type,
        error_message=error_message,
        correlation_id=run_id[:100],
        region=region,
    )


def task_steps(run_key: str, tries: list[Mapping[str, Any]], tasks: Mapping[str, TaskInfo]) -> list[StepRow]:
    """Tries of one task instance (history and current, any order) as ``StepRow``s, one per try."""
    by_try: dict[int, Mapping[str, Any]] = {}
    for t in tries:
        number = t.get("try_number")
        if not isinstance(number, int):
            raise CollectorError(NAME, f"task instance {run_key}/{t.get('task_id')}: try_number {number!r} is not a number")
        by_try[number] = t  # the current instance comes last and wins
    out = []
    for number, t in sorted(by_try.items()):
        task_id = str(t["task_id"])
        map_index = t.get("map_index", -1)
        map_index = int(map_index) if isinstance(map_index, int) else -1
        where = f"task instance {run_key}/{task_id}"
        started, ended = _ts(t.get("start_date"), where), _ts(t.get("end_date"), where)
        if number == 0 and started is None:
            continue  # never ran (upstream failed, skipped before a try)
        state = t.get("state")
        if state not in TASK_STATUS:
            raise CollectorError(NAME, f"{where}: unexpected state {state!r}")
        status = TASK_STATUS[state]
        info = tasks.get(task_id, TaskInfo(None, None))
        duration = _duration(t, started, ended)
        error_type = error_message = None
        if status == FAILED:
            if info.timeout_seconds is not None and duration is not None and duration >= info.timeout_seconds:
                status, error_type = TIMED_OUT, "AirflowTaskTimeout"
                error_message = f"ran {duration:.1f} s; execution_timeout is {info.timeout_seconds:.0f} s"
            else:
                error_type = "TaskFailed"
        if status == AWAITING_RETRY:
            error_type = "TaskFailed"  # this try failed; another is due
        operator = t.get("operator_name") or t.get("operator") or info.operator
        out.append(StepRow(
            run_id=f"airflow:{run_key}",
            stage=f"{task_id}[{map_index}]" if map_index >= 0 else task_id,
            attempt=max(number, 1),
            status=status,
            queued_at=_ts(t.get("queued_when"), where),
            started_at=started,
            ended_at=ended if status not in (QUEUED, RUNNING) else None,
            duration_seconds=duration if status not in (QUEUED, RUNNING) else None,
            error_type=error_type,
            error_message=error_message,
            next_retry_at=None,
            operator=str(operator) if operator else None,
            map_index=map_index if map_index >= 0 else None,
        ))
    return out


# ---- the collector -----------------------------------------------------------------------------


class AirflowCollector(Collector):
    name = NAME

    def __init__(self, settings: Settings, config: AirflowConfig) -> None:
        self.settings = settings
        self.config = config
        self.pipelines = {p.resource: p.name for p in settings.pipelines if p.source == NAME and p.resource}

    def _api(self, ctx: Context) -> AirflowAPI | MwaaAPI:
        return MwaaAPI(self.config, ctx) if self.config.mwaa_environment else AirflowAPI(self.config, ctx)

    def _pages(self, api: AirflowAPI | MwaaAPI, operation: str, path: str, key: str, params: dict[str, Any]) -> Iterator[Mapping[str, Any]]:
        """Every item of a paged list (limit/offset), checked."""
        offset = 0
        while True:
            answer = api.request(operation, "GET", path, params={**params, "limit": self.config.page_size, "offset": offset})
            items = _list(answer, key, f"GET {path}")
            yield from items
            total = answer.get("total_entries")
            offset += len(items)
            if not items or not isinstance(total, int) or offset >= total:
                return

    def collect(self, ctx: Context) -> Batch:
        api = self._api(ctx)
        mark = RunsMark.load(ctx.watermark(WATERMARK))
        reread = timedelta(minutes=self.config.reread_minutes)
        since = mark.end - reread if mark.end else ctx.now - timedelta(days=self.config.lookback_days)
        dag_paths = [f"/dags/{urllib.parse.quote(d, safe='')}/dagRuns" for d in self.config.dags] or ["/dags/~/dagRuns"]
        stats: Counter[str] = Counter()
        runs: dict[str, Mapping[str, Any]] = {}
        for path in dag_paths:
            for run in self._pages(api, "ListDagRuns", path, "dag_runs", {"end_date_gte": _iso(since), "order_by": "end_date"}):
                runs[_key(str(run["dag_id"]), str(run["dag_run_id"]))] = run
            for state in ("queued", "running"):
                for run in self._pages(api, "ListDagRuns", path, "dag_runs", {"state": state}):
                    runs.setdefault(_key(str(run["dag_id"]), str(run["dag_run_id"])), run)
        for key in sorted(mark.open - set(runs)):  # stored unfinished, neither listed as ended nor running
            dag_id, _, run_id = key.partition(":")
            try:
                runs[key] = api.request("GetDagRun", "GET", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")
            except PathTooLong:
                stats["runs_path_too_long"] += 1
            except CollectorError as exc:
                if "404" not in str(exc) and "RestApiClientException" not in str(exc):
                    raise
                mark.open.discard(key)  # deleted in Airflow
                stats["runs_gone"] += 1
        batch = Batch(window_start=since, window_end=ctx.now)
        dags: dict[str, tuple[dict[str, TaskInfo], float | None]] = {}
        new = RunsMark(end=mark.end)
        for key, run in sorted(runs.items(), key=lambda kv: (kv[1].get("end_date") or "~", kv[0])):
            dag_id, run_id = str(run["dag_id"]), str(run["dag_run_id"])
            state = run.get("state")
            end = run.get("end_date") if state in RUN_ENDED else None
            end_ts = _ts(end, f"DAG run {key}") if end else None
            if end_ts is not None and mark.seen.get(key) == end_ts.isoformat():
                new.seen[key] = end_ts.isoformat()
                stats["runs_unchanged"] += 1
                continue
            if dag_id not in dags:
                dags[dag_id] = self._dag(api, dag_id, stats)
            tasks, dagrun_timeout = dags[dag_id]
            steps = self._steps(api, key, dag_id, run_id, tasks, stats)
            batch.steps.extend(steps)
            batch.runs.append(dag_run_row(run, pipeline=self.pipelines.get(dag_id, dag_id), steps=steps,
                                          dagrun_timeout=dagrun_timeout, region=self.settings.aws_region if self.config.mwaa_environment else ""))
            if end_ts is None:
                new.open.add(key)
            else:
                new.seen[key] = end_ts.isoformat()
                new.end = max(new.end, end_ts) if new.end else end_ts
        if new.end is not None:  # forget what fell out of the re-read window
            floor = new.end - reread
            new.seen = {k: v for k, v in new.seen.items() if datetime.fromisoformat(v) >= floor}
        if new.dump() != mark.dump():
            batch.watermarks[WATERMARK] = new.dump()
        stats.update(runs=len(batch.runs), tries=len(batch.steps), dags=len(dags))
        if isinstance(api, MwaaAPI):
            batch.details["rest_calls"] = dict(api.rest_calls)
        batch.details.update(dict(stats))
        return batch

    def _dag(self, api: AirflowAPI | MwaaAPI, dag_id: str, stats: Counter[str]) -> tuple[dict[str, TaskInfo], float | None]:
        """The DAG's tasks (operator, execution_timeout) and its dagrun_timeout."""
        path = f"/dags/{_q(dag_id)}/tasks"
        try:
            answer = api.request("ListTasks", "GET", path)
            details = api.request("GetDagDetails", "GET", f"/dags/{_q(dag_id)}/details")
        except PathTooLong:
            stats["dags_path_too_long"] += 1
            return {}, None
        tasks = {
            str(t["task_id"]): TaskInfo(operator=t.get("operator_name") or _class_name(t.get("class_ref")),
                                        timeout_seconds=_seconds(t.get("execution_timeout")))
            for t in _list(answer, "tasks", f"GET {path}")
        }
        timeout = _seconds(details.get("dagrun_timeout")) if isinstance(details, Mapping) else None
        return tasks, timeout

    def _steps(self, api: AirflowAPI | MwaaAPI, key: str, dag_id: str, run_id: str, tasks: Mapping[str, TaskInfo],
               stats: Counter[str]) -> list[StepRow]:
        path = f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances"
        try:
            instances = list(self._pages(api, "ListTaskInstances", path, "task_instances", {}))
        except PathTooLong:
            instances = self._batch_instances(api, dag_id, run_id)
        steps: list[StepRow] = []
        for ti in instances:
            tries: list[Mapping[str, Any]] = [ti]
            number = ti.get("try_number")
            if isinstance(number, int) and number > 1:
                map_index = ti.get("map_index", -1)
                tries_path = f"{path}/{_q(str(ti['task_id']))}" + (f"/{map_index}" if isinstance(map_index, int) and map_index >= 0 else "") + "/tries"
                try:
                    history = list(self._pages(api, "ListTaskInstanceTries", tries_path, "task_instances", {}))
                    tries = [h for h in history if h.get("try_number") != number] + [ti]
                except PathTooLong:
                    stats["tries_path_too_long"] += 1
            steps.extend(task_steps(key, tries, tasks))
        return steps

    def _batch_instances(self, api: AirflowAPI | MwaaAPI, dag_id: str, run_id: str) -> list[Mapping[str, Any]]:
        """A run's task instances through the batch list (a short path, for MWAA)."""
        path = "/dags/~/dagRuns/~/taskInstances/list"
        out: list[Mapping[str, Any]] = []
        offset = 0
        while True:
            body = {"dag_ids": [dag_id], "dag_run_ids": [run_id], "page_limit": self.config.page_size, "page_offset": offset}
            answer = api.request("ListTaskInstancesBatch", "POST", path, body=body)
            items = _list(answer, "task_instances", f"POST {path}")
            out.extend(items)
            offset += len(items)
            total = answer.get("total_entries")
            if not items or not isinstance(total, int) or offset >= total:
                return out


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _class_name(ref: Any) -> str | None:
    if isinstance(ref, Mapping) and ref.get("class_name"):
        return str(ref["class_name"])
    return None


def create(settings: Settings) -> AirflowCollector:
    return AirflowCollector(settings, airflow_config(settings))

