"""An STS AssumeRole stand-in: a role that does not exist, or whose trust policy asks for another
external id, cannot be assumed.

moto's ``AssumeRole`` hands out credentials for any ARN (its docstring: "the role does not need
to exist"), so a collector's failing account could never be tested. This WSGI middleware looks
at every ``AssumeRole`` request (query protocol) before moto answers it, and refuses, as AWS
does with HTTP 403 ``AccessDenied`` ("User: ... is not authorized to perform: sts:AssumeRole on
resource: <role>"), when

- the role ARN names no role in that account's IAM (moto's IAM backend of the ARN's account), or
- the role's trust policy allows ``sts:AssumeRole`` in no statement, or its allowing statement
  has an ``sts:ExternalId`` condition (``StringEquals``) that the request's ``ExternalId`` does
  not meet.

Limits, plainly: the trust policy's ``Principal`` is not compared with the caller, and Deny
statements and other condition keys are ignored. Every other request goes to moto, and an
allowed AssumeRole is moto's answer (its credentials map to the ARN's account in moto).

Roles are created in a member account with ``create_role`` (moto's IAM backend, in process):
creating them over HTTP would first need credentials of that account.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

__all__ = ["StsStandIn", "create_role", "trust_policy"]

CALLER = "arn:aws:iam::123456789012:user/moto"  # moto's default identity, for the message


def trust_policy(*, principal: str = "arn:aws:iam::123456789012:root", external_id: str | None = None) -> str:
    """A trust policy letting ``principal`` assume the role (with ``external_id`` when given)."""
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    if external_id is not None:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def create_role(account_id: str, name: str, *, external_id: str | None = None) -> str:
    """Create role ``name`` in ``account_id`` (moto, in process); returns its ARN."""
    from moto.iam.models import iam_backends

    backend = iam_backends[account_id]["global"]
    for existing in backend.roles.values():  # again (a second seed of the same local AWS): new trust
        if existing.name == name:
            existing.assume_role_policy_document = trust_policy(external_id=external_id)
            return str(existing.arn)
    role = backend.create_role(
        role_name=name, assume_role_policy_document=trust_policy(external_id=external_id), path="/",
        permissions_boundary=None, description="pipepulse collector role", tags=[], max_session_duration="3600",
    )
    return str(role.arn)


def _find_role(arn: str) -> Any | None:
    from moto.iam.models import iam_backends

    parts = arn.split(":")
    if len(parts) < 6 or not parts[4].isdigit():
        return None
    backend = iam_backends[parts[4]]["global"]
    return next((r for r in backend.roles.values() if r.arn == arn), None)


def _allows(policy_text: str, external_id: str | None) -> bool:
    """Whether the trust policy has an Allow of sts:AssumeRole whose ExternalId condition holds."""
    try:
        policy = json.loads(policy_text)
    except (TypeError, ValueError):
        return False
    statements = policy.get("Statement", [])
    for st in statements if isinstance(statements, list) else [statements]:
        actions = st.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if st.get("Effect") != "Allow" or not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        wanted = st.get("Condition", {}).get("StringEquals", {}).get("sts:ExternalId")
        if wanted is None or external_id == wanted or (isinstance(wanted, list) and external_id in wanted):
            return True
    return False


class StsStandIn:
    """WSGI middleware refusing AssumeRole to roles that do not exist or do not trust the caller."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.next_app = app
        self.denied: list[str] = []  # role ARNs refused, in order
        self._lock = threading.Lock()

    @classmethod
    def middleware(cls, next_app: Callable[..., Any]) -> StsStandIn:
        """Wrap ``next_app`` (moto); the signature ``LocalAWS`` expects of a middleware."""
        return cls(next_app)

    def reset(self) -> None:
        with self._lock:
            self.denied.clear()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or "/sts/aws4_request" not in environ.get("HTTP_AUTHORIZATION", ""):
            return self.next_app(environ, start_response)
        import io

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("Action") != "AssumeRole":
            return self.next_app(environ, start_response)
        arn = form.get("RoleArn", "")
        role = _find_role(arn)
        if role is not None and _allows(role.assume_role_policy_document, form.get("ExternalId")):
            return self.next_app(environ, start_response)
        with self._lock:
            self.denied.append(arn)
        message = f"User: {CALLER} is not authorized to perform: sts:AssumeRole on resource: {arn}"
        data = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            f"<Code>AccessDenied</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        ).encode()
        start_response("403 Forbidden", [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))])
        return [data]
