"""Log line formats of AWS Lambda, AWS Glue and AWS Step Functions, read into plain records.

Pure functions, no AWS: text in, one ``dict`` per record out. A record always has ``kind``; the
other keys are the names ``pipepulse logs parse`` prints (``request_id``, ``level``,
``timestamp``, ``duration_ms``, ``billed_duration_ms``, ``memory_size_mb``,
``max_memory_used_mb``, ``init_duration_ms``, ``error_type``, ``error_message``,
``timeout_seconds``, ``xray_trace_id`` ...), present only where the record carries them.

Lambda (``parse_lambda``) reads each format by its documented grammar:

- platform lines of the TEXT log format: ``START``, ``END``, ``REPORT`` (with ``Init
  Duration`` on a cold start, ``Status``/``Error Type`` on newer runtimes, and the ``XRAY``
  fields on the same line or the next one), ``INIT_START``, ``INIT_REPORT``, ``EXTENSION``;
- application lines: Node.js ``<timestamp>\\t<request id>\\t<LEVEL>\\t<message>``
  (``Invoke Error`` lines carry the error document), Python logging
  ``[LEVEL]\\t<timestamp>\\t<request id>\\t<message>``; the message keeps no prefix;
- the Python runtime's unhandled exception ``[ERROR] <Type>: <message>`` and its traceback;
- function error documents ``{"errorType", "errorMessage", "stackTrace"|"trace"}``;
- timeouts (``Task timed out after N seconds``, with a timestamp and request id or after
  ``RequestId: <id> Error:``) and crashes (``Runtime exited with error: signal: killed``, the
  out-of-memory kill; Node.js ``JavaScript heap out of memory``; ``Process exited before
  completing request``);
- the JSON log format: application records (``timestamp``, ``level``, ``requestId``,
  ``message``) and platform records (``time``, ``type`` = ``platform.*``, ``record``);
- anything else is ``RAW_STDOUT`` (a bare ``print``): its level is None, never guessed.

The level is the record's own field where it has one. Records that are an error by their
grammar (a timeout, a crash, an error document, an unhandled exception) are ``ERROR``; nothing
else becomes an error because of a word in its message ("0 errors" stays what it was).

A record may span lines: a traceback, a pretty-printed JSON document, a multi-line message.
In a file, a line that does not start a record continues the one before it (a bare line after
a bare line continues it too: the file cannot tell two prints from one two-line print). From
CloudWatch, each event is one record's text (``parse_lambda`` of the event's message).

Glue (``parse_glue``): the log4j lines of the driver and executors (``yy/MM/dd HH:mm:ss LEVEL
Logger: message`` and ``yyyy-MM-dd HH:mm:ss,SSS LEVEL [thread] Logger (...): message``),
Java stack traces and Python tracebacks joined to the line they belong to, and other lines as
they are (level None).

Step Functions (``parse_sfn``): execution log records, one JSON object per event (``id``,
``type``, ``details``, ``previous_event_id``, ``event_timestamp`` in epoch milliseconds,
``execution_arn``); the level is ERROR for the event types that the ERROR log level logs
(``*Failed``, ``*TimedOut``, ``*Aborted``), else INFO.

Extending: a new Lambda line format is one regular expression and one branch in
``_lambda_head``; it is tested with a sample per variant in tests/collectors/test_logformats.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

__all__ = ["FIELDS", "LEVEL_WORDS", "parse", "parse_glue", "parse_lambda", "parse_sfn", "sniff"]

# the fields `pipepulse logs parse` prints first, in this order (others follow)
FIELDS = ("kind", "request_id", "level", "timestamp", "duration_ms", "billed_duration_ms", "memory_size_mb",
          "max_memory_used_mb", "init_duration_ms", "error_type", "error_message", "timeout_seconds", "xray_trace_id")

# the level words the runtimes print (Node.js console, Python logging, log4j, the JSON format)
LEVEL_WORDS = ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "CRITICAL", "FATAL")
_LEVEL = "|".join(LEVEL_WORDS)
_TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_NUM = r"\d+(?:\.\d+)?"

_START = re.compile(r"^START RequestId: (?P<rid>\S+)(?:\s+Version: (?P<version>\S+))?")
_END = re.compile(r"^END RequestId: (?P<rid>\S+)")
_REPORT = re.compile(r"^REPORT RequestId: (?P<rid>\S+)")
_INIT_START = re.compile(r"^INIT_START Runtime Version: (?P<rv>\S+)(?:\s+Runtime Version ARN: (?P<arn>\S+))?")
_INIT_REPORT = re.compile(r"^INIT_REPORT\b")
_EXTENSION = re.compile(r"^EXTENSION\s+Name: (?P<name>\S+)(?:\s+State: (?P<state>\S+))?")
_XRAY = re.compile(r"XRAY TraceId: (?P<trace>\S+)(?:\s+SegmentId: (?P<segment>\S+))?(?:\s+Sampled: (?P<sampled>true|false))?")
_NODE = re.compile(rf"^(?P<ts>{_TS})\s+(?P<rid>\S+)\s+(?P<level>{_LEVEL})(?:\s+(?P<msg>.*))?$")
_NODE_NOLEVEL = re.compile(rf"^(?P<ts>{_TS})\t(?P<rid>[^\t\s]+)\t(?P<msg>.*)$")  # Node.js 8.10: no level
_PY_APP = re.compile(rf"^\[(?P<level>{_LEVEL})\]\t(?P<ts>{_TS})\t(?P<rid>\S+)\t(?P<msg>.*)$")
_PY_UNHANDLED = re.compile(rf"^\[(?P<level>{_LEVEL})\] (?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<msg>.*))?$")
_TIMEOUT_LINE = re.compile(rf"^(?P<ts>{_TS})\s+(?P<rid>\S+)\s+Task timed out after (?P<secs>{_NUM}) seconds")
_REQ_ERROR = re.compile(r"^RequestId: (?P<rid>\S+)\s+(?:Error: )?(?P<error>\S.*)$")
_TIMED_OUT = re.compile(rf"Task timed out after (?P<secs>{_NUM}) seconds")
_HEAP_OOM = re.compile(r"JavaScript heap out of memory")

# kinds a following line may continue (a traceback, a multi-line message, a second print line)
_CONTINUED = {"APP", "PY_UNHANDLED", "RAW_STDOUT", "OOM", "RUNTIME_EXIT", "PROCESS_EXITED", "TIMEOUT"}


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _field(line: str, label: str, unit: str) -> int | float | None:
    # "Duration" must not match inside "Billed Duration" / "Init Duration" / "Restore Duration"
    m = re.search(rf"(?<!Billed )(?<!Init )(?<!Restore )\b{label}: ({_NUM}) {unit}\b", line)
    return _number(m.group(1)) if m else None


def _report(line: str) -> dict[str, Any]:
    m = _REPORT.match(line)
    assert m is not None
    rec: dict[str, Any] = {"kind": "REPORT", "request_id": m["rid"], "level": None,
                           "duration_ms": _field(line, "Duration", "ms"),
                           "billed_duration_ms": _field(line, "Billed Duration", "ms"),
                           "memory_size_mb": _field(line, "Memory Size", "MB"),
                           "max_memory_used_mb": _field(line, "Max Memory Used", "MB"),
                           "init_duration_ms": _field(line, "Init Duration", "ms")}
    restore = _field(line, "Restore Duration", "ms")
    if restore is not None:
        rec["restore_duration_ms"] = restore
    status = re.search(r"\bStatus: (\w+)", line)
    if status:
        rec["status"] = status.group(1)
        if status.group(1) != "success":
            rec["level"] = "ERROR"
    etype = re.search(r"\bError Type: (\S+)", line)
    if etype:
        rec["error_type"] = etype.group(1)
        rec["level"] = "ERROR"
    _xray(rec, line)
    return rec


def _xray(rec: dict[str, Any], line: str) -> bool:
    m = _XRAY.search(line)
    if not m:
        return False
    rec["xray_trace_id"] = m["trace"]
    if m["segment"]:
        rec["xray_segment_id"] = m["segment"]
    if m["sampled"]:
        rec["xray_sampled"] = m["sampled"] == "true"
    return True


def _error_doc(doc: Any) -> tuple[str | None, str | None, list[Any] | None, str | None]:
    """(errorType, errorMessage, stack, stack key) of a Lambda error document, or Nones."""
    if not isinstance(doc, dict) or not ({"errorType", "errorMessage"} & doc.keys()):
        return None, None, None, None
    key = "stackTrace" if "stackTrace" in doc else "trace" if "trace" in doc else "stack" if "stack" in doc else None
    stack = doc.get(key) if key else None
    etype = doc.get("errorType")
    emsg = doc.get("errorMessage")
    if isinstance(stack, list) and stack and isinstance(stack[0], str) and etype and stack[0].startswith(f"{etype}:"):
        stack = stack[1:]  # Node.js: the first line of a stack is "<Type>: <message>", not a frame
    return (None if etype is None else str(etype), None if emsg is None else str(emsg),
            stack if isinstance(stack, list) else None, key)


def _trace_id(tracing: Any) -> str | None:
    value = tracing.get("value") if isinstance(tracing, dict) else None
    m = re.search(r"Root=([^;]+)", value or "")
    return m.group(1) if m else None


def _json_record(doc: dict[str, Any]) -> dict[str, Any]:
    """A record of the JSON log format (platform or application), an error document, or raw JSON."""
    kind = doc.get("type")
    if isinstance(kind, str) and kind.startswith("platform.") and "time" in doc:
        return _platform(doc)
    if "execution_arn" in doc and "event_timestamp" in doc:
        return _sfn(doc)
    level = doc.get("level", doc.get("log_level"))
    if isinstance(level, str) and ("timestamp" in doc or "message" in doc):
        rec: dict[str, Any] = {"kind": "APP", "timestamp": doc.get("timestamp"), "request_id": doc.get("requestId"),
                               "level": level.upper()}
        message = doc.get("message")
        etype, emsg, stack, _ = _error_doc(message if isinstance(message, dict) else doc)
        if isinstance(message, dict) and etype is None:
            message = json.dumps(message)
        if etype or emsg:
            rec["error_type"], rec["error_message"] = etype, emsg
            if stack is not None:
                rec["stack_frames"] = len(stack)
            if message is None or isinstance(message, dict):
                message = f"{etype}: {emsg}" if etype else emsg
        rec["message"] = "" if message is None else str(message)
        rec["message_first_line"] = rec["message"].split("\n", 1)[0]
        if "logger" in doc:
            rec["logger"] = doc["logger"]
        return rec
    etype, emsg, stack, key = _error_doc(doc)
    if etype or emsg:
        rec = {"kind": "ERROR_JSON", "level": "ERROR", "request_id": doc.get("requestId"), "error_type": etype,
               "error_message": emsg, "stack_frames": len(stack or [])}
        if key and key != "stackTrace":
            rec["stack_key"] = key
        timed = _TIMED_OUT.search(emsg or "")
        if timed:
            rec["kind"] = "TIMEOUT_ERROR_JSON"
            rec["timeout_seconds"] = float(timed["secs"])
        return rec
    return {"kind": "RAW_STDOUT", "request_id": None, "level": None, "message": json.dumps(doc)}


def _platform(doc: dict[str, Any]) -> dict[str, Any]:
    record = doc.get("record") if isinstance(doc.get("record"), dict) else {}
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    rec: dict[str, Any] = {"kind": doc["type"], "time": doc["time"], "timestamp": doc["time"], "level": None}
    if "requestId" in record:
        rec["request_id"] = record["requestId"]
    if "version" in record:
        rec["version"] = record["version"]
    if "status" in record:
        rec["status"] = record["status"]
        if record["status"] not in ("success",):
            rec["level"] = "ERROR"
    if "errorType" in record:
        rec["error_type"] = record["errorType"]
        rec["level"] = "ERROR"
    if "initializationType" in record and doc["type"] == "platform.initStart":
        rec["initialization_type"] = record["initializationType"]
    if "phase" in record and doc["type"] == "platform.initStart":
        rec["phase"] = record["phase"]
    if doc["type"] in ("platform.initReport",):
        if "durationMs" in metrics:
            rec["init_duration_ms"] = metrics["durationMs"]
    elif doc["type"] == "platform.report":
        for src, dst in (("durationMs", "duration_ms"), ("billedDurationMs", "billed_duration_ms"),
                         ("memorySizeMB", "memory_size_mb"), ("maxMemoryUsedMB", "max_memory_used_mb"),
                         ("initDurationMs", "init_duration_ms")):
            rec[dst] = metrics.get(src)
    elif doc["type"] == "platform.runtimeDone":
        if "durationMs" in metrics:
            rec["duration_ms"] = metrics["durationMs"]
        if "producedBytes" in metrics:
            rec["produced_bytes"] = metrics["producedBytes"]
    trace = _trace_id(record.get("tracing"))
    if trace:
        rec["xray_trace_id"] = trace
    return rec


def _lambda_head(line: str, prev: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record ``line`` starts, or None when it continues the one before."""
    stripped = line.strip()
    if line.startswith("REPORT RequestId:"):
        return _report(line)
    if line.startswith("XRAY TraceId:"):
        if prev is not None and prev["kind"] == "REPORT" and "xray_trace_id" not in prev:
            _xray(prev, line)
            return None
        rec: dict[str, Any] = {"kind": "XRAY", "level": None}
        _xray(rec, line)
        return rec
    if m := _START.match(line):
        return {"kind": "START", "request_id": m["rid"], "version": m["version"], "level": None}
    if m := _END.match(line):
        return {"kind": "END", "request_id": m["rid"], "level": None}
    if m := _INIT_START.match(line):
        return {"kind": "INIT_START", "runtime_version": m["rv"], "runtime_version_arn": m["arn"], "level": None}
    if _INIT_REPORT.match(line):
        rec = {"kind": "INIT_REPORT", "init_duration_ms": _field(line, "Init Duration", "ms"), "level": None}
        status = re.search(r"\bStatus: (\w+)", line)
        if status:
            rec["status"] = status.group(1)
        etype = re.search(r"\bError Type: (\S+)", line)
        if etype:
            rec["error_type"] = etype.group(1)
            rec["level"] = "ERROR"
        return rec
    if m := _EXTENSION.match(line):
        return {"kind": "EXTENSION", "extension": m["name"], "state": m["state"], "level": None}
    if m := _TIMEOUT_LINE.match(line):
        return {"kind": "TIMEOUT", "timestamp": m["ts"], "request_id": m["rid"], "level": "ERROR",
                "timeout_seconds": float(m["secs"]), "error_message": stripped.split(None, 2)[2]}
    if m := _REQ_ERROR.match(line):
        return _request_error(m["rid"], m["error"])
    if m := _PY_APP.match(line):
        return _app(m["ts"], m["rid"], m["level"], m["msg"])
    if m := _NODE.match(line):
        return _app(m["ts"], m["rid"], m["level"], m["msg"] or "")
    if m := _NODE_NOLEVEL.match(line):
        timed = _TIMED_OUT.fullmatch(m["msg"].strip())
        if timed:
            return {"kind": "TIMEOUT", "timestamp": m["ts"], "request_id": m["rid"], "level": "ERROR",
                    "timeout_seconds": float(timed["secs"]), "error_message": m["msg"].strip()}
        return _app(m["ts"], m["rid"], None, m["msg"])
    if m := _PY_UNHANDLED.match(line):
        return {"kind": "PY_UNHANDLED", "level": m["level"], "error_type": m["type"],
                "error_message": (m["msg"] or "").strip(), "request_id": None, "traceback_lines": 0}
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            return _json_record(doc)
    if _HEAP_OOM.search(line) and (prev is None or prev["kind"] not in ("APP", "OOM")):
        return {"kind": "OOM", "level": "ERROR", "request_id": None, "error": stripped,
                "error_type": "Runtime.OutOfMemory", "error_message": stripped}
    if prev is not None and prev["kind"] in _CONTINUED:
        return None
    return {"kind": "RAW_STDOUT", "request_id": None, "level": None, "message": stripped, "lines": 1}


