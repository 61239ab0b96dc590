"""A Glue job-run stand-in: recorded JobRun objects served over moto's endpoint.

moto's Glue runs only go STARTING -> RUNNING -> SUCCEEDED with ``ExecutionTime`` 123 and none of
the fields real runs carry (``Attempt``/``PreviousRunId`` retries, ``ErrorMessage``, worker
types, Python shell capacity, Glue versions). This WSGI middleware answers, for a job a set of
runs was recorded for, the two operations that read runs, from those records:

- ``GetJobRuns``: the recorded runs newest first (as AWS returns them), paged by ``MaxResults``
  (absent: 100; more than 200: ``ValidationException``) and an opaque ``NextToken``;
- ``GetJobRun``: the recorded run with that id (``EntityNotFoundException`` otherwise).

Every other request goes to moto (create the job there first: ``GetJobs`` lists it).

Recorded runs are published with their original dates (years old, which a collector's lookback
would skip): the stand-in moves every run of a job by one offset so that the newest
``StartedOn`` is ``newest_started_at``, keeping each run's duration and the gaps between runs.
Timestamps are accepted as epoch seconds (GetJobRun output), epoch milliseconds (the JobRun a
Step Functions ``glue:startJobRun.sync`` Task returns) or ISO-8601, and served as epoch seconds,
as AWS's JSON protocol does. Nothing else in a record is changed.

Control API on the same port: ``POST /pipepulse-api/glue/runs`` ``{"jobName": ..., "runs":
[...], "newestStartedAt": "<ISO time>"}``, ``POST /pipepulse-api/glue/reset``, ``GET
/pipepulse-api/glue/requests``.
"""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from devkit.localaws.standin import StandIn
from devkit.localaws.stepfunctions import _call, _json, _read_body

__all__ = ["GlueJobRunsStandIn"]

TARGET_PREFIX = "AWSGlue."
CONTROL_PREFIX = "/pipepulse-api/glue/"
TIME_FIELDS = ("StartedOn", "LastModifiedOn", "CompletedOn")
DEFAULT_PAGE = 100
MAX_PAGE = 200


def _epoch(value: Any) -> float | None:
    """A recorded timestamp in epoch seconds (from seconds, milliseconds or ISO-8601)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value) / 1000 if value > 1e11 else float(value)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


class _Error(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class GlueJobRunsStandIn(StandIn):
    """WSGI middleware answering run reads of recorded Glue jobs (see the module docstring)."""

    control_prefix = CONTROL_PREFIX

    def reset(self) -> None:
        with self._lock:
            self.recorded: dict[str, list[dict[str, Any]]] = {}
            self.requests: Counter[str] = Counter()

    def record(self, job_name: str, runs: list[dict[str, Any]], *, newest_started_at: datetime) -> None:
        """Serve ``runs`` (JobRun objects) as the runs of ``job_name``, moved in time so the newest
        starts at ``newest_started_at``."""
        if not runs:
            raise ValueError("record at least one run")
        starts = [_epoch(r.get("StartedOn")) for r in runs]
        if any(s is None for s in starts):
            raise ValueError("every recorded run needs its StartedOn")
        offset = newest_started_at.timestamp() - max(s for s in starts if s is not None)
        moved = []
        for run in runs:
            out = dict(run)
            out["JobName"] = job_name
            for key in TIME_FIELDS:
                ts = _epoch(run.get(key))
                if ts is not None:
                    out[key] = ts + offset
            moved.append(out)
        moved.sort(key=lambda r: r["StartedOn"], reverse=True)  # newest first, as AWS answers
        with self._lock:
            self.recorded[job_name] = moved

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response, path[len(CONTROL_PREFIX):])
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        op = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else ""
        if op not in {"GetJobRuns", "GetJobRun"} or not self.recorded:
            return self.next_app(environ, start_response)
        body = _read_body(environ)
        request = json.loads(body or b"{}")
        runs = self.recorded.get(str(request.get("JobName")))
        if runs is None:
            environ["wsgi.input"] = io.BytesIO(body)
            status, headers, payload = _call(self.next_app, environ)
            start_response(status, headers)
            return [payload]
        with self._lock:
            self.requests[op] += 1
        try:
            if op == "GetJobRun":
                run = next((r for r in runs if r.get("Id") == request.get("RunId")), None)
                if run is None:
                    raise _Error("EntityNotFoundException", f"Job run {request.get('RunId')} not found")
                return _json(start_response, 200, {"JobRun": run})
            return _json(start_response, 200, self._page(request, runs))
        except _Error as err:
            return _json(start_response, 400, {"__type": err.code, "Message": err.message})

    @staticmethod
    def _page(request: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
        size = int(request.get("MaxResults") or DEFAULT_PAGE)
        if not 1 <= size <= MAX_PAGE:
            raise _Error("ValidationException", f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {MAX_PAGE}")
        start = 0
        if request.get("NextToken"):
            try:
                data = json.loads(base64.urlsafe_b64decode(str(request["NextToken"]).encode()))
                start = int(data["o"]) if data["j"] == request.get("JobName") else -1
            except (ValueError, KeyError, TypeError):
                start = -1
            if start < 0:
                raise _Error("InvalidInputException", "Invalid NextToken")
        answer: dict[str, Any] = {"JobRuns": runs[start:start + size]}
        if start + size < len(runs):
            raw = json.dumps({"j": request.get("JobName"), "o": start + size})
            answer["NextToken"] = base64.urlsafe_b64encode(raw.encode()).decode()
        return answer

    def control(self, what: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if what == "runs":
            newest = datetime.fromisoformat(str(payload["newestStartedAt"]).replace("Z", "+00:00"))
            self.record(str(payload["jobName"]), list(payload["runs"]), newest_started_at=newest)
            return {"recorded": len(payload["runs"])}
        return None
