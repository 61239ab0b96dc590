"""Recorded Step Functions history events as Step Functions writes them to an execution log
(CloudWatch Logs): ids as strings, ``event_timestamp`` in epoch ms, JSON-valued detail fields as
strings. Shared by the Express, execution-log and aws-shapes tests."""

from __future__ import annotations

import json

STRING_FIELDS = ("input", "output", "cause", "parameters")


def execution_log(execution_arn: str, events: list[dict], started_ms: int, step_ms: int = 1000) -> list[dict]:
    """The execution-log records of ``events``, the i-th at ``started_ms + i * step_ms``."""
    out = []
    for i, ev in enumerate(events):
        details = dict(next((v for k, v in ev.items() if k.endswith("EventDetails")), {}))
        for key in STRING_FIELDS:
            if key in details and not isinstance(details[key], str):
                details[key] = json.dumps(details[key])
        out.append({"id": str(ev["id"]), "type": ev["type"], "details": details,
                    "previous_event_id": str(ev.get("previousEventId", 0)),
                    "event_timestamp": str(started_ms + i * step_ms), "execution_arn": execution_arn, "redrive_count": "0"})
    return out
