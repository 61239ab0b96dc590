"""Helpers and fixtures for the digest tests: a real SMTP server in this process, realistic store rows, settings.

``smtp_server`` is an aiosmtpd server on a free port whose handler records every message and can
be told to refuse DATA (``refuse_data``) or some recipients (``refuse_rcpt``). ``tls_server`` adds
STARTTLS with a self-signed certificate made here, and LOGIN/PLAIN auth; ``ssl_server`` speaks
implicit TLS. ``seed`` writes a day of runs, anomalies, costs, a forecast and collector passes.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from servers import free_port

from devkit.digest_example import anomaly_row, collector_pass, rules_toml, run_row
from pipepulse.settings import load_settings
from pipepulse.vocab import FAILED, SUCCEEDED, TIMED_OUT
from store.forecasts import save_forecast
from store.schema import anomalies, collector_runs, cost_daily, runs

# aiosmtpd logs connection chatter at INFO from its own thread, sometimes after a test's log
# capture has closed; only its warnings matter here.
logging.getLogger("mail.log").setLevel(logging.WARNING)

DASH = "http://dash.test"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
USER, PASSWORD = "pipepulse", "s3cret-pw"


@dataclass
class Recorder:
    """aiosmtpd handler: keeps what arrives; refuses when told to."""

    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    refuse_data: str | None = None  # e.g. "554 5.7.1 Message rejected"
    refuse_rcpt: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse_rcpt:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.refuse_data:
            return self.refuse_data
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.original_content, policy=email.policy.default)))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    recorder: Recorder
    cert: Path | None = None


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # False: let aiosmtpd answer 535


def _start(recorder: Recorder, **kwargs) -> tuple[Controller, int]:
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller, port


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """Plain SMTP, no auth."""
    recorder = Recorder()
    controller, port = _start(recorder)
    yield SmtpServer("127.0.0.1", port, recorder)
    controller.stop()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and localhost), made with ``cryptography``."""
    return make_cert(tmp_path_factory.mktemp("tls"))


def make_cert(folder: Path) -> tuple[Path, Path]:
    """Write ``cert.pem`` and ``key.pem`` (self-signed, 127.0.0.1 and localhost) into ``folder``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _server_context(tls_cert) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(tls_cert[0]), str(tls_cert[1]))
    return ctx


@pytest.fixture
def tls_server(tls_cert) -> Iterator[SmtpServer]:
    """STARTTLS required, then AUTH (user ``pipepulse``)."""
    recorder = Recorder()
    controller, port = _start(
        recorder,
        tls_context=_server_context(tls_cert),
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    )
    yield SmtpServer("127.0.0.1", port, recorder, cert=tls_cert[0])
    controller.stop()


@pytest.fixture
def ssl_server(tls_cert) -> Iterator[SmtpServer]:
    """Implicit TLS (like port 465), then AUTH."""
    recorder = Recorder()
    controller, port = _start(
        recorder,
        ssl_context=_server_context(tls_cert),
        authenticator=_authenticator,
        auth_required=True,
        auth_require_tls=False,  # the whole connection is TLS; aiosmtpd only counts STARTTLS (and warns)
    )
    yield SmtpServer("127.0.0.1", port, recorder, cert=tls_cert[0])
    controller.stop()


# ---- settings ------------------------------------------------------------------------------------

PIPELINES = """
[[pipelines]]
name = "orders"
schedule = "0 * * * *"
freshness_sla_minutes = 90