def _request_error(rid: str, error: str) -> dict[str, Any]:
    """``RequestId: <id> Error: <text>``: the platform's word on an invocation that did not finish."""
    rec: dict[str, Any] = {"request_id": rid, "level": "ERROR", "error": error, "error_message": error}
    timed = _TIMED_OUT.search(error)
    if timed:
        rec.update(kind="TIMEOUT", timeout_seconds=float(timed["secs"]), error_type="Sandbox.Timedout")
    elif re.search(r"signal: killed", error) or "out of memory" in error.lower():
        rec.update(kind="OOM", error_type="Runtime.ExitError")
    elif error.startswith("Process exited before completing request"):
        rec.update(kind="PROCESS_EXITED", error_type=None)
    else:
        rec.update(kind="RUNTIME_EXIT", error_type="Runtime.ExitError" if "Runtime exited" in error else None)
    return rec


def _app(ts: str, rid: str, level: str | None, msg: str) -> dict[str, Any]:
    rec: dict[str, Any] = {"kind": "APP", "timestamp": ts, "request_id": rid, "level": level,
                           "message": msg.rstrip("\t "), "message_first_line": msg.rstrip("\t ")}
    # Node.js: "Invoke Error \t{error document}", the runtime's unhandled error
    m = re.match(r"^(?:Invoke Error|Uncaught Exception|Unhandled Promise Rejection)\s+(\{.*\})\s*$", msg)
    if m:
        try:
            etype, emsg, stack, _ = _error_doc(json.loads(m.group(1)))
        except ValueError:
            etype = emsg = None
            stack = None
        if etype or emsg:
            rec["error_type"], rec["error_message"] = etype, emsg
            rec["stack_frames"] = len(stack or [])
    return rec


