"""Which failures are worth retrying, and how long to wait between attempts: decided here only.

``is_transient(exc)`` is the rule for everything that talks to AWS (the collectors' clients in
``collectors/base.py``, the reference pipeline's stages in ``pipeline/dag.py``): throttling,
5xx and 429 answers, timeouts and dropped connections. Anything else (access denied, a bad
request, a missing resource) fails at once.

Backoff is exponential with jitter: before attempt ``n + 1`` wait a time drawn from
``[step * (1 - jitter), step]`` with ``step = min(cap, base * 2 ** (n - 1))``. The two policies
are module attributes so tests can replace them (``Backoff(0, 0)`` waits nothing):
``AWS_REQUESTS`` for one AWS request (``AWS_REQUEST_ATTEMPTS`` attempts in all) and
``PIPELINE_STAGES`` for a reference-pipeline stage (its attempts come from ``[pipeline]``).
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore import exceptions as bx

__all__ = [
    "AWS_REQUESTS",
    "AWS_REQUEST_ATTEMPTS",
    "BAD_CREDENTIAL_CODES",
    "DENIED_CODES",
    "PIPELINE_STAGES",
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "Backoff",
    "is_transient",
    "is_transient_answer",
]

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",  # Cost Explorer throttles with this
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
TRANSIENT_CODES = THROTTLING_CODES | frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
# Not transient, but worth naming: what to grant, or which credentials to fix.
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"})
BAD_CREDENTIAL_CODES = frozenset(
    {"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
     "SignatureDoesNotMatch", "InvalidSignatureException"}
)
_DROPPED = (
    TimeoutError,
    ConnectionError,
    bx.ConnectionError,  # EndpointConnectionError, ConnectTimeoutError
    bx.ReadTimeoutError,
    bx.ConnectionClosedError,
)


def is_transient_answer(code: str, status: int) -> bool:
    """Whether an AWS error answer (its error code and HTTP status) is worth retrying."""
    return code in TRANSIENT_CODES or status >= 500 or status == 429


def is_transient(exc: BaseException) -> bool:
    """Whether retrying may help: throttling, 5xx or 429 answers, timeouts, dropped connections."""
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return is_transient_answer(str(err.get("Code", "")), status)
    return isinstance(exc, _DROPPED)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter (see the module docstring)."""

    base: float  # seconds before the first retry; doubles with every attempt
    cap: float  # the longest single wait
    jitter: float = 0.5  # share of the step that is random

    def delay(self, attempt: int, draw: float) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based); ``draw`` is in [0, 1)."""
        step = min(self.cap, self.base * 2 ** (attempt - 1))
        return step * (1 - self.jitter) + draw * step * self.jitter


AWS_REQUESTS = Backoff(base=0.5, cap=20.0)
AWS_REQUEST_ATTEMPTS = 5  # attempts per AWS request, the first included
PIPELINE_STAGES = Backoff(base=2.0, cap=120.0)
