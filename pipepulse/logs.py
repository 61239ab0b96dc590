"""pipepulse's own logs: structured JSON lines (or plain text) on stderr, at a set level."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

__all__ = ["QUIET_LOGGERS", "JsonFormatter", "TextFormatter", "configure_logging"]

_RESERVED = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message`` and then the ``extra=`` fields as ``key=value`` (the job or
    source first), so a text log says which job a line is about as the JSON one does."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = {k: v for k, v in vars(record).items()
                  if k not in _RESERVED and k not in ("message", "asctime") and not k.startswith("_")}
        first = [k for k in ("job", "source") if k in extras]
        fields = [f"{k}={_text(extras[k])}" for k in [*first, *sorted(set(extras) - set(first))]]
        if not fields:
            return text
        head, sep, tail = text.partition("\n")  # a traceback stays below the line
        return f"{head} [{' '.join(fields)}]{sep}{tail}"


def _text(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (not text or any(c.isspace() for c in text)) else text


# libraries kept at WARNING or above whatever the level: botocore's DEBUG lines carry whole
# request and response bodies (a GetSecretValue answer holds the secret)
QUIET_LOGGERS = ("botocore", "boto3", "urllib3", "werkzeug", "alembic", "s3transfer")


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send pipepulse's logs to stderr; quiets chatty libraries."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # moto is only ever the local AWS: it logs the demo's intended failures as errors.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
