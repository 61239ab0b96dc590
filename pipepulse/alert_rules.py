"""``[[alerts.rules]]``: what each rule may say, checked when the config file is read.

``load_settings`` parses the rules here so that a bad kind, frequency, severity or recipient
stops every command at start-up (``pipepulse schedule`` included), not the first digest hours
later; ``alerts.rules`` builds the rest of ``[alerts]`` and re-exports these names. Standard
library only: every command reads the config, so this must not slow ``pipepulse --help``.

Extend with a new kind: add it to ``KINDS`` (with its options in ``_KIND_OPTIONS``) and a fetch
function in ``alerts.collect``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from typing import Any

from pipepulse.errors import ConfigError
from pipepulse.settings import check_keys, opt, require_table
from pipepulse.vocab import SEVERITIES

__all__ = ["FREQUENCIES", "KINDS", "Rule", "parse_rules", "validate_address"]

KINDS = ("failed_runs", "freshness", "success_rate", "anomalies", "budget", "collector_failing")
FREQUENCIES = ("immediate", "daily", "weekly")

_COMMON = {"name", "kind", "recipients", "frequency", "pipelines", "suppression_hours"}
_KIND_OPTIONS = {
    "failed_runs": set(),
    "freshness": set(),
    "success_rate": {"threshold", "window_hours"},
    "anomalies": {"min_severity"},
    "budget": {"tolerance"},
    "collector_failing": {"min_failures"},
}
# Deliberately simple: one @, no spaces or brackets, a dot in the domain. SMTP servers judge the rest.
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+\.[A-Za-z0-9-]{2,}$")


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One alert rule: what to watch, for whom, how often."""

    name: str
    kind: str
    recipients: tuple[str, ...]
    frequency: str = "daily"
    pipelines: tuple[str, ...] = ()  # empty: every pipeline
    suppression: timedelta | None = None  # None: the [alerts] default
    threshold: float = 0.95  # success_rate: alert below this share of finished runs
    window: timedelta = timedelta(hours=24)  # success_rate: look-back window
    min_severity: str = "medium"  # anomalies
    tolerance: float = 0.0  # budget: alert when month-end mean > budget x (1 + tolerance)
    min_failures: int = 1  # collector_failing: consecutive failed passes before alerting

    def covers(self, pipeline: str | None) -> bool:
        """Whether an item about ``pipeline`` falls under this rule's pipeline filter."""
        return not self.pipelines or pipeline is None or pipeline in self.pipelines



def validate_address(value: Any, context: str) -> str:
    """``value`` if it is one email address (``a@b.org`` or ``Name <a@b.org>``), else ConfigError.

    ``context`` says where the value came from (file and key) and starts the error message.
    """
    if isinstance(value, str):
        _, addr = parseaddr(value)
        if addr and _ADDRESS.match(addr) and ("<" in value) == (">" in value):
            return value.strip()
    raise ConfigError(
        f"{context}: {value!r} is not an email address (expected e.g. oncall@example.com "
        'or "On-call <oncall@example.com>")'
    )



def _recipient(value: Any, label: str, name: str, notify: Mapping[str, Any]) -> str:
    """An email address, or ``"slack:<name>"`` / ``"webhook:<name>"`` naming a ``[notify.<name>]``."""
    if isinstance(value, str) and value.split(":", 1)[0] in ("slack", "webhook"):
        kind, _, target = value.partition(":")
        declared = notify.get(target)
        if declared is None or declared.kind != kind:
            known = ", ".join(f"{t.kind}:{n}" for n, t in notify.items()) or "none declared"
            raise ConfigError(f"{label}: [[alerts.rules]] {name!r} recipients: {value!r} names no [notify.{target}] "
                              f"with kind = \"{kind}\" (known: {known})")
        return value
    return validate_address(value, f"{label}: [[alerts.rules]] {name!r} recipients")


