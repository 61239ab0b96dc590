"""Slack and signed webhook alerts, delivered over real HTTP to a receiver started by the test.

The receiver (``http.server`` in a thread) records every request and answers from a script of
status codes, so a failing receiver (500, then 200) shows the retry. The webhook's signature is
checked here with ``hmac`` directly (not with pipepulse's own helper), as a receiver would.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import sqlalchemy as sa
from alerts_testkit import DASH, NOW, PIPELINES, body, smtp_alerts

from alerts import notify
from alerts.digest import run_digest
from pipepulse.errors import ConfigError
from pipepulse.logs import QUIET_LOGGERS
from pipepulse.retries import Backoff
from pipepulse.settings import load_settings
from store.schema import digests, notifications

SLACK_TOKEN = "T0SECRET/B0SECRET/xoxb9secretpathtoken"  # the part of a Slack URL that is the credential
SIGNING_KEY = "whsec-3b1f9c0e-never-logged"


@dataclass
class Receiver:
    port: int
    answers: list[int] = field(default_factory=list)  # status codes to answer, in order; then 200
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for p, h, b in self.requests if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            data = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((self.path, dict(self.headers.items()), data))
            code = state.answers.pop(0) if state.answers else 200
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"ok" if code == 200 else b"boom")

        def log_message(self, *args):  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(notify, "BACKOFF", Backoff(0, 0))


def _settings(tmp_path, db_url, smtp_server, receiver, secret_arn, *, attempts: int = 4, rules: str):
    text = (f'[pipepulse]\ndashboard_url = "{DASH}"\n[budgets]\nmonthly = 2600.0\n' + PIPELINES + "\n"
            + smtp_alerts(smtp_server) + "\n" + rules + f"""
[notify.oncall]
kind = "slack"
url_secret = "{secret_arn}"

[notify.ops]
kind = "webhook"
url = "{receiver.url('/hook')}"
signing_secret_env = "PIPEPULSE_OPS_WEBHOOK_KEY"
attempts = {attempts}
""")
    path = tmp_path / "pipepulse.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings({"PIPEPULSE_DATABASE_URL": db_url, "PIPEPULSE_OPS_WEBHOOK_KEY": SIGNING_KEY}, config_path=path)


IMMEDIATE = """
[[alerts.rules]]
name = "page me"
kind = "failed_runs"
frequency = "immediate"
pipelines = ["orders"]
recipients = ["pager@example.com", "slack:oncall", "webhook:ops"]
"""
DAILY = """
[[alerts.rules]]
name = "daily failures"
kind = "failed_runs"
frequency = "daily"
pipelines = ["orders"]
recipients = ["pager@example.com", "slack:oncall", "webhook:ops"]
"""


@pytest.fixture
def slack_secret(aws, receiver) -> str:
    """The Slack webhook URL, kept in Secrets Manager (the local AWS over HTTP)."""
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    return sm.create_secret(Name="pipepulse/notify/oncall", SecretString=receiver.url(f"/slack/{SLACK_TOKEN}"))["ARN"]


def _signature_ok(headers: dict[str, str], raw: bytes) -> bool:
    ts = headers["X-Pipepulse-Timestamp"]
    expected = "v1=" + hmac.new(SIGNING_KEY.encode(), f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Pipepulse-Signature"]) and abs(time.time() - int(ts)) < 300


def _debug_as_the_cli_logs(caplog):
    """Capture at DEBUG with the libraries held where ``configure_logging`` holds them (without
    it botocore's DEBUG lines print the Secrets Manager answer, whatever pipepulse does)."""
    caplog.set_level(logging.DEBUG)
    for name in QUIET_LOGGERS:
        caplog.set_level(logging.WARNING, logger=name)


def test_slack_and_webhook_get_the_alert_once_signed_and_retried(
    seeded, smtp_server, receiver, slack_secret, tmp_path, db_url, caplog
):
    _debug_as_the_cli_logs(caplog)
    settings = _settings(tmp_path, db_url, smtp_server, receiver, slack_secret, rules=IMMEDIATE + DAILY)
    receiver.answers = [200, 500]  # Slack first (200); the webhook's first try fails, its retry succeeds

    result = run_digest(settings, seeded, period="immediate", now=NOW)

    by_channel = {d.channel: d for d in result.digests}
    assert sorted(by_channel) == ["email", "slack:oncall", "webhook:ops"]
    assert {d.status for d in result.digests} == {"sent"}
    assert by_channel["slack:oncall"].attempts == 1
    assert by_channel["webhook:ops"].attempts == 2
    subject = "pipepulse alert: 2 failures, spend forecast 12% over budget"
    assert {d.subject for d in result.digests} == {subject}

    # Slack: Block Kit, the subject, one section per failure with the same links as the email
    [(_, raw)] = receiver.on(f"/slack/{SLACK_TOKEN}")
    slack = json.loads(raw)
    assert slack["text"] == subject
    assert slack["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": subject}}
    sections = [b["text"]["text"] for b in slack["blocks"] if b["type"] == "section"]
    assert len(sections) == 2
    slack_links = {m for s in sections for m in re.findall(r"<(http[^|>]+)\|", s)}
    email_html = html.unescape(body(smtp_server.recorder.messages[0][1], "text/html"))
    assert len(slack_links) == 2 and all(link in email_html for link in slack_links)
    assert all(link.startswith(f"{DASH}/") for link in slack_links)
    assert slack["blocks"][-1]["elements"][0]["url"] == DASH

    # webhook: two tries of one delivery, both validly signed over the raw body; the JSON names the items
    tries = receiver.on("/hook")
    assert len(tries) == 2
    assert all(_signature_ok(h, b) for h, b in tries)
    assert tries[0][0]["X-Pipepulse-Delivery"] == tries[1][0]["X-Pipepulse-Delivery"] == by_channel["webhook:ops"].digest_id
    hook = json.loads(tries[1][1])
    assert (hook["type"], hook["version"], hook["period"], hook["subject"]) == ("pipepulse.alerts", 1, "immediate", subject)
    assert sorted(i["key"] for i in hook["items"]) == sorted(by_channel["webhook:ops"].items)
    assert {i["link"] for i in hook["items"]} == slack_links
    assert all(i["kind"] == "failed_runs" and i["pipeline"] == "orders" for i in hook["items"])
    # a tampered body does not verify
    assert not _signature_ok(tries[1][0], tries[1][1].replace(b"orders", b"orderz"))

    # the retry is in the data, not only in a log line
    with seeded.connect() as conn:
        rows = conn.execute(sa.select(digests.c.channel, digests.c.attempts, digests.c.status)).all()
    assert sorted(rows) == [("slack", 1, "sent"), ("smtp", 1, "sent"), ("webhook", 2, "sent")]

    # five minutes later nothing new; the daily digest does not repeat what the alert told (any channel)
    assert run_digest(settings, seeded, period="immediate", now=NOW + timedelta(minutes=5)).digests == []
    daily = run_digest(settings, seeded, period="daily", now=NOW + timedelta(minutes=5))
    assert daily.digests == [] and daily.already_sent == 6  # 2 failures x 3 recipients
    assert len(receiver.requests) == 3 and len(smtp_server.recorder.messages) == 1

    # the secrets never reach a log line or the database
    with seeded.connect() as conn:
        stored = json.dumps([list(r) for r in conn.execute(sa.select(digests)).all()], default=str)
        stored += json.dumps([list(r) for r in conn.execute(sa.select(notifications)).all()], default=str)
    for secret in (SLACK_TOKEN, "xoxb9secretpathtoken", SIGNING_KEY):
        assert secret not in caplog.text
        assert secret not in stored
    assert "webhook:ops: attempt 1 failed (HTTP 500" in caplog.text