def _continue(rec: dict[str, Any], line: str) -> None:
    """Add a continuation ``line`` to ``rec`` (a traceback frame, a message's next line)."""
    kind = rec["kind"]
    text = line.rstrip("\n")
    if kind == "PY_UNHANDLED":
        rec["traceback_lines"] += 1
        rec.setdefault("traceback", []).append(text)
    elif kind in ("OOM", "RUNTIME_EXIT", "PROCESS_EXITED", "TIMEOUT"):
        word = text.strip()
        if re.fullmatch(r"[A-Za-z]+\.[A-Za-z.]+", word):  # the error type the platform prints on its own line
            rec["error_type"] = word
        else:
            rec["error_message"] = f"{rec.get('error_message') or ''}\n{text}".strip("\n")
    else:  # APP, RAW_STDOUT
        rec["message"] = f"{rec['message']}\n{text}"
        rec["multiline"] = True
        if kind == "RAW_STDOUT":
            rec["lines"] = rec.get("lines", 1) + 1


def _json_block(lines: list[str], i: int) -> tuple[dict[str, Any], int] | None:
    """A JSON object pretty-printed over lines ``i``.. (an error document), and the next index."""
    buf = []
    for j in range(i, min(len(lines), i + 500)):
        buf.append(lines[j])
        if lines[j].rstrip().startswith("}"):
            try:
                doc = json.loads("\n".join(buf))
            except ValueError:
                continue
            if isinstance(doc, dict):
                return doc, j + 1
    return None


