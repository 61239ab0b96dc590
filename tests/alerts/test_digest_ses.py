"""The digest through Amazon SES (moto over HTTP), read back from moto's data endpoint."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import boto3
import requests
import sqlalchemy as sa
from alerts_testkit import NOW, body, make_settings, parts

from alerts.digest import run_digest
from store.schema import digests, notifications

SES = """
[alerts]
channel = "ses"
sender = "pipepulse <alerts@pipepulse.test>"
[alerts.ses]
region = "us-east-1"
"""


def sent_raw(aws) -> list[dict]:
    data = requests.get(f"{aws.endpoint}/moto-api/data.json", timeout=30).json()
    return data["ses"]["RawMessage"]


def statuses(engine):
    with engine.connect() as conn:
        d = conn.execute(sa.select(digests.c.status, digests.c.error).order_by(digests.c.created_at)).all()
        n = conn.execute(sa.select(notifications.c.status).distinct()).scalars().all()
    return [tuple(x) for x in d], sorted(n)


def test_an_unverified_sender_gets_a_clear_error_and_loses_nothing(aws, seeded, tmp_path, db_url):
    settings = make_settings(tmp_path, db_url, SES)
    result = run_digest(settings, seeded, period="daily", now=NOW)
    [d] = result.digests
    assert d.status == "failed"
    assert d.error == (
        "SES (us-east-1) rejected the message from alerts@pipepulse.test: Did not have authority to send from email "
        "alerts@pipepulse.test. Verify the sender identity first: `aws ses verify-email-identity --email-address "
        "alerts@pipepulse.test --region us-east-1` (or verify its domain), and while the account is in the SES "
        "sandbox verify the recipients too"
    )
    assert sent_raw(aws) == []
    assert statuses(seeded) == ([("failed", d.error)], ["failed"])

    # verified: the next pass delivers everything the failed one held
    boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress="alerts@pipepulse.test")
    again = run_digest(settings, seeded, period="daily", now=NOW + timedelta(minutes=10))
    [ok] = again.digests
    assert (ok.status, set(ok.items)) == ("sent", set(d.items))
    [raw] = sent_raw(aws)
    assert raw["source"] == "alerts@pipepulse.test"
    assert set(raw["destinations"]) == {"oncall@example.com"}
    msg = email.message_from_string(raw["raw_data"], policy=email.policy.default)
    assert msg["Subject"] == (
        "pipepulse daily: 2 failures, 1 missed, 1 below success target, 1 anomaly, 1 collector failing, "
        "spend forecast 12% over budget"
    )
    # both parts and the inline chart survive send_raw_email
    assert sorted(parts(msg)) == ["image/png", "multipart/alternative", "multipart/related", "text/html", "text/plain"]
    html = body(msg, "text/html")
    assert "Daily cost of Amazon S3 for orders" in html
    assert "http://dash.test/run?run=reference%3Aorders-112003" in html
    assert "the 06:00 run has not happened" in body(msg, "text/plain")
    assert statuses(seeded) == ([("failed", d.error), ("sent", None)], ["sent"])
