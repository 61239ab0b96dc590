"""Alert rules and delivery settings, parsed from the config file's ``[alerts]`` section.

Example::

    [alerts]
    channel = "smtp"                  # smtp | ses
    sender = "pipepulse <pipepulse@example.com>"
    suppression_hours = 24            # an item that changed is held back this long after its last send
    send_all_clear = false            # a short "all clear" when a period has nothing new

    [alerts.smtp]
    host = "smtp.example.com"
    port = 587
    security = "starttls"             # starttls | ssl | none
    username = "pipepulse"
    password_file = "/run/secrets/smtp_password"   # or password_env = "PIPEPULSE_SMTP_PASSWORD"

    [alerts.ses]
    region = "eu-west-1"              # default: [aws] region

    [[alerts.rules]]
    name = "pipeline failures"
    kind = "failed_runs"              # see KINDS
    recipients = ["oncall@example.com", "slack:oncall"]   # "slack:<n>" / "webhook:<n>": a [notify.<n>]
    frequency = "daily"               # immediate | daily | weekly
    pipelines = ["orders"]            # optional: only these pipelines

Kinds and their options (every rule also takes ``recipients``, ``frequency``, ``pipelines`` and
``suppression_hours``, which overrides the ``[alerts]`` one):

====================  ==========================================================================
kind                  reports
====================  ==========================================================================
failed_runs           runs that ended FAILED or TIMED_OUT in the period, with error and a link
freshness             pipelines late or missed against their schedule (``[[pipelines]]``)
success_rate          ``threshold`` (default 0.95) not met over ``window_hours`` (default 24)
anomalies             open anomalies (and snoozes that ended) at or above ``min_severity``
                      (low | medium | high | critical; default medium); acknowledged left out
budget                month-end forecast over the budget by more than ``tolerance`` (default 0)
collector_failing     a collector whose last ``min_failures`` (default 1) passes failed
====================  ==========================================================================

The SMTP password comes from ``password_file`` (a secrets file, first line), ``password_env``
(the name of a ``PIPEPULSE_*`` environment variable) or ``password``;
nothing here reads the environment (only ``pipepulse.settings`` does).

The rules themselves are parsed by ``pipepulse.alert_rules`` (re-exported here), already when the
config file is read. Extend with a new kind: add it to ``KINDS`` there (with its options in
``_KIND_OPTIONS``) and a fetch function in ``alerts.collect``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pipepulse.alert_rules import FREQUENCIES, KINDS, Rule, parse_rules, validate_address
from pipepulse.errors import ConfigError
from pipepulse.settings import Settings, check_keys, opt, require_table

__all__ = [
    "CHANNELS",
    "FREQUENCIES",
    "KINDS",
    "AlertConfig",
    "Rule",
    "SesConfig",
    "SmtpConfig",
    "load_alert_config",
    "validate_address",
]

CHANNELS = ("smtp", "ses")
SECURITY = ("starttls", "ssl", "none")


@dataclass(frozen=True, kw_only=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"  # starttls | ssl | none
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None  # trust this CA (PEM) besides the system's, e.g. a private relay
    timeout_seconds: float = 20.0


@dataclass(frozen=True, kw_only=True)
class SesConfig:
    region: str = "us-east-1"
    configuration_set: str | None = None


@dataclass(frozen=True, kw_only=True)
class AlertConfig:
    """The whole ``[alerts]`` section, validated."""

    channel: str = "smtp"
    sender: str = "pipepulse@localhost.localdomain"
    suppression: timedelta = timedelta(hours=24)
    send_all_clear: bool = False
    dashboard_url: str = "http://localhost:8501"
    currency: str = "USD"
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    ses: SesConfig = field(default_factory=SesConfig)
    rules: tuple[Rule, ...] = ()

    def rules_for(self, period: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.frequency == period)

    def suppression_for(self, rule: Rule) -> timedelta:
        return rule.suppression if rule.suppression is not None else self.suppression


def load_alert_config(settings: Settings) -> AlertConfig:
    """Parse and check ``[alerts]``; every error names the file, the rule and the key."""
    label = settings.config_label
    table = settings.section("alerts")
    check_keys(table, "alerts", label)

    channel = opt(table, "channel", str, label, "alerts", default="smtp")
    if channel not in CHANNELS:
        raise ConfigError(f"{label}: [alerts] channel: expected smtp or ses, got {channel!r}")
    sender = opt(table, "sender", str, label, "alerts", default="pipepulse@localhost.localdomain")
    sender = validate_address(sender, f"{label}: [alerts] sender")
    hours = opt(table, "suppression_hours", (int, float), label, "alerts", default=24)
    if hours < 0:
        raise ConfigError(f"{label}: [alerts] suppression_hours: expected zero or more hours, got {hours}")

    return AlertConfig(
        channel=channel,
        sender=sender,
        suppression=timedelta(hours=hours),
        send_all_clear=opt(table, "send_all_clear", bool, label, "alerts", default=False),
        dashboard_url=settings.dashboard_url.rstrip("/"),
        currency=settings.currency,
        smtp=_smtp(require_table(table.get("smtp", {}), label, "alerts.smtp"), label, settings),
        ses=_ses(require_table(table.get("ses", {}), label, "alerts.ses"), label, settings.aws_region),
        rules=parse_rules(table.get("rules", []), label, settings.notify),
    )


def _smtp(table: Mapping[str, Any], label: str, settings: Settings) -> SmtpConfig:
    where = "alerts.smtp"
    check_keys(table, where, label)
    security = opt(table, "security", str, label, where, default="starttls")
    if security not in SECURITY:
        raise ConfigError(f"{label}: [{where}] security: expected starttls, ssl or none, got {security!r}")
    port = opt(table, "port", int, label, where, default=465 if security == "ssl" else 587)
    if not 0 < port < 65536:
        raise ConfigError(f"{label}: [{where}] port: expected 1-65535, got {port}")
    password = opt(table, "password", str, label, where)
    password_file = opt(table, "password_file", str, label, where)
    password_env = opt(table, "password_env", str, label, where)
    if sum(v is not None for v in (password, password_file, password_env)) > 1:
        raise ConfigError(f"{label}: [{where}] give only one of password, password_file and password_env")
    if password_env is not None:
        password = settings.secret(password_env, where=f"[{where}] password_env")
    if password_file is not None:
        # A secrets file (Docker/Kubernetes secret, systemd credential) keeps the password out of
        # the config and out of the environment; a trailing newline is not part of it.
        try:
            password = Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{label}: [{where}] password_file: cannot read {password_file}: {exc.strerror}") from exc
    username = opt(table, "username", str, label, where)
    if security == "none" and username:
        raise ConfigError(
            f'{label}: [{where}] security = "none" with a username would send the password in clear text: '
            'use security = "starttls" (port 587) or "ssl" (port 465), or drop username for a relay that needs no login'
        )
    ca_file = opt(table, "ca_file", str, label, where)
    if ca_file is not None and not Path(ca_file).is_file():
        raise ConfigError(f"{label}: [{where}] ca_file: {ca_file} does not exist")
    timeout = opt(table, "timeout_seconds", (int, float), label, where, default=20)
    if timeout <= 0:
        raise ConfigError(f"{label}: [{where}] timeout_seconds: expected a positive number, got {timeout}")
    return SmtpConfig(
        host=opt(table, "host", str, label, where, default="localhost"),
        port=port,
        security=security,
        username=username,
        password=password,
        ca_file=Path(ca_file) if ca_file else None,
        timeout_seconds=float(timeout),
    )


def _ses(table: Mapping[str, Any], label: str, default_region: str) -> SesConfig:
    where = "alerts.ses"
    check_keys(table, where, label)
    return SesConfig(
        region=opt(table, "region", str, label, where, default=default_region),
        configuration_set=opt(table, "configuration_set", str, label, where),
    )
