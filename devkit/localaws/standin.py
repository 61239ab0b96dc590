"""What every stand-in of the local AWS shares: a WSGI middleware that answers some requests
itself and hands the rest to the next app (moto, or the next stand-in), with its state behind one
lock, forgotten by ``reset``."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any, Self

__all__ = ["StandIn", "json_answer", "read_body"]


def read_body(environ: dict[str, Any]) -> bytes:
    """The request's body (empty without a usable Content-Length)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length else b""


def json_answer(start_response: Callable[..., Any], status: int, payload: Any,
                content_type: str = "application/x-amz-json-1.0") -> list[bytes]:
    """A JSON answer as AWS's JSON protocols send it (with a request id)."""
    data = json.dumps(payload).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", content_type), ("Content-Length", str(len(data))),
                                          ("x-amzn-RequestId", hashlib.md5(data).hexdigest())])
    return [data]


class StandIn:
    control_prefix = ""  # where its control endpoints live (``/pipepulse-api/<name>/``)

    def __init__(self, next_app: Callable[..., Any]) -> None:
        self.next_app = next_app
        self._lock = threading.Lock()
        self.reset()

    @classmethod
    def middleware(cls, next_app: Callable[..., Any]) -> Self:
        """Wrap ``next_app`` (moto); the signature ``LocalAWS`` expects of a middleware."""
        return cls(next_app)

    def reset(self) -> None:
        """Forget what was loaded or recorded, and the request counts."""
        raise NotImplementedError

    def control(self, what: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to ``POST <control_prefix><what>`` with ``payload``, or None: no such endpoint.
        ``GET requests`` (the request counts) and ``POST reset`` are answered for every stand-in."""
        return None

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any], what: str) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if what == "requests" and method == "GET":
                return json_answer(start_response, 200, dict(getattr(self, "requests", {})))
            if method == "POST":
                payload = json.loads(read_body(environ) or b"{}")
                if what == "reset":
                    self.reset()
                    return json_answer(start_response, 200, {"ok": True})
                answer = self.control(what, payload)
                if answer is not None:
                    return json_answer(start_response, 200, answer)
        except (ValueError, KeyError, TypeError) as exc:
            return json_answer(start_response, 400, {"error": str(exc)})
        return json_answer(start_response, 404, {"error": f"no control endpoint {method} {self.control_prefix}{what}"})
