"""A Step Functions history stand-in: recorded execution histories served over moto's endpoint.

moto runs only the ASL it can interpret and writes a history of its own making, so it cannot
return what real AWS recorded (Task retries with their TaskFailed causes, Map iterations,
``.sync`` integrations, Lambda legacy events). This WSGI middleware answers, for the executions
a history was recorded for, the three operations that read an execution, from that history:

- ``GetExecutionHistory``: the recorded events, paged as AWS pages them: ``maxResults`` (0 or
  absent: 100; more than 1000: ``ValidationException``), ``nextToken`` (opaque; a token from
  another execution or a changed request: ``InvalidToken``), ``reverseOrder``,
  ``includeExecutionData`` (false drops input, output, parameters and their details);
- ``DescribeExecution`` and ``ListExecutions``: moto's answer, with the recorded execution's
  status (from the history's terminal event), ``stopDate`` (its time) and, for a failure, its
  error and cause.

Every other request goes to moto. The execution itself must exist in moto (create the state
machine and start the execution with boto3 first, then record its history).

Recorded histories as third parties publish them are normalised (LocalStack's snapshots replace
every timestamp by the string ``"timestamp"`` and parse JSON-string fields into objects): the
stand-in gives event ``i`` (by position) the time ``started_at + i * seconds_per_event`` and
serialises object-valued ``input``, ``output``, ``cause``, ``parameters`` back to JSON strings,
as AWS returns them. A real ISO-8601 or epoch timestamp in an event is kept.

Control API on the same port: ``POST /pipepulse-api/sfn/history`` ``{"executionArn": ...,
"events": [...], "startedAt": "<ISO time>", "secondsPerEvent": 1}``, ``POST
/pipepulse-api/sfn/reset``, ``GET /pipepulse-api/sfn/requests`` (requests per operation).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from devkit.localaws.standin import StandIn
from devkit.localaws.standin import json_answer as _json
from devkit.localaws.standin import read_body as _read_body

__all__ = ["StepFunctionsHistoryStandIn"]

TARGET_PREFIX = "AWSStepFunctions."
CONTROL_PREFIX = "/pipepulse-api/sfn/"
DEFAULT_PAGE = 100
MAX_PAGE = 1000
STRING_FIELDS = ("input", "output", "cause", "parameters")
DATA_FIELDS = ("input", "inputDetails", "output", "outputDetails", "parameters")
TERMINAL = {"ExecutionSucceeded": "SUCCEEDED", "ExecutionFailed": "FAILED", "ExecutionTimedOut": "TIMED_OUT",
            "ExecutionAborted": "ABORTED"}


class _Error(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _timestamp(value: Any, fallback: datetime) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return fallback.timestamp()  # a normalised placeholder such as "timestamp"
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return fallback.timestamp()


def _as_aws(event: dict[str, Any], ts: float) -> dict[str, Any]:
    """One event as AWS serialises it: epoch time, JSON-string data fields."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            value = {k: (v if isinstance(v, str) or k not in STRING_FIELDS or v is None else json.dumps(v))
                     for k, v in value.items()}
        out[key] = value
    out["timestamp"] = ts
    return out


class _Recorded:
    def __init__(self, arn: str, events: list[dict[str, Any]], started_at: datetime, seconds_per_event: float) -> None:
        self.arn = arn
        self.events = [_as_aws(ev, _timestamp(ev.get("timestamp"), started_at + timedelta(seconds=i * seconds_per_event)))
                       for i, ev in enumerate(events)]
        last = self.events[-1] if self.events else {}
        self.status = TERMINAL.get(str(last.get("type")), "RUNNING")
        self.stop = last.get("timestamp") if self.status != "RUNNING" else None
        details = next((v for k, v in last.items() if k.endswith("EventDetails")), {}) or {}
        self.error, self.cause = details.get("error"), details.get("cause")

    def patch(self, execution: dict[str, Any]) -> None:
        execution["status"] = self.status
        if self.stop is not None:
            execution["stopDate"] = self.stop
        for key, value in (("error", self.error), ("cause", self.cause)):
            if value:
                execution[key] = value


