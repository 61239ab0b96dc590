"""Deliver a rendered digest by SMTP or Amazon SES.

``build_message`` makes one MIME message: ``multipart/alternative`` with the plain-text part
and a ``multipart/related`` HTML part that carries the chart as a ``cid:`` image. Both channels
send those exact bytes (SES through ``send_raw_email``, the only SES call that keeps both parts
and the inline image).

``deliver`` returns the recipients the server refused (the rest were accepted) or raises
``DeliveryError`` with a message that says what to fix. A send counts only once the server
accepted it; the caller records the outcome.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from alerts.render import Rendered
from alerts.rules import AlertConfig, SesConfig, SmtpConfig
from pipepulse.errors import DeliveryError

__all__ = ["build_message", "deliver", "send_ses", "send_smtp"]


def build_message(rendered: Rendered, *, sender: str, recipients: Sequence[str], now: datetime) -> EmailMessage:
    """The digest as one MIME message (text + HTML with inline images)."""
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "pipepulse.local"
    msg["Message-ID"] = make_msgid("digest", domain=domain)
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    html_part = msg.get_payload()[1]
    for cid, data in rendered.images.items():
        html_part.add_related(data, maintype="image", subtype="png", cid=f"<{cid}>", filename=cid.split("@")[0] + ".png")
    return msg


def _tls_context(cfg: SmtpConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if cfg.ca_file is not None:
        ctx.load_verify_locations(cafile=str(cfg.ca_file))
    return ctx


def send_smtp(msg: EmailMessage, cfg: SmtpConfig, recipients: Sequence[str]) -> list[str]:
    """Send by SMTP; returns the recipients the server refused. Raises DeliveryError."""
    where = f"{cfg.host}:{cfg.port}"
    by_addr = {parseaddr(r)[1]: r for r in recipients}
    addrs = list(by_addr)
    try:
        if cfg.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_seconds, context=_tls_context(cfg))
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
    except (ConnectionRefusedError, socket.gaierror, TimeoutError, OSError) as exc:
        if isinstance(exc, ssl.SSLError):
            raise DeliveryError(f"TLS with the SMTP server {where} failed: {exc}; check [alerts.smtp] security and ca_file") from exc
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise DeliveryError(
            f"cannot reach the SMTP server {where}: {reason}; check [alerts.smtp] host and port and that the server is up"
        ) from exc
    try:
        with client:
            client.ehlo()
            if cfg.security == "starttls":
                if not client.has_extn("starttls"):
                    raise DeliveryError(
                        f"the SMTP server {where} does not offer STARTTLS; set [alerts.smtp] security = \"ssl\" "
                        "(implicit TLS, usually port 465) or \"none\" on a trusted network"
                    )
                client.starttls(context=_tls_context(cfg))
                client.ehlo()
            if cfg.username:
                if cfg.security == "none":  # the config refuses this too; never log in over plain text
                    raise DeliveryError(f"refusing to send the SMTP password to {where} in clear text; set [alerts.smtp] security")
                client.login(cfg.username, cfg.password or "")
            refused = client.send_message(msg, to_addrs=addrs)
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(
            f"the SMTP server {where} refused the login for user {cfg.username!r} ({exc.smtp_code} "
            f"{_text(exc.smtp_error)}); check [alerts.smtp] username and the password"
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryError(f"the SMTP server {where} does not support {exc}; check [alerts.smtp] security and username") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        detail = "; ".join(f"{r}: {c} {_text(m)}" for r, (c, m) in exc.recipients.items())
        raise DeliveryError(f"the SMTP server {where} refused every recipient ({detail})") from exc
    except smtplib.SMTPSenderRefused as exc:
        raise DeliveryError(
            f"the SMTP server {where} refused the sender {exc.sender} ({exc.smtp_code} {_text(exc.smtp_error)}); "
            "check [alerts] sender"
        ) from exc
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"the SMTP server {where} refused the message: {exc.smtp_code} {_text(exc.smtp_error)}") from exc
    except ssl.SSLError as exc:
        raise DeliveryError(f"TLS with the SMTP server {where} failed: {exc}; check [alerts.smtp] security and ca_file") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"sending through the SMTP server {where} failed: {exc}") from exc
    return sorted(by_addr.get(a, a) for a in refused)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def send_ses(msg: EmailMessage, cfg: SesConfig, sender: str, recipients: Sequence[str]) -> list[str]:
    """Send through SES ``send_raw_email``; returns [] (SES accepts or rejects the whole message)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("ses", region_name=cfg.region)
    kwargs = {
        "Source": parseaddr(sender)[1],
        "Destinations": [parseaddr(r)[1] for r in recipients],
        "RawMessage": {"Data": msg.as_bytes()},
    }
    if cfg.configuration_set:
        kwargs["ConfigurationSetName"] = cfg.configuration_set
    try:
        client.send_raw_email(**kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if code == "MessageRejected":
            raise DeliveryError(
                f"SES ({cfg.region}) rejected the message from {kwargs['Source']}: {message}. Verify the sender "
                f"identity first: `aws ses verify-email-identity --email-address {kwargs['Source']} --region {cfg.region}` "
                "(or verify its domain), and while the account is in the SES sandbox verify the recipients too"
            ) from exc
        if code in {"AccessDenied", "AccessDeniedException"}:
            raise DeliveryError(f"SES ({cfg.region}) denied sending: {message}; grant ses:SendRawEmail to pipepulse's role") from exc
        raise DeliveryError(f"SES ({cfg.region}) refused the message: {code} {message}") from exc
    except BotoCoreError as exc:
        raise DeliveryError(f"cannot reach SES in {cfg.region}: {exc}") from exc
    return []


def deliver(msg: EmailMessage, config: AlertConfig, recipients: Sequence[str]) -> list[str]:
    """Send ``msg`` through the configured channel; returns refused recipients."""
    if config.channel == "ses":
        return send_ses(msg, config.ses, config.sender, recipients)
    return send_smtp(msg, config.smtp, recipients)
