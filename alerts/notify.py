"""Slack and signed JSON webhook delivery: the chat-side twin of ``alerts.send`` (email).

An alert rule names a destination of ``[notify.<name>]`` as a recipient (``"slack:oncall"``,
``"webhook:pager"``), so the digest recipe treats it like an email address: the same items,
the same ``notifications`` ledger (an item at a version already sent to that recipient is never
sent again, whatever the channel), the same suppression. This module builds the two payloads
and posts them:

- **Slack** (incoming webhook): Block Kit, a header with the subject, one section per item with
  its dashboard link (the same links as the email), a button to the dashboard; ``text`` carries
  the subject for notifications and clients without blocks. At most ``MAX_SLACK_ITEMS`` items
  are listed (Slack allows 50 blocks); the rest are counted with a link to the dashboard.
- **Webhook**: JSON ``{"type": "pipepulse.alerts", "version": 1, "delivery", "period",
  "subject", "sent_at", "dashboard_url", "items": [...], "still_open": [...]}``, signed.

Signature (for receivers): the request carries ``X-Pipepulse-Timestamp`` (Unix seconds) and
``X-Pipepulse-Signature: v1=<hex>``, where ``<hex>`` is HMAC-SHA256 with the shared secret over
the bytes ``<timestamp>.<raw body>``. A receiver recomputes it over the raw body, compares in
constant time (``hmac.compare_digest``) and refuses timestamps older than five minutes (replays);
``verify_signature`` does exactly that. ``X-Pipepulse-Delivery`` is the same for every retry of
one message, so a receiver can drop a duplicate.

Retries: a 5xx or 429 answer, a timeout or a dropped connection is retried up to the target's
``attempts`` with ``BACKOFF`` (module attribute: tests set ``Backoff(0, 0)``); any other answer
fails at once. The attempts made are returned, and the digest keeps them.

Secrets (the URL, which for Slack *is* the credential, and the signing key) come from the
environment (``settings.secret``) or Secrets Manager, and never appear in a log line, an error
or the database: errors name the destination (``slack:oncall``), not its URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.collect import Item
from pipepulse.errors import ConfigError, DeliveryError
from pipepulse.retries import Backoff
from pipepulse.settings import NotifyTarget, Settings

__all__ = [
    "BACKOFF",
    "MAX_SLACK_ITEMS",
    "Posted",
    "post",
    "sign",
    "slack_payload",
    "target_for",
    "is_chat",
    "verify_signature",
    "webhook_payload",
]

log = logging.getLogger(__name__)

BACKOFF = Backoff(base=1.0, cap=30.0)
MAX_SLACK_ITEMS = 40
SIGNATURE_TOLERANCE_SECONDS = 300
_EMOJI = {"critical": ":red_circle:", "high": ":large_orange_circle:", "medium": ":large_yellow_circle:", "low": ":white_circle:"}


@dataclass(frozen=True)
class Posted:
    status: int
    attempts: int


def is_chat(recipient: str) -> bool:
    """Whether a rule's recipient is a Slack or webhook destination (not an email address)."""
    return recipient.partition(":")[0] in ("slack", "webhook") and ":" in recipient


def target_for(recipient: str, settings: Settings) -> NotifyTarget | None:
    """The ``[notify]`` destination a recipient names (``"slack:oncall"``), or None for an email address."""
    if not is_chat(recipient):
        return None
    kind, _, name = recipient.partition(":")
    target = settings.notify.get(name)
    if target is None or target.kind != kind:
        raise ConfigError(f"{settings.config_label}: recipient {recipient!r} names no [notify.{name}] with kind = \"{kind}\"")
    return target


# ---- payloads -------------------------------------------------------------------------------


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str, label: str) -> str:
    return f"<{url}|{_mrkdwn(label).replace('|', '/')}>"