class StepFunctionsHistoryStandIn(StandIn):
    """WSGI middleware answering history reads of recorded executions (see the module docstring)."""

    control_prefix = CONTROL_PREFIX

    def reset(self) -> None:
        """Forget recorded histories and request counts."""
        with self._lock:
            self.recorded: dict[str, _Recorded] = {}
            self.requests: Counter[str] = Counter()

    def record(self, execution_arn: str, events: list[dict[str, Any]], *, started_at: datetime,
               seconds_per_event: float = 1.0) -> None:
        """Serve ``events`` as the history of ``execution_arn`` (an execution moto knows)."""
        if not events:
            raise ValueError("a recorded history needs at least its ExecutionStarted event")
        with self._lock:
            self.recorded[execution_arn] = _Recorded(execution_arn, events, started_at, seconds_per_event)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response, path[len(CONTROL_PREFIX):])
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(TARGET_PREFIX) or not self.recorded:
            return self.next_app(environ, start_response)
        op = target[len(TARGET_PREFIX):]
        if op not in {"GetExecutionHistory", "DescribeExecution", "ListExecutions"}:
            return self.next_app(environ, start_response)
        body = _read_body(environ)
        request = json.loads(body or b"{}")
        if op == "GetExecutionHistory" and request.get("executionArn") in self.recorded:
            with self._lock:
                self.requests[op] += 1
            try:
                return _json(start_response, 200, self._history(request))
            except _Error as err:
                return _json(start_response, 400, {"__type": err.code, "message": err.message})
        environ["wsgi.input"] = io.BytesIO(body)
        status, headers, payload = _call(self.next_app, environ)
        if status.startswith("200") and op in {"DescribeExecution", "ListExecutions"}:
            answer = json.loads(payload or b"{}")
            executions = answer.get("executions", []) if op == "ListExecutions" else [answer]
            for execution in executions:
                recorded = self.recorded.get(execution.get("executionArn", ""))
                if recorded is not None:
                    recorded.patch(execution)
            return _json(start_response, 200, answer)
        start_response(status, headers)
        return [payload]

    def _history(self, request: dict[str, Any]) -> dict[str, Any]:
        recorded = self.recorded[request["executionArn"]]
        size = int(request.get("maxResults") or 0) or DEFAULT_PAGE
        if size < 0 or size > MAX_PAGE:
            raise _Error("ValidationException", f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {MAX_PAGE}")
        reverse = bool(request.get("reverseOrder"))
        with_data = request.get("includeExecutionData", True) is not False
        start = 0
        if request.get("nextToken"):
            start = self._offset(request["nextToken"], recorded.arn, reverse)
        events = recorded.events[::-1] if reverse else recorded.events
        page = events[start:start + size]
        if not with_data:
            page = [{k: ({dk: dv for dk, dv in v.items() if dk not in DATA_FIELDS} if k.endswith("EventDetails") and isinstance(v, dict) else v)
                     for k, v in ev.items()} for ev in page]
        answer: dict[str, Any] = {"events": page}
        if start + size < len(events):
            answer["nextToken"] = self._token(recorded.arn, reverse, start + size)
        return answer

    @staticmethod
    def _token(arn: str, reverse: bool, offset: int) -> str:
        raw = json.dumps({"a": hashlib.sha256(arn.encode()).hexdigest()[:16], "r": reverse, "o": offset})
        return base64.urlsafe_b64encode(raw.encode()).decode()

    @staticmethod
    def _offset(token: str, arn: str, reverse: bool) -> int:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            ok = data["a"] == hashlib.sha256(arn.encode()).hexdigest()[:16] and data["r"] == reverse
            offset = int(data["o"])
        except (ValueError, KeyError, TypeError) as exc:
            raise _Error("InvalidToken", "Invalid Token: 'nextToken' could not be decoded") from exc
        if not ok:
            raise _Error("InvalidToken", "Invalid Token: 'nextToken' belongs to another request")
        return offset

    def control(self, what: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if what == "history":
            started = datetime.fromisoformat(str(payload["startedAt"]).replace("Z", "+00:00"))
            self.record(payload["executionArn"], list(payload["events"]), started_at=started,
                        seconds_per_event=float(payload.get("secondsPerEvent", 1.0)))
            return {"recorded": len(payload["events"])}
        return None


def _call(app: Callable[..., Any], environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run ``app`` and collect its whole answer."""
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        got["status"], got["headers"] = status, headers
        return lambda _data: None

    chunks = app(environ, start_response)
    try:
        payload = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return got["status"], got["headers"], payload


