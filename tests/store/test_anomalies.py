"""store.anomalies on SQLite and PostgreSQL: upsert by fingerprint, status rules, windows."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from pipepulse.errors import InputError
from store.anomalies import (
    add_maintenance_window,
    delete_maintenance_window,
    get_anomaly,
    list_anomalies,
    maintenance_windows_frame,
    set_status,
    upsert_anomalies,
)


def row(now, **over):
    base = {
        "fingerprint": "fp-1",
        "kind": "cost",
        "subject": "cost:service=AWS Glue",
        "pipeline": None,
        "window_start": now - timedelta(days=2),
        "window_end": now - timedelta(days=2),
        "observed": 45.0,
        "expected": 5.0,
        "lower": 0.0,
        "upper": 12.0,
        "score": 0.9,
        "severity": "high",
        "detector": "test",
        "root_cause": [{"dimension": "service", "value": "AWS Glue", "impact": 40.0}],
    }
    base.update(over)
    return base


def test_detecting_twice_keeps_one_row_and_version(engine, now):
    with engine.begin() as conn:
        first = upsert_anomalies(conn, [row(now)], now=now)
    later = now + timedelta(hours=1)
    with engine.begin() as conn:
        again = upsert_anomalies(conn, [row(now, observed=46.0, score=0.91)], now=later)
        frame = list_anomalies(conn)
    assert (first.inserted, first.updated) == (1, 0)
    assert (again.inserted, again.updated, again.bumped) == (0, 1, 0)
    assert len(frame) == 1
    r = frame.iloc[0]
    assert (r.observed, r.score, r.version, r.status) == (46.0, 0.91, 1, "open")
    assert r.first_seen == now and r.last_seen == later
    assert r.window_start.tzinfo is not None
    assert json.loads(r.root_cause) == [{"dimension": "service", "impact": 40.0, "value": "AWS Glue"}]


def test_acknowledged_status_survives_detection_and_version_bumps_only_when_worse(engine, now):
    with engine.begin() as conn:
        upsert_anomalies(conn, [row(now)], now=now)
        set_status(conn, "fp-1", "acknowledged", note="known Glue backfill", by="ana", now=now)
        upsert_anomalies(conn, [row(now, severity="medium")], now=now + timedelta(hours=1))
        same = get_anomaly(conn, "fp-1")
        upsert_anomalies(conn, [row(now, severity="critical", observed=90.0)], now=now + timedelta(hours=2))
        worse = get_anomaly(conn, "fp-1")
    assert (same["status"], same["severity"], same["version"], same["status_note"]) == ("acknowledged", "high", 1, "known Glue backfill")
    assert (worse["status"], worse["severity"], worse["version"], worse["observed"]) == ("acknowledged", "critical", 2, 90.0)


def test_resolved_reopens_only_when_it_recurs_after_resolution(engine, now):
    with engine.begin() as conn:
        upsert_anomalies(conn, [row(now)], now=now)
        set_status(conn, "fp-1", "resolved", by="ana", now=now)
        # the same old data seen again: stays resolved
        upsert_anomalies(conn, [row(now)], now=now + timedelta(hours=1))
        kept = get_anomaly(conn, "fp-1")
        # new anomalous data after the resolution: reopens, version bumps
        upsert_anomalies(conn, [row(now, window_end=now + timedelta(hours=3))], now=now + timedelta(hours=4))
        back = get_anomaly(conn, "fp-1")
    assert (kept["status"], kept["version"]) == ("resolved", 1)
    assert (back["status"], back["version"], back["status_by"]) == ("open", 2, "detector")
    assert back["window_end"] == now + timedelta(hours=3)
    assert back["window_start"] == now - timedelta(days=2)


def test_set_status_validation(engine, now):
    with engine.begin() as conn:
        upsert_anomalies(conn, [row(now)], now=now)
    with engine.begin() as conn:
        with pytest.raises(InputError, match="no anomaly with fingerprint 'nope'"):
            set_status(conn, "nope", "acknowledged", now=now)
        with pytest.raises(InputError, match="not in the future"):
            set_status(conn, "fp-1", "snoozed", snoozed_until=now - timedelta(minutes=1), now=now)
        with pytest.raises(InputError, match="needs an end"):
            set_status(conn, "fp-1", "snoozed", now=now)
        with pytest.raises(InputError, match="status must be one of"):
            set_status(conn, "fp-1", "ignored", now=now)
        snoozed = set_status(conn, "fp-1", "snoozed", snoozed_until=now + timedelta(days=1), by="bo", now=now)
    assert snoozed["status"] == "snoozed"
    assert snoozed["snoozed_until"] == now + timedelta(days=1)
    with engine.begin() as conn:
        upsert_anomalies(conn, [row(now, severity="high")], now=now + timedelta(hours=1))
        assert get_anomaly(conn, "fp-1")["status"] == "snoozed"


def test_reads_by_status_kind_and_window(engine, now):
    with engine.begin() as conn:
        upsert_anomalies(
            conn,
            [
                row(now),
                row(now, fingerprint="fp-2", kind="duration", subject="duration:etl", pipeline="etl",
                    window_start=now - timedelta(hours=5), window_end=now - timedelta(hours=4), severity="low"),
            ],
            now=now,
        )
        set_status(conn, "fp-2", "acknowledged", now=now)
        assert list_anomalies(conn, status="open")["fingerprint"].tolist() == ["fp-1"]
        assert list_anomalies(conn, status=["open", "acknowledged"])["fingerprint"].tolist() == ["fp-2", "fp-1"]
        assert list_anomalies(conn, kind="duration")["fingerprint"].tolist() == ["fp-2"]
        assert list_anomalies(conn, pipeline="etl")["fingerprint"].tolist() == ["fp-2"]
        assert list_anomalies(conn, start=now - timedelta(days=1), end=now)["fingerprint"].tolist() == ["fp-2"]
        assert list_anomalies(conn, kind="metric").empty
        with pytest.raises(ValueError, match="status must be one of"):
            list_anomalies(conn, status="gone")


def test_maintenance_windows_crud(engine, now):
    with engine.begin() as conn:
        a = add_maintenance_window(conn, starts_at=now, ends_at=now + timedelta(hours=2), subject="etl", reason="backfill", now=now)
        b = add_maintenance_window(conn, starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=1, hours=1), now=now)
        with pytest.raises(InputError, match="must end after it starts"):
            add_maintenance_window(conn, starts_at=now, ends_at=now, now=now)
    with engine.begin() as conn:
        all_ = maintenance_windows_frame(conn)
        etl = maintenance_windows_frame(conn, subject="etl", end=now + timedelta(hours=12))
        assert delete_maintenance_window(conn, a) is True
        assert delete_maintenance_window(conn, a) is False
        left = maintenance_windows_frame(conn)
    assert all_["window_id"].tolist() == [a, b]
    assert etl["subject"].tolist() == ["etl"] and etl["reason"].tolist() == ["backfill"]
    assert etl["starts_at"].iloc[0] == now
    assert left["window_id"].tolist() == [b] and left["subject"].tolist() == ["*"]


def test_the_short_fingerprint_the_dashboard_shows_is_accepted(engine, now):
    with engine.begin() as conn:
        upsert_anomalies(conn, [row(now, fingerprint="ab12cd34ef"), row(now, fingerprint="ab12ff00aa"),
                                row(now, fingerprint="a_b%9999zz")], now=now)
    with engine.begin() as conn:
        assert set_status(conn, "ab12cd34", "acknowledged", now=now)["fingerprint"] == "ab12cd34ef"
        with pytest.raises(InputError, match=r"fingerprint prefix 'ab12' matches more than one anomaly "
                                             r"\(ab12cd34ef, ab12ff00aa\): give more characters"):
            set_status(conn, "ab12", "acknowledged", now=now)
        with pytest.raises(InputError, match="give at least 4 characters"):
            set_status(conn, "ab1", "acknowledged", now=now)
        # LIKE wildcards in the input are plain characters
        with pytest.raises(InputError, match="no anomaly with fingerprint 'a%b%' or one starting with it"):
            set_status(conn, "a%b%", "acknowledged", now=now)
        assert set_status(conn, "a_b%", "resolved", now=now)["fingerprint"] == "a_b%9999zz"
        assert get_anomaly(conn, "ab12ff00aa")["status"] == "open"
