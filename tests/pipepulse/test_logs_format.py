"""Text-format logs carry the job name (and the other ``extra=`` fields) as the JSON ones do."""

from __future__ import annotations

import logging

from pipepulse.logs import TextFormatter


def _record(msg, *args, exc_info=None, **extra):
    record = logging.LogRecord("jobs.scheduler", logging.WARNING, __file__, 1, msg, args, exc_info)
    for k, v in extra.items():
        setattr(record, k, v)
    return record


def test_the_job_name_comes_first_then_the_other_fields():
    line = TextFormatter().format(_record("job %s failed", "detect", detail="db down: x", job="detect", source="ce"))
    assert line.endswith(' WARNING jobs.scheduler: job detect failed [job=detect source=ce detail="db down: x"]')


def test_a_line_without_fields_is_unchanged_and_a_traceback_stays_below():
    assert TextFormatter().format(_record("scheduler started")).endswith("WARNING jobs.scheduler: scheduler started")
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        line = TextFormatter().format(_record("failed", exc_info=sys.exc_info(), job="retention"))
    first, *rest = line.splitlines()
    assert first.endswith("failed [job=retention]") and rest[-1] == "ValueError: boom"