def _lines(text: str | Iterable[str]) -> list[str]:
    if isinstance(text, str):
        return text.splitlines()
    return [line.rstrip("\r\n") for line in text]


def parse_lambda(text: str | Iterable[str]) -> list[dict[str, Any]]:
    """The records in Lambda log text (a file, or one CloudWatch event's message)."""
    lines = _lines(text)
    out: list[dict[str, Any]] = []
    prev: dict[str, Any] | None = None
    i = 0
    while i < len(lines):
        line = lines[i].rstrip("\r")
        if not line.strip():
            i += 1
            continue
        if line.strip() == "{" and (prev is None or prev["kind"] not in ("APP", "RAW_STDOUT", "PY_UNHANDLED")):
            block = _json_block(lines, i)
            if block is not None:
                prev = _json_record(block[0])
                out.append(prev)
                i = block[1]
                continue
        rec = _lambda_head(line, prev)
        if rec is None:
            if prev is not None and prev["kind"] in _CONTINUED:
                _continue(prev, line)
        else:
            out.append(rec)
            prev = rec
        i += 1
    return out


# ---- Glue -----------------------------------------------------------------------------------

_LOG4J_SHORT = re.compile(rf"^(?P<ts>\d\d/\d\d/\d\d \d\d:\d\d:\d\d)\s+(?P<level>{_LEVEL})\s+(?P<logger>[^\s:]+):\s?(?P<msg>.*)$")
_LOG4J_LONG = re.compile(
    rf"^(?P<ts>\d{{4}}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?)(?P<tz>Z|[+-]\d\d:?\d\d)?\s+(?P<level>{_LEVEL})\s+"
    r"(?:\[(?P<thread>[^\]]*)\]\s+)?(?P<logger>[^\s:(]+)(?:\s+\((?:[^()]|\([^()]*\))*\))?:\s?(?P<msg>.*)$")
