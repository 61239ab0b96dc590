"""Alert email digests: rules from ``[alerts]``, items from the store, one message per recipient.

Modules, in the order a pass uses them:

- ``alerts.rules``: parse and validate the ``[alerts]`` config section (rules, delivery).
- ``alerts.collect``: what each rule finds (``Item``) and the health/spend ``Context``.
- ``alerts.digest``: ``run_digest``, the recipe (fetch, filter, look up, suppress, format, send, mark).
- ``alerts.render``: subject, HTML and text parts; ``alerts.chart``: the spend sparkline PNG.
- ``alerts.send``: SMTP and SES delivery; ``alerts.links``: the dashboard link scheme.
"""

from __future__ import annotations

from alerts.digest import DigestResult, SentDigest, run_digest
from alerts.rules import AlertConfig, Rule, load_alert_config

__all__ = ["AlertConfig", "DigestResult", "Rule", "SentDigest", "load_alert_config", "run_digest"]
