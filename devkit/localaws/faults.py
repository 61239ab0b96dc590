"""An HTTP fault injector in front of moto: throttling, 5xx and slow answers, per operation.

moto has no fault injection, so this WSGI middleware sits on the same port. Rules are set in
process (``injector.add(...)``) or over HTTP::

    POST   /pipepulse-api/faults  {"service": "states", "operation": "ListExecutions",
                                   "code": "ThrottlingException", "status": 400, "times": 2,
                                   "delay_seconds": 0}
    GET    /pipepulse-api/faults  the rules with how often each fired, and the faulted requests
    DELETE /pipepulse-api/faults  remove every rule

A request matches a rule when the service (SigV4 credential scope name, e.g. ``states``,
``glue``, ``monitoring``, ``logs``, ``ce``, ``s3``; ``stepfunctions`` and ``cloudwatch`` are
accepted as aliases) and the operation agree (``None`` matches anything). The operation comes
from ``X-Amz-Target`` (JSON protocols), the ``/operation/NAME`` path (smithy-rpc-v2-cbor, which
botocore >= 1.40 speaks to CloudWatch), ``Action=`` (query protocol), else ``"METHOD /path"``
(REST; a rule's operation ``"GET /bucket"`` matches by prefix). A rule lets its first ``after``
matching requests through, then fires ``times`` times
(``-1``: always), first sleeping ``delay_seconds``, then, when it has a ``code``, answering in
the protocol's own error encoding so botocore reads the code: JSON ``__type``, CBOR ``__type``,
query XML ``ErrorResponse``, S3 XML ``Error``, rest-json ``x-amzn-ErrorType``. A rule with no
code only slows the answer down (for timeouts). A rule with ``"body": "truncated"`` or
``"body": "malformed"`` (and no code) lets the real answer through with status 200 but cuts its
body in half, or replaces it with an HTML error page: what a dropped connection or a confused
proxy delivers, and what botocore parses into ``{}`` without raising.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs

__all__ = ["FaultInjector", "FaultRule", "cbor_encode"]

API_PATH = "/pipepulse-api/faults"
ALIASES = {"stepfunctions": "states", "cloudwatch": "monitoring", "sfn": "states"}
_CREDENTIAL = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
BODY_FAULTS = frozenset({"truncated", "malformed"})
_STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests", 500: "Internal Server Error",
                502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass
class FaultRule:
    """One fault: which requests, what answer, how many times."""

    service: str | None = None
    operation: str | None = None
    code: str | None = "ThrottlingException"
    status: int = 400
    times: int = 1  # -1: every matching request
    delay_seconds: float = 0.0
    message: str = "Rate exceeded (injected by pipepulse)"
    body: str | None = None  # "truncated" | "malformed": spoil a 200 answer's body (code must be None)
    after: int = 0  # let this many matching requests through first (e.g. 1: fault page 2 on)
    hits: int = 0
    passed: int = 0  # matching requests let through because of ``after``

    def __post_init__(self) -> None:
        if self.service:
            self.service = ALIASES.get(self.service, self.service)
        if self.body is not None and (self.body not in BODY_FAULTS or self.code):
            raise ValueError(f"body: expected one of {sorted(BODY_FAULTS)} with code null, got {self.body!r}")

    def matches(self, service: str, operation: str) -> bool:
        if self.times != -1 and self.hits >= self.times:
            return False
        if self.service and self.service != service:
            return False
        if self.operation:
            if " " in self.operation:
                return operation.startswith(self.operation)
            return self.operation == operation
        return True

    def fires(self, service: str, operation: str) -> bool:
        """Whether this request gets the fault (counts ``hits``; lets ``after`` requests through first)."""
        if not self.matches(service, operation):
            return False
        if self.passed < self.after:
            self.passed += 1
            return False
        self.hits += 1
        return True


def cbor_encode(value: Any) -> bytes:
    """The CBOR encoding of str/int/bool/None/list/dict values (enough for an error body)."""

    def head(major: int, n: int) -> bytes:
        if n < 24:
            return bytes([major << 5 | n])
        for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
        raise ValueError("integer too large for CBOR")

    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, int):
        return head(0, value) if value >= 0 else head(1, -1 - value)
    if isinstance(value, str):
        raw = value.encode()
        return head(3, len(raw)) + raw
    if isinstance(value, bytes):
        return head(2, len(value)) + value
    if isinstance(value, list | tuple):
        return head(4, len(value)) + b"".join(cbor_encode(v) for v in value)
    if isinstance(value, dict):
        return head(5, len(value)) + b"".join(cbor_encode(k) + cbor_encode(v) for k, v in value.items())
    raise TypeError(f"cannot CBOR-encode {type(value).__name__}")


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class FaultInjector:
    """WSGI middleware answering matching requests with injected faults."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self.faulted: list[dict[str, Any]] = []  # requests that a rule answered or delayed

    @classmethod
    def middleware(cls, next_app: Callable[..., Any]) -> FaultInjector:
        return cls(next_app)

    # ---- rules ---------------------------------------------------------------------------------
    def add(self, **fields: Any) -> FaultRule:
        """Add a rule (fields of ``FaultRule``); returns it, so a test can read ``hits``."""
        rule = FaultRule(**fields)
        with self._lock:
            self._rules.append(rule)
        return rule

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def reset(self) -> None:
        with self._lock:
            self._rules.clear()
            self.faulted.clear()

    # ---- WSGI ----------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(API_PATH):
            return self._api(environ, start_response)
        if not self._rules:
            return self.app(environ, start_response)
        service, operation, protocol = self.identify(environ)
        with self._lock:
            rule = next((r for r in self._rules if r.fires(service, operation)), None)
            if rule is not None:
                self.faulted.append({"service": service, "operation": operation, "code": rule.code, "status": rule.status})
        if rule is None:
            return self.app(environ, start_response)
        if rule.delay_seconds:
            time.sleep(rule.delay_seconds)
        if rule.body:
            return self._spoil(environ, start_response, rule.body)
        if not rule.code:
            return self.app(environ, start_response)
        return self._error(start_response, protocol, rule)

    def identify(self, environ: dict[str, Any]) -> tuple[str, str, str]:
        """(service, operation, protocol) of a request; buffers the body so moto can still read it."""
        auth = environ.get("HTTP_AUTHORIZATION", "") or environ.get("QUERY_STRING", "").replace("X-Amz-Credential=", "Credential=")
        found = _CREDENTIAL.search(auth.replace("%2F", "/"))
        service = found.group(1) if found else ""
        path = environ.get("PATH_INFO", "")
        target = environ.get("HTTP_X_AMZ_TARGET")
        if "/operation/" in path or environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
            return service, path.rsplit("/operation/", 1)[-1], "cbor"
        if target:
            return service, target.rsplit(".", 1)[-1], "json"
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if "Action" in query:
            return service, query["Action"][0], "query"
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            body = self._buffer(environ)
            form = parse_qs(body.decode("utf-8", "replace"))
            if "Action" in form:
                return service, form["Action"][0], "query"
        protocol = "rest-xml" if service == "s3" else "rest-json"
        return service, f"{environ.get('REQUEST_METHOD', 'GET')} {path}", protocol

    @staticmethod
    def _buffer(environ: dict[str, Any]) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        return body

    def _spoil(self, environ: dict[str, Any], start_response: Callable[..., Any], how: str) -> list[bytes]:
        """The real answer with its body cut in half or replaced by an HTML page, still 200."""
        seen: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            seen["status"], seen["headers"] = status, headers
            return lambda _data: None

        chunks = self.app(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if how == "truncated":
            body = body[: len(body) // 2]
        else:
            body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        headers = [(k, v) for k, v in seen["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(seen["status"], headers)
        return [body]

    def _error(self, start_response: Callable[..., Any], protocol: str, rule: FaultRule) -> list[bytes]:
        request_id = str(uuid.uuid4())
        code, message = rule.code or "", rule.message
        headers = [("x-amzn-RequestId", request_id)]
        if protocol == "cbor":
            body = cbor_encode({"__type": code, "message": message})
            headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        elif protocol == "json":
            body = json.dumps({"__type": code, "message": message}).encode()
            headers += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
        elif protocol == "query":
            kind = "Receiver" if rule.status >= 500 else "Sender"
            body = (
                f"<ErrorResponse><Error><Type>{kind}</Type><Code>{_xml(code)}</Code><Message>{_xml(message)}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
            headers += [("Content-Type", "text/xml")]
        elif protocol == "rest-xml":
            body = f"<Error><Code>{_xml(code)}</Code><Message>{_xml(message)}</Message><RequestId>{request_id}</RequestId></Error>".encode()
            headers += [("Content-Type", "application/xml")]
        else:
            body = json.dumps({"message": message}).encode()
            headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{rule.status} {_STATUS_TEXT.get(rule.status, 'Error')}", headers)
        return [body]

    def _api(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        status = "200 OK"
        if method == "POST":
            try:
                data = json.loads(self._buffer(environ) or b"{}")
                items = data if isinstance(data, list) else [data]
                known = set(FaultRule.__dataclass_fields__) - {"hits", "passed"}
                for item in items:
                    unknown = set(item) - known
                    if unknown:
                        raise ValueError(f"unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
                    self.add(**item)
            except (ValueError, TypeError) as exc:
                body = json.dumps({"error": str(exc)}).encode()
                start_response("400 Bad Request", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                return [body]
        elif method == "DELETE":
            self.reset()
        payload = {"rules": [asdict(r) for r in self.rules], "faulted": list(self.faulted)}
        body = json.dumps(payload).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