def parse_rules(value: Any, label: str, notify: Mapping[str, Any] | None = None) -> tuple[Rule, ...]:
    """The ``[[alerts.rules]]`` array ``value``, checked; every error names ``label`` (the file), the rule and the key."""
    if not isinstance(value, list):
        raise ConfigError(f"{label}: alerts.rules must be an array of tables ([[alerts.rules]]), got {type(value).__name__}")
    out: list[Rule] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        item = require_table(item, label, f"alerts.rules #{i + 1}")
        name = opt(item, "name", str, label, f"alerts.rules #{i + 1}")
        if not name:
            raise ConfigError(f"{label}: [[alerts.rules]] #{i + 1}: name is required")
        if name in seen:
            raise ConfigError(f"{label}: [[alerts.rules]] {name!r} is defined twice")
        seen.add(name)
        where = f"alerts.rules {name}"
        kind = opt(item, "kind", str, label, where)
        if kind not in KINDS:
            raise ConfigError(
                f"{label}: [[alerts.rules]] {name!r}: unknown kind {kind!r}; expected one of {', '.join(KINDS)}"
            )
        check_keys(item, where, label, known=_COMMON | _KIND_OPTIONS[kind])
        recipients = item.get("recipients")
        if isinstance(recipients, str):
            recipients = [recipients]
        if not isinstance(recipients, list) or not recipients:
            raise ConfigError(f"{label}: [{where}] recipients: expected a list of email addresses, got {recipients!r}")
        addresses = tuple(_recipient(r, label, name, notify or {}) for r in recipients)
        frequency = opt(item, "frequency", str, label, where, default="daily")
        if frequency not in FREQUENCIES:
            raise ConfigError(f"{label}: [{where}] frequency: expected immediate, daily or weekly, got {frequency!r}")
        pipelines = item.get("pipelines", [])
        if not isinstance(pipelines, list) or not all(isinstance(p, str) for p in pipelines):
            raise ConfigError(f"{label}: [{where}] pipelines: expected a list of pipeline names, got {pipelines!r}")
        kw: dict[str, Any] = {}
        if "suppression_hours" in item:
            hours = opt(item, "suppression_hours", (int, float), label, where)
            if hours < 0:
                raise ConfigError(f"{label}: [{where}] suppression_hours: expected zero or more hours, got {hours}")
            kw["suppression"] = timedelta(hours=hours)
        if kind == "success_rate":
            threshold = opt(item, "threshold", (int, float), label, where, default=0.95)
            if not 0 < threshold <= 1:
                raise ConfigError(f"{label}: [{where}] threshold: expected a share between 0 and 1 (0.95 = 95%), got {threshold}")
            window = opt(item, "window_hours", (int, float), label, where, default=24)
            if window <= 0:
                raise ConfigError(f"{label}: [{where}] window_hours: expected a positive number, got {window}")
            kw.update(threshold=float(threshold), window=timedelta(hours=window))
        elif kind == "anomalies":
            sev = opt(item, "min_severity", str, label, where, default="medium")
            if sev not in SEVERITIES:
                raise ConfigError(f"{label}: [{where}] min_severity: expected one of {', '.join(SEVERITIES)}, got {sev!r}")
            kw["min_severity"] = sev
        elif kind == "budget":
            tol = opt(item, "tolerance", (int, float), label, where, default=0.0)
            if tol < 0:
                raise ConfigError(f"{label}: [{where}] tolerance: expected zero or more (0.05 = 5% over), got {tol}")
            kw["tolerance"] = float(tol)
        elif kind == "collector_failing":
            n = opt(item, "min_failures", int, label, where, default=1)
            if n < 1:
                raise ConfigError(f"{label}: [{where}] min_failures: expected 1 or more, got {n}")
            kw["min_failures"] = n
        out.append(
            Rule(name=name, kind=kind, recipients=addresses, frequency=frequency, pipelines=tuple(pipelines), **kw)
        )
    return tuple(out)
