"""Exceptions pipepulse raises, all under one root.

    PipepulseError                 anything pipepulse itself reports to a user
    +-- ConfigError                a setting or the config file is wrong (names file, key, expectation)
    +-- StoreError                 the database cannot be reached or used
    |   +-- SchemaError            the schema is missing, or newer than this code
    +-- InputError                 a file or form field given by a user is malformed
    +-- AccessError                a sign-in or request the dashboard's access rules refuse
    +-- CollectorError(source)     a collector pass failed; ``source`` names the collector
    |   +-- TransientError         worth retrying (throttling, 5xx, timeouts)
    |   |   +-- InvalidAnswerError a 200 answer not of its operation's shape (cut off, malformed)
    |   +-- PermissionError_       AWS denied an action; the message names the IAM action
    +-- PipelineError              a reference-pipeline stage failed (its run records it)
    +-- DeliveryError              an alert could not be delivered (SMTP/SES)

Wrap third-party exceptions at the boundary, with a message that says what failed and what
to do, and chain the original with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "AccessError",
    "CollectorError",
    "ConfigError",
    "DeliveryError",
    "InputError",
    "InvalidAnswerError",
    "PermissionError_",
    "PipelineError",
    "PipepulseError",
    "SchemaError",
    "StoreError",
    "TransientError",
]


class PipepulseError(Exception):
    """Root of every error pipepulse reports to a user; ``str()`` is the full message."""


class ConfigError(PipepulseError):
    """A setting or config file is wrong."""


class StoreError(PipepulseError):
    """The database cannot be reached or used."""


class SchemaError(StoreError):
    """The database schema is missing or newer than this code."""


class InputError(PipepulseError):
    """A user-supplied file, row or form field is malformed."""


class AccessError(PipepulseError):
    """The dashboard's access rules refuse a sign-in or a request; ``str()`` says why."""


class CollectorError(PipepulseError):
    """A collector pass failed. ``source`` names the collector (``"ce"``, ``"glue"`` ...)."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.detail = message


class TransientError(CollectorError):
    """A failure worth retrying: throttling, a 5xx answer, a timeout."""


class InvalidAnswerError(TransientError):
    """An AWS answer that arrived (HTTP 200) but is not of its operation's output shape.

    botocore turns a cut-off or malformed body into ``{}`` without raising; counting that as an
    empty last page would lose every item after it for good, so the answer fails instead (it is
    retried like a 5xx, then fails the pass, and the watermark stays where it was).
    """


class PermissionError_(CollectorError):  # noqa: N801 - avoids shadowing the builtin
    """AWS denied an action; the message names the IAM action to grant."""


class PipelineError(PipepulseError):
    """A reference-pipeline stage failed."""

    def __init__(self, message: str, *, error_type: str = "PipelineError", transient: bool = False):
        super().__init__(message)
        self.error_type = error_type
        self.transient = transient


class DeliveryError(PipepulseError):
    """An alert could not be delivered."""