_GLUE_CONT = re.compile(r"^(?:\s+\S|Caused by:|Traceback \(most recent call last\):|\.\.\. \d+ more)")


def _glue_head(line: str) -> dict[str, Any] | None:
    if m := _LOG4J_SHORT.match(line):
        when = datetime.strptime(m["ts"], "%y/%m/%d %H:%M:%S")
        return {"kind": "GLUE", "timestamp_text": m["ts"], "timestamp": when.isoformat(), "timezone": None,
                "level": m["level"], "logger": m["logger"], "message": m["msg"]}
    if m := _LOG4J_LONG.match(line):
        text = m["ts"].replace(",", ".").replace("T", " ")
        when = datetime.fromisoformat(text)
        return {"kind": "GLUE", "timestamp_text": m["ts"] + (m["tz"] or ""), "timestamp": when.isoformat(),
                "timezone": m["tz"], "level": m["level"], "logger": m["logger"], "message": m["msg"],
                **({"thread": m["thread"]} if m["thread"] is not None else {})}
    return None


def parse_glue(text: str | Iterable[str]) -> list[dict[str, Any]]:
    """The records in Glue job log text (its error or output stream)."""
    out: list[dict[str, Any]] = []
    prev: dict[str, Any] | None = None
    in_traceback = False
    for raw in _lines(text):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        rec = _glue_head(line)
        if rec is None and prev is not None and (_GLUE_CONT.match(line) or in_traceback):
            if line.startswith("Traceback (most recent call last):"):
                in_traceback = True
            elif in_traceback and not line[:1].isspace():
                in_traceback = False  # "ValueError: ...": the last line of a Python traceback
                etype, _, emsg = line.partition(": ")
                if re.fullmatch(r"[A-Za-z_][\w.]*", etype):
                    prev["error_type"], prev["error_message"] = etype, emsg
            prev["message"] = f"{prev['message']}\n{line}"
            prev["multiline"] = True
            continue
        # "Error from Python:Traceback (most recent call last):": Glue puts the header on the log line
        in_traceback = "Traceback (most recent call last):" in line
        if rec is None:
            rec = {"kind": "GLUE", "level": None, "message": line}
        out.append(rec)
        prev = rec
    return out


