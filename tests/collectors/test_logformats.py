"""The log parsers on every real example in aws-shapes (one test per sample) and on our own variants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectors.logformats import parse, parse_glue, parse_lambda, parse_sfn

SHAPES = Path(__file__).resolve().parents[3] / "shared" / "data" / "aws-shapes"
if not SHAPES.is_dir():  # a clone outside /work: the shapes sit beside the repository's parent
    SHAPES = Path("/work/shared/data/aws-shapes")
# prose or context the line itself does not carry (where the sample sat, a note to the reader)
NOT_IN_LINE = {"note", "log", "stream", "executor_id"}


def _samples(folder: str, key: str) -> list:
    path = SHAPES / folder / "expected.json"
    if not path.exists():
        return []
    return [pytest.param(s, id=s["id"]) for s in json.loads(path.read_text())[key]]


def _text(folder: str, sample: dict) -> str:
    lines = (SHAPES / folder / sample["file"]).read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(lines[sample["first_line"] - 1:sample["last_line"]])


def _check(got: dict, expected: dict) -> None:
    for key, value in expected.items():
        if key in NOT_IN_LINE:
            continue
        if key == "message_first_line" and isinstance(value, str) and value.endswith("..."):
            assert got[key].startswith(value[:-3].rstrip(",")), (key, got.get(key))  # the sample shortened it
            continue
        assert key in got, f"{key} missing from {got}"
        assert got[key] == value, (key, got[key], value)


@pytest.mark.parametrize("sample", _samples("lambda-logs", "samples"))
def test_lambda_sample(sample):
    text = _text("lambda-logs", sample)
    assert text == sample["text"]  # the file and expected.json agree on the lines
    records = parse_lambda(text)
    expected = sample["expected"] if isinstance(sample["expected"], list) else [sample["expected"]]
    assert [r["kind"] for r in records] == [e["kind"] for e in expected]
    for got, exp in zip(records, expected, strict=True):
        _check(got, exp)


@pytest.mark.parametrize("sample", _samples("glue", "logs"))
def test_glue_sample(sample):
    text = _text("glue", sample)
    records = parse_glue(text)
    assert len(records) == 1
    _check(records[0], sample["expected"])


def test_a_shape_file_gives_its_samples_in_order():
    # the whole file at once: no record swallows the next one
    samples = [s for s in json.loads((SHAPES / "lambda-logs" / "expected.json").read_text())["samples"]
               if s["file"] == "report-xray.log"]
    records = parse_lambda((SHAPES / "lambda-logs" / "report-xray.log").read_text())
    assert [r["request_id"] for r in records] == [s["expected"]["request_id"] for s in samples]


# ---- our own variants of the documented grammar -----------------------------------------------

def test_report_without_init_duration_and_xray_on_the_next_line():
    text = ("REPORT RequestId: 0f3a0c1e-1111-2222-3333-444455556666\tDuration: 1021.50 ms\tBilled Duration: 1022 ms\t"
            "Memory Size: 1024 MB\tMax Memory Used: 201 MB\t\nXRAY TraceId: 1-6570a1b2-0123456789abcdef01234567\t"
            "SegmentId: 0a1b2c3d4e5f6789\tSampled: false\t\n")
    [rec] = parse_lambda(text)
    assert rec == {"kind": "REPORT", "request_id": "0f3a0c1e-1111-2222-3333-444455556666", "level": None,
                   "duration_ms": 1021.5, "billed_duration_ms": 1022, "memory_size_mb": 1024,
                   "max_memory_used_mb": 201, "init_duration_ms": None,
                   "xray_trace_id": "1-6570a1b2-0123456789abcdef01234567", "xray_segment_id": "0a1b2c3d4e5f6789",
                   "xray_sampled": False}


def test_report_with_status_timeout_and_restore_duration():
    [rec] = parse_lambda("REPORT RequestId: abc Duration: 3000.00 ms Billed Duration: 3000 ms Memory Size: 256 MB "
                         "Max Memory Used: 256 MB Restore Duration: 310.12 ms Status: timeout")
    assert (rec["duration_ms"], rec["restore_duration_ms"], rec["init_duration_ms"], rec["status"], rec["level"]) == (
        3000.0, 310.12, None, "timeout", "ERROR")


def test_report_with_out_of_memory_error_type():
    [rec] = parse_lambda("REPORT RequestId: abc\tDuration: 812.33 ms\tBilled Duration: 813 ms\tMemory Size: 128 MB\t"
                         "Max Memory Used: 128 MB\tStatus: error\tError Type: Runtime.OutOfMemory")
    assert (rec["max_memory_used_mb"], rec["error_type"], rec["level"]) == (128, "Runtime.OutOfMemory", "ERROR")


@pytest.mark.parametrize(("line", "level", "message"), [
    ("[WARNING]\t2024-02-01T10:00:00.123Z\tb1c2\t0 errors in 3 files", "WARNING", "0 errors in 3 files"),
    ("[INFO]\t2024-02-01T10:00:00.123Z\tb1c2\tretrying after ERROR from upstream", "INFO",
     "retrying after ERROR from upstream"),
    ("[CRITICAL]\t2024-02-01T10:00:00.123Z\tb1c2\tdisk full", "CRITICAL", "disk full"),
    ("2024-02-01T10:00:00.123Z\tb1c2\tTRACE\tentering handler", "TRACE", "entering handler"),
    ("2024-02-01T10:00:00.123Z\tb1c2\tFATAL\tcannot continue", "FATAL", "cannot continue"),
    ("2024-02-01T10:00:00.123Z\tb1c2\tERROR\tload failed", "ERROR", "load failed"),
])
def test_level_is_the_records_own_field_and_the_prefix_is_not_in_the_message(line, level, message):
    [rec] = parse_lambda(line)
    assert (rec["kind"], rec["level"], rec["message"], rec["request_id"], rec["timestamp"]) == (
        "APP", level, message, "b1c2", "2024-02-01T10:00:00.123Z")


def test_a_bare_line_with_error_words_is_not_an_error():
    assert parse_lambda("Processed 12 rows, 0 errors\n") == [
        {"kind": "RAW_STDOUT", "request_id": None, "level": None, "message": "Processed 12 rows, 0 errors", "lines": 1}]


@pytest.mark.parametrize(("doc", "expected"), [
    ({"timestamp": "2024-02-01T10:00:00Z", "level": "INFO", "message": "0 errors", "logger": "root",
      "requestId": "79b4f56e"}, {"level": "INFO", "request_id": "79b4f56e", "message": "0 errors"}),
    ({"timestamp": "2024-02-01T10:00:00.000Z", "level": "WARN", "message": "slow"},  # no requestId (init phase)
     {"level": "WARN", "request_id": None, "message": "slow"}),
    ({"timestamp": "2024-02-01T10:00:00Z", "log_level": "ERROR", "errorMessage": "boom", "errorType": "ValueError",
      "requestId": "r1", "stackTrace": ["  File \"/var/task/app.py\", line 3, in handler\n"]},
     {"level": "ERROR", "error_type": "ValueError", "error_message": "boom", "stack_frames": 1}),
    ({"timestamp": "2024-02-01T10:00:00.000Z", "level": "ERROR", "requestId": "r2",
      "message": {"errorType": "TypeError", "errorMessage": "x is undefined", "stackTrace": ["TypeError: x", " at h"]}},
     {"level": "ERROR", "error_type": "TypeError", "error_message": "x is undefined", "stack_frames": 1}),
])
def test_json_log_format_application_records(doc, expected):
    [rec] = parse_lambda(json.dumps(doc))
    assert rec["kind"] == "APP"
    assert {k: rec[k] for k in expected} == expected


def test_json_platform_report_gives_the_invocation_figures():
    line = json.dumps({"time": "2024-02-01T10:00:01.000Z", "type": "platform.report", "record": {
        "requestId": "r3", "status": "timeout", "metrics": {"durationMs": 3000.0, "billedDurationMs": 3000,
                                                            "memorySizeMB": 512, "maxMemoryUsedMB": 88}}})
    [rec] = parse_lambda(line)
    assert (rec["kind"], rec["request_id"], rec["billed_duration_ms"], rec["memory_size_mb"], rec["max_memory_used_mb"],
            rec["init_duration_ms"], rec["level"]) == ("platform.report", "r3", 3000, 512, 88, None, "ERROR")


def test_timeouts_and_crashes():
    text = ("2024-02-01T10:00:03.010Z c0ffee00-aaaa-bbbb-cccc-000000000001 Task timed out after 900.00 seconds\n"
            "RequestId: c0ffee00-aaaa-bbbb-cccc-000000000002 Error: Task timed out after 15.00 seconds\n"
            "RequestId: c0ffee00-aaaa-bbbb-cccc-000000000003 Error: Runtime exited with error: signal: killed\n"
            "Runtime.ExitError\n"
            "RequestId: c0ffee00-aaaa-bbbb-cccc-000000000004 Process exited before completing request\n")
    got = [(r["kind"], r.get("request_id"), r.get("timeout_seconds"), r.get("error_type"), r["level"])
           for r in parse_lambda(text)]
    assert got[:3] == [("TIMEOUT", "c0ffee00-aaaa-bbbb-cccc-000000000001", 900.0, None, "ERROR"),
                       ("TIMEOUT", "c0ffee00-aaaa-bbbb-cccc-000000000002", 15.0, "Sandbox.Timedout", "ERROR"),
                       ("OOM", "c0ffee00-aaaa-bbbb-cccc-000000000003", None, "Runtime.ExitError", "ERROR")]
    assert len(got) == 4


def test_python_traceback_is_one_record():
    text = ("[ERROR] KeyError: 'id'\nTraceback (most recent call last):\n  File \"/var/task/app.py\", line 9, in handler\n"
            "    return event['id']\nSTART RequestId: r9 Version: $LATEST\n")
    recs = parse_lambda(text)
    assert [(r["kind"], r.get("error_type"), r.get("error_message"), r.get("traceback_lines")) for r in recs] == [
        ("PY_UNHANDLED", "KeyError", "'id'", 3), ("START", None, None, None)]


def test_glue_newer_log4j_line_and_python_traceback():
    text = ("2024-02-01 10:00:00,123 ERROR [main] glue.ProcessLauncher (Logging.scala:logError(94)): Error from Python:"
            "Traceback (most recent call last):\n  File \"/tmp/job.py\", line 4, in <module>\n    1/0\n"
            "ZeroDivisionError: division by zero\n24/02/01 10:00:01 INFO ShutdownHookManager: Shutdown hook called\n")
    recs = parse_glue(text)
    assert [(r["level"], r["logger"], r["timestamp"]) for r in recs] == [
        ("ERROR", "glue.ProcessLauncher", "2024-02-01T10:00:00.123000"), ("INFO", "ShutdownHookManager", "2024-02-01T10:00:01")]
    assert recs[0]["error_type"] == "ZeroDivisionError"
    assert recs[0]["message"].endswith("ZeroDivisionError: division by zero")


def test_step_functions_execution_log_records():
    arn = "arn:aws:states:eu-west-1:123456789012:execution:etl:run-1"
    text = "\n".join(json.dumps(d) for d in [
        {"id": "1", "type": "ExecutionStarted", "details": {"input": "{}", "roleArn": "arn:aws:iam::1:role/r"},
         "previous_event_id": "0", "event_timestamp": "1706781600000", "execution_arn": arn, "redrive_count": "0"},
        {"id": "5", "type": "TaskFailed", "details": {"error": "States.TaskFailed", "cause": "Lambda threw",
                                                      "resource": "invoke", "resourceType": "lambda"},
         "previous_event_id": "4", "event_timestamp": "1706781601500", "execution_arn": arn},
    ])
    assert parse(text) == parse_sfn(text)
    started, failed = parse_sfn(text)
    assert (started["kind"], started["level"], started["timestamp"]) == ("sfn.ExecutionStarted", "INFO",
                                                                         "2024-02-01T10:00:00Z")
    assert (failed["kind"], failed["level"], failed["error_type"], failed["error_message"], failed["timestamp"]) == (
        "sfn.TaskFailed", "ERROR", "States.TaskFailed", "Lambda threw", "2024-02-01T10:00:01.500000Z")