def test_a_receiver_that_keeps_failing_leaves_the_items_for_the_next_pass(
    seeded, smtp_server, receiver, slack_secret, tmp_path, db_url, caplog
):
    _debug_as_the_cli_logs(caplog)
    settings = _settings(tmp_path, db_url, smtp_server, receiver, slack_secret, attempts=2,
                         rules=IMMEDIATE.replace('"pager@example.com", "slack:oncall", ', ""))
    receiver.answers = [503, 503]
    [failed] = run_digest(settings, seeded, period="immediate", now=NOW).digests
    assert (failed.status, failed.attempts) == ("failed", 2)
    assert failed.error == "webhook:ops: no attempt of 2 got through (last: HTTP 503 Service Unavailable)"
    # a 4xx is not retried: the receiver refused the message
    receiver.answers = [403]
    [refused] = run_digest(settings, seeded, period="immediate", now=NOW + timedelta(minutes=5)).digests
    assert refused.error == "webhook:ops refused the message: HTTP 403 Forbidden; check [notify.ops]"
    assert len(receiver.on("/hook")) == 3
    # the receiver is back: the same two items go out, once
    [ok] = run_digest(settings, seeded, period="immediate", now=NOW + timedelta(minutes=10)).digests
    assert ok.status == "sent" and ok.items == failed.items
    assert SIGNING_KEY not in caplog.text and str(receiver.port) + "/hook" not in (failed.error or "")


def test_notify_config_errors_name_the_key(tmp_path, db_url):
    def load(text: str):
        path = tmp_path / "p.toml"
        path.write_text(text)
        return load_settings({"PIPEPULSE_DATABASE_URL": db_url}, config_path=path)

    with pytest.raises(ConfigError, match=r"\[notify.chat\] url: a Slack webhook URL is a secret"):
        load('[notify.chat]\nkind = "slack"\nurl = "https://hooks.slack.com/services/T/B/x"\n')
    with pytest.raises(ConfigError, match=r"\[notify.ops\] a webhook signs every message"):
        load('[notify.ops]\nkind = "webhook"\nurl = "https://example.com/h"\n')
    with pytest.raises(ConfigError, match=r"'slack:nobody' names no \[notify.nobody\]"):
        from alerts.rules import load_alert_config

        load_alert_config(load('[[alerts.rules]]\nname = "r"\nkind = "failed_runs"\nrecipients = ["slack:nobody"]\n'))