# ---- Step Functions -------------------------------------------------------------------------

_SFN_ERROR_TYPES = re.compile(r"(Failed|TimedOut|Aborted)$")


def _sfn(doc: dict[str, Any]) -> dict[str, Any]:
    details = doc.get("details") if isinstance(doc.get("details"), dict) else {}
    etype = str(doc.get("type", ""))
    ts = doc.get("event_timestamp")
    when = None
    if isinstance(ts, (str, int)) and str(ts).isdigit():
        when = datetime.fromtimestamp(int(ts) / 1000, UTC).isoformat().replace("+00:00", "Z")
    rec: dict[str, Any] = {"kind": f"sfn.{etype}", "level": "ERROR" if _SFN_ERROR_TYPES.search(etype) else "INFO",
                           "timestamp": when, "execution_arn": doc.get("execution_arn"), "event_id": doc.get("id"),
                           "previous_event_id": doc.get("previous_event_id")}
    if details.get("error") is not None:
        rec["error_type"] = details["error"]
    if details.get("cause") is not None:
        rec["error_message"] = details["cause"]
    for key in ("name", "resourceType", "resource"):
        if key in details:
            rec[{"name": "state", "resourceType": "resource_type"}.get(key, key)] = details[key]
    if doc.get("redrive_count") is not None:
        rec["redrive_count"] = doc["redrive_count"]
    return rec


def parse_sfn(text: str | Iterable[str]) -> list[dict[str, Any]]:
    """The records in Step Functions execution log text (one JSON object per line)."""
    out = []
    for line in _lines(text):
        stripped = line.strip()
        if not stripped:
            continue
        try:
            doc = json.loads(stripped)
        except ValueError:
            out.append({"kind": "RAW_STDOUT", "level": None, "message": stripped})
            continue
        out.append(_sfn(doc) if isinstance(doc, dict) else {"kind": "RAW_STDOUT", "level": None, "message": stripped})
    return out


# ---- which format ---------------------------------------------------------------------------


def sniff(text: str) -> str:
    """``"glue"``, ``"sfn"`` or ``"lambda"``: the format the first lines of ``text`` look like."""
    glue = sfn = 0
    for line in text.splitlines()[:50]:
        if _glue_head(line) is not None:
            glue += 1
        stripped = line.strip()
        if stripped.startswith("{") and '"execution_arn"' in stripped and '"event_timestamp"' in stripped:
            sfn += 1
    if sfn:
        return "sfn"
    return "glue" if glue else "lambda"


def parse(text: str, fmt: str = "auto") -> list[dict[str, Any]]:
    """The records of ``text`` in format ``fmt`` (``auto``, ``lambda``, ``glue``, ``sfn``)."""
    fmt = sniff(text) if fmt == "auto" else fmt
    if fmt == "glue":
        return parse_glue(text)
    if fmt == "sfn":
        return parse_sfn(text)
    return parse_lambda(text)