[[pipelines]]
name = "finance_daily"
schedule = "0 6 * * *"
freshness_sla_minutes = 60
"""

RULES = rules_toml("oncall@example.com")  # one rule of each kind


def smtp_alerts(server: SmtpServer | None, *, security: str = "none", port: int | None = None, extra: str = "", auth: bool = False) -> str:
    lines = [
        "[alerts]",
        'channel = "smtp"',
        'sender = "pipepulse <alerts@pipepulse.test>"',
        "suppression_hours = 24",
        extra,
        "[alerts.smtp]",
        'host = "127.0.0.1"',
        f"port = {port if port is not None else server.port}",
        f'security = "{security}"',
        "timeout_seconds = 5",
    ]
    if server is not None and server.cert is not None:
        lines.append(f'ca_file = "{server.cert}"')
    if auth:
        lines.append(f'username = "{USER}"')
    return "\n".join(lines)


def make_settings(tmp_path: Path, db_url: str, alerts_toml: str, *, rules: str = RULES, budget: float | None = 2600.0):
    text = f'[pipepulse]\ndashboard_url = "{DASH}"\n'
    if budget is not None:
        text += f"[budgets]\nmonthly = {budget}\n"
    text += PIPELINES + "\n" + alerts_toml + "\n" + rules
    path = tmp_path / "pipepulse.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings({"PIPEPULSE_DATABASE_URL": db_url}, config_path=path)


# ---- data ----------------------------------------------------------------------------------------

SCRIPT_ERROR = "<script>alert('x')</script> KeyError: 'customer_id' & more"


def seed(engine: sa.Engine, now: datetime = NOW) -> None:
    """A day of the orders pipeline (2 failures), a missed finance run, anomalies, costs, a forecast."""
    rows = []
    # 11-19 12:00 .. 11-21 11:00: runs after ``now`` are there for later passes (the clock moves on)
    for h in range(48):
        slot = now - timedelta(hours=24 - h)
        status, etype, msg = SUCCEEDED, None, None
        if slot.hour == 3 and slot.day == 20:
            status, etype, msg = FAILED, "TransformError", SCRIPT_ERROR
        if slot.hour == 7 and slot.day == 20:
            status, etype, msg = TIMED_OUT, "Timeout", "stage load ran past 900 s"
        rid = f"reference:orders-{slot:%m%d%H}"
        rows.append(_run(rid, "orders", status, slot, etype, msg))
    rows.append(_run("reference:finance-111906", "finance_daily", SUCCEEDED, datetime(2026, 11, 19, 6, tzinfo=UTC), None, None))
    with engine.begin() as conn:
        conn.execute(runs.insert(), rows)
        conn.execute(
            anomalies.insert(),
            [
                _anomaly("a1cost", "cost", "Daily cost of Amazon S3 for orders", "high", "open",
                         observed=412.5, expected=130.0, lower=110.0, upper=150.0,
                         root_cause=json.dumps([
                             {"dimension": "usage_type", "value": "USE1-Requests-Tier1", "impact": 251.3},
                             {"dimension": "region", "value": "us-east-1", "impact": 31.2},
                         ])),
                _anomaly("a2dur", "duration", "orders run duration", "high", "acknowledged", observed=1800.0, expected=420.0),
                _anomaly("a3thr", "throughput", "clickstream records per minute", "medium", "snoozed",
                         observed=120.0, expected=950.0, snoozed_until=datetime(2026, 11, 22, tzinfo=UTC)),
                _anomaly("a4low", "metric", "orders rejected records", "low", "open", observed=12.0, expected=9.0),
            ],
        )
        conn.execute(
            cost_daily.insert(),
            [
                {"source": "focus", "day": dt.date(2026, 11, d), "provider": "AWS", "account": "123456789012",
                 "service": "AWS Glue", "region": "us-east-1", "usage_type": "", "pipeline": "orders",
                 "billed_cost": 80.0 + d, "effective_cost": 80.0 + d, "currency": "USD", "updated_at": now}
                for d in range(1, 20)
            ],
        )
        save_forecast(
            conn, created_at=now - timedelta(hours=6), method="pipepulse", subject="total", level=0.8,
            points=pd.DataFrame({"day": [dt.date(2026, 11, d) for d in range(20, 31)], "mean": [101.0] * 11,
                                 "lower": [90.0] * 11, "upper": [115.0] * 11}),
            month_end_mean=2912.0, month_end_lower=2790.0, month_end_upper=3050.0, budget=2600.0,
        )
        conn.execute(
            collector_runs.insert(),
            [
                collector_pass("ce", now - timedelta(hours=6), "succeeded", rows=40),
                collector_pass("ce", now - timedelta(hours=3), "failed", rows=0, error="ThrottlingException: Rate exceeded"),
                collector_pass("ce", now - timedelta(hours=2), "failed", rows=0, error="ThrottlingException: Rate exceeded"),
                collector_pass("reference", now - timedelta(hours=1), "succeeded", rows=3),
            ],
        )


def _run(run_id, pipeline, status, slot, etype, msg):
    return run_row(run_id, pipeline, status=status, queued=slot, started=slot + timedelta(minutes=1),
                   ended=slot + timedelta(minutes=10), error_type=etype, error_message=msg, cost_usd=0.4)


def _anomaly(fp, kind, subject, severity, status, *, observed, expected, lower=None, upper=None, root_cause=None,
             snoozed_until=None):
    window = (NOW - timedelta(hours=8), NOW - timedelta(hours=2))
    return anomaly_row(
        fp, kind, subject, pipeline=subject.split()[0] if kind != "cost" else "orders", severity=severity, status=status,
        window=window, observed=observed, expected=expected, seen=window, lower=lower, upper=upper, score=0.9,
        snoozed_until=snoozed_until, status_at=NOW - timedelta(hours=1) if status != "open" else None,
        root_cause=root_cause, detector="test",
    )


@pytest.fixture
def seeded(engine):
    seed(engine)
    return engine


def parts(msg: Message) -> dict[str, list[Message]]:
    out: dict[str, list[Message]] = {}
    for p in msg.walk():
        out.setdefault(p.get_content_type(), []).append(p)
    return out


def body(msg: Message, ctype: str) -> str:
    part = parts(msg)[ctype][0]
    return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