def slack_payload(subject: str, items: Sequence[Item], *, dashboard_url: str, still_open: Sequence[Item] = ()) -> dict:
    """The message as Slack Block Kit (see the module docstring)."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": subject[:150]}}]
    shown = list(items)[:MAX_SLACK_ITEMS]
    for it in shown:
        pipeline = f" · {_mrkdwn(it.pipeline)}" if it.pipeline else ""
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            f"{_EMOJI.get(it.severity, '')} *{_link(it.link, it.title)}*\n{it.severity}{pipeline}").strip()}})
    notes = []
    if len(items) > len(shown):
        notes.append(f"{len(items) - len(shown)} more in the dashboard")
    if still_open:
        notes.append(f"{len(still_open)} anomal{'y' if len(still_open) == 1 else 'ies'} told before, still open")
    if not items:
        notes.append("nothing new")
    if notes:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn("; ".join(notes))}]})
    blocks.append({"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Open pipepulse"}, "url": dashboard_url}]})
    return {"text": subject, "blocks": blocks}


def _item_json(it: Item) -> dict:
    return {
        "rule": it.rule, "kind": it.kind, "key": it.key, "version": it.version, "severity": it.severity,
        "title": it.title, "link": it.link, "pipeline": it.pipeline, "at": it.at.isoformat() if it.at else None,
        "fields": dict(it.fields),
    }


def webhook_payload(
    subject: str, items: Sequence[Item], *, delivery: str, period: str, now: datetime, dashboard_url: str,
    still_open: Sequence[Item] = (),
) -> dict:
    """The message as the generic webhook's JSON (see the module docstring)."""
    return {
        "type": "pipepulse.alerts", "version": 1, "delivery": delivery, "period": period, "subject": subject,
        "sent_at": now.isoformat(), "dashboard_url": dashboard_url,
        "items": [_item_json(i) for i in items], "still_open": [i.key for i in still_open],
    }


# ---- signing --------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256 over "<timestamp>.<body>">``: the ``X-Pipepulse-Signature`` value."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> bool:
    """What a receiver does: the signature matches and the timestamp is at most five minutes old."""
    try:
        ts = int(headers["X-Pipepulse-Timestamp"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(sign(secret, ts, body), headers.get("X-Pipepulse-Signature", ""))


# ---- secrets and posting --------------------------------------------------------------------


def _secret(settings: Settings, env: str | None, secret_id: str | None, what: str) -> str:
    if env:
        return settings.secret(env, where=what)
    assert secret_id
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = boto3.client("secretsmanager", region_name=settings.aws_region).get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise DeliveryError(f"{what}: Secrets Manager refused secret {secret_id}: {code}; check the id and grant "
                            "secretsmanager:GetSecretValue on it") from None
    except BotoCoreError as exc:
        raise DeliveryError(f"{what}: cannot reach Secrets Manager: {type(exc).__name__}") from None
    value = answer.get("SecretString")
    if not value:
        raise DeliveryError(f"{what}: secret {secret_id} has no SecretString")
    return value.strip()


def post(target: NotifyTarget, payload: dict, settings: Settings, *, delivery: str) -> Posted:
    """POST ``payload`` to the target (signed for a webhook), retrying transient failures.

    Raises DeliveryError naming the target (never its URL) when every attempt failed or the
    receiver refused the message."""
    where = f"[notify.{target.name}]"
    url = target.url or _secret(settings, target.url_env, target.url_secret, f"{where} url")
    if not url.startswith(("https://", "http://")):
        raise DeliveryError(f"{target.address}: the URL from {where} is not an http(s) URL")
    body = json.dumps(payload, default=str, separators=(",", ":")).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": "pipepulse", "X-Pipepulse-Delivery": delivery}
    key = None
    if target.kind == "webhook":
        key = _secret(settings, target.signing_secret_env, target.signing_secret_secret, f"{where} signing secret")
    last = ""
    for attempt in range(1, target.attempts + 1):
        if key is not None:  # the wall clock (the receiver's reference), fresh per try: a late retry is no replay
            ts = int(time.time())
            headers.update({"X-Pipepulse-Timestamp": str(ts), "X-Pipepulse-Signature": sign(key, ts, body)})
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=target.timeout_seconds) as answer:  # noqa: S310 - http(s) checked above
                return Posted(answer.status, attempt)
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code} {exc.reason}"
            if exc.code < 500 and exc.code != 429:
                raise DeliveryError(f"{target.address} refused the message: {last}; check {where}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"{type(reason).__name__}: {getattr(reason, 'strerror', None) or 'no answer'}"
        if attempt < target.attempts:
            wait = BACKOFF.delay(attempt, random.random())
            log.warning("%s: attempt %d failed (%s); retrying in %.1f s", target.address, attempt, last, wait)
            time.sleep(wait)
    raise DeliveryError(f"{target.address}: no attempt of {target.attempts} got through (last: {last})")
