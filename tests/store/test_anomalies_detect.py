"""jobs.detect.run over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from jobs import detect
from jobs.detect import anomaly_settings
from pipepulse.errors import ConfigError
from pipepulse.settings import Settings
from store.anomalies import add_maintenance_window, list_anomalies, set_status
from store.schema import cost_daily, metric_points, metric_series, runs


def seed(engine, now):
    rng = np.random.default_rng(11)
    start = (now - timedelta(days=4)).replace(hour=0, minute=0)
    n = 4 * 288
    values = 50 + rng.normal(0, 1.0, n)
    spike, planned = 3 * 288 + 60, 3 * 288 + 20  # day 4, 05:00 and 01:40
    values[spike] = 80.0
    values[planned] = 80.0
    ts = [start + timedelta(minutes=5 * i) for i in range(n)]
    days = 60
    first = now.date() - timedelta(days=days - 1)
    cost_rows = []
    for i in range(days):
        day = first + timedelta(days=i)
        lines = {"Amazon S3": 10.0, "AWS Glue": 45.0 if i == 50 else 5.0, "AWS Lambda": 1.0, "Amazon SNS": 0.50 if i == 55 else 0.10}
        for service, cost in lines.items():
            cost *= 1 + 0.01 * rng.normal()
            cost_rows.append({"source": "focus", "day": day, "provider": "AWS", "account": "111", "service": service,
                              "region": "us-east-1", "usage_type": f"{service}-usage", "pipeline": "etl" if service == "AWS Glue" else "",
                              "billed_cost": cost, "effective_cost": cost, "updated_at": now})
    run_rows = []
    for h in range(10 * 24):
        started = now - timedelta(hours=10 * 24 - h)
        dur = 3000.0 if h == 200 else 300.0 + 10 * rng.normal()
        run_rows.append({"run_id": f"reference:r{h}", "pipeline": "etl", "source": "reference", "status": "SUCCEEDED",
                         "started_at": started, "ended_at": started + timedelta(seconds=dur), "duration_seconds": dur,
                         "records_out": 1000, "updated_at": now})
    with engine.begin() as conn:
        sid = conn.execute(metric_series.insert().values(series_key="k1", namespace="Pipepulse/Reference", metric_name="RecordsIn",
                                                         dimensions=json.dumps({"Pipeline": "etl"}), stat="Sum", period_seconds=300,
                                                         pipeline="etl")).inserted_primary_key[0]
        conn.execute(metric_points.insert(), [{"series_id": sid, "ts": t, "value": float(v)} for t, v in zip(ts, values, strict=True)])
        conn.execute(cost_daily.insert(), cost_rows)
        conn.execute(runs.insert(), run_rows)
        add_maintenance_window(conn, starts_at=ts[planned - 2], ends_at=ts[planned + 3], subject="etl", reason="backfill", now=now)
    return ts[spike], first + timedelta(days=50), run_rows[200]["started_at"]


def settings(db_url, tmp_path, **anomalies):
    return Settings(database_url=db_url, data_dir=tmp_path, raw={"anomalies": anomalies})


def test_run_detection_finds_the_incidents_and_stores_them_once(engine, db_url, tmp_path, now):
    spike_at, glue_day, slow_run = seed(engine, now)
    s = settings(db_url, tmp_path)
    first = detect.run(s, engine, now=now)
    with engine.connect() as conn:
        found = list_anomalies(conn)
    kinds = sorted(zip(found["kind"], found["subject"], strict=True))
    assert kinds == [
        ("cost", "cost:pipeline=etl"),
        ("cost", "cost:region=us-east-1"),
        ("cost", "cost:service=AWS Glue"),
        ("cost", "cost:total"),
        ("cost", "cost:usage_type=AWS Glue-usage"),
        ("duration", "duration:etl"),
        ("metric", "Pipepulse/Reference/RecordsIn{Pipeline=etl}"),
    ]
    metric = found[found["kind"] == "metric"].iloc[0]
    assert metric["window_start"] == spike_at  # the planned-window spike is not there
    assert metric["observed"] == 80.0
    glue = found[found["subject"] == "cost:service=AWS Glue"].iloc[0]
    assert glue["window_start"].date() == glue_day
    causes = json.loads(glue["root_cause"])
    assert causes[0]["impact"] == pytest.approx(40.0, abs=1.0)
    assert {(c["dimension"], c["value"]) for c in causes[:4]} >= {("service", "AWS Glue"), ("pipeline", "etl")}
    assert [c["value"] for c in causes if c["dimension"] == "service"][0] == "AWS Glue"
    assert found[found["kind"] == "duration"].iloc[0]["window_start"].floor("h") == slow_run.replace(minute=0, second=0, microsecond=0)
    # the $0.40 jump on the $0.10 SNS line is below the floors
    assert not found["subject"].str.contains("SNS").any()
    assert (first.anomalies, first.inserted, first.updated) == (7, 7, 0)

    with engine.begin() as conn:
        set_status(conn, glue["fingerprint"], "acknowledged", by="ana", now=now)
    second = detect.run(s, engine, now=now + timedelta(minutes=5))
    with engine.connect() as conn:
        again = list_anomalies(conn)
    assert (second.inserted, second.updated) == (0, 7)
    assert len(again) == 7
    assert again.set_index("fingerprint").loc[glue["fingerprint"], "status"] == "acknowledged"
    assert set(again["version"]) == {1}


def test_anomaly_settings_are_validated(tmp_path):
    ok = anomaly_settings(Settings(database_url="sqlite://", data_dir=tmp_path, raw={"anomalies": {
        "sensitivity": 3, "planned": [{"subject": "etl", "start": "2026-11-01T02:00:00Z", "end": "2026-11-01T04:00:00Z"}]}}))
    assert ok.sensitivity == 3.0 and ok.planned[0][0] == "etl"
    assert ok.metric_sensitivity is None  # CloudWatch metrics: the detector's own default
    assert anomaly_settings(Settings(database_url="sqlite://", data_dir=tmp_path, raw={"anomalies": {
        "metric_sensitivity": 1.5}})).metric_sensitivity == 1.5
    with pytest.raises(ConfigError, match=r"\[anomalies\] metric_sensitivity: expected a positive number, got 0"):
        anomaly_settings(Settings(database_url="sqlite://", data_dir=tmp_path, raw={"anomalies": {"metric_sensitivity": 0}}))
    with pytest.raises(ConfigError, match=r"\[anomalies\] sensitivty: unknown key; did you mean sensitivity\?"):
        anomaly_settings(Settings(database_url="sqlite://", data_dir=tmp_path, raw={"anomalies": {"sensitivty": 3}}))
    with pytest.raises(ConfigError, match="cost_floor_usd: expected int or float"):
        anomaly_settings(Settings(database_url="sqlite://", data_dir=tmp_path, raw={"anomalies": {"cost_floor_usd": "1"}}))
    with pytest.raises(ConfigError, match="end must be after start"):
        anomaly_settings(Settings(database_url="sqlite://", data_dir=tmp_path, raw={"anomalies": {
            "planned": [{"start": "2026-11-01T04:00:00Z", "end": "2026-11-01T02:00:00Z"}]}}))


def test_routine_retries_do_not_alert_but_a_burst_does(engine, db_url, tmp_path, now):
    # hourly Retries of one pipeline: mostly 0, a 1 or 2 now and then (transient errors the retry
    # policy absorbed), then a burst of 12 in one hour on the last day
    rng = np.random.default_rng(5)
    hours = 10 * 24
    start = (now - timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
    values = np.where(rng.random(hours) < 0.02, rng.integers(1, 3, hours), 0).astype(float)
    burst = hours - 10
    values[burst] = 12.0
    with engine.begin() as conn:
        sid = conn.execute(metric_series.insert().values(
            series_key="r1", namespace="Pipepulse/Reference", metric_name="Retries",
            dimensions=json.dumps({"Pipeline": "etl"}), stat="Sum", period_seconds=3600, pipeline="etl")).inserted_primary_key[0]
        conn.execute(metric_points.insert(), [{"series_id": sid, "ts": start + timedelta(hours=i), "value": float(v)} for i, v in enumerate(values)])
    detect.run(settings(db_url, tmp_path), engine, now=now)
    with engine.connect() as conn:
        found = list_anomalies(conn)
    assert list(found["subject"]) == ["Pipepulse/Reference/Retries{Pipeline=etl}"]
    assert found.iloc[0]["window_start"] == start + timedelta(hours=burst)
    assert found.iloc[0]["observed"] == 12.0
    # a more sensitive threshold still leaves the routine hours alone: the floor does
    detect.run(settings(db_url, tmp_path, metric_sensitivity=0.4), engine, now=now)
    with engine.connect() as conn:
        assert len(list_anomalies(conn)) == 1
    # without the floor they would alert too
    detect.run(settings(db_url, tmp_path, metric_sensitivity=0.4, metric_floors={"Retries": 0}), engine, now=now)
    with engine.connect() as conn:
        assert len(list_anomalies(conn)) > 1


def test_metric_floors_are_configurable_and_checked(tmp_path):
    s = anomaly_settings(Settings(database_url="sqlite://", data_dir=tmp_path, raw={"anomalies": {"metric_floors": {"Failures": 2}}}))
    assert s.metric_floors == {"Retries": 5.0, "Failures": 2.0}
    with pytest.raises(ConfigError, match=r"\[anomalies.metric_floors\] Retries: expected a non-negative number, got 'x'"):
        anomaly_settings(Settings(database_url="sqlite://", data_dir=tmp_path, raw={"anomalies": {"metric_floors": {"Retries": "x"}}}))


def test_a_bad_data_day_is_found_from_the_rejected_record_rate(engine, db_url, tmp_path, now):
    # 40 days of one hourly pipeline rejecting ~0.2% of records; on one day a quarter are bad
    rng = np.random.default_rng(2)
    first = (now - timedelta(days=40)).replace(hour=0, minute=0, second=0, microsecond=0)
    bad_day = (first + timedelta(days=30)).date()
    rows = []
    for h in range(40 * 24):
        started = first + timedelta(hours=h)
        n = int(1000 * (0.8 if started.weekday() >= 5 else 1.0))
        rej = int(rng.binomial(n, 0.25 if started.date() == bad_day else 0.002))
        rows.append({"run_id": f"reference:b{h}", "pipeline": "orders", "source": "reference", "status": "SUCCEEDED",
                     "started_at": started, "ended_at": started + timedelta(seconds=300), "duration_seconds": 300.0,
                     "records_in": n, "records_out": n - rej, "records_rejected": rej, "updated_at": now})
    with engine.begin() as conn:
        conn.execute(runs.insert(), rows)
    detect.run(settings(db_url, tmp_path), engine, now=now)
    with engine.connect() as conn:
        found = list_anomalies(conn, kind="rejected_rate")
    assert list(found["subject"]) == ["rejected_rate:orders"]
    assert found.iloc[0]["window_start"].date() == bad_day
    assert found.iloc[0]["observed"] == pytest.approx(0.25, abs=0.02)


def test_an_interval_pipeline_drifting_across_the_hour_is_judged_per_run(engine, db_url, tmp_path, now):
    # An hourly interval pipeline (every 60 min 2 s from the last start, runs of 200-280 s) emits
    # RecordsIn once per run at its end, and CloudWatch sums it per hour: while the runs' ends
    # straddle the hour, some hours hold two runs and others none. On the last day one run
    # reads three times its usual records.
    rng = np.random.default_rng(9)
    first = (now - timedelta(days=10)).replace(minute=53, second=0, microsecond=0)
    run_rows, sums = [], {}
    bad = 10 * 24 - 30
    for k in range(10 * 24 - 2):
        started = first + timedelta(seconds=3602 * k)
        ended = started + timedelta(seconds=float(rng.uniform(200, 280)))
        n = float(round(4000 * rng.normal(1.0, 0.03)) * (3 if k == bad else 1))
        run_rows.append({"run_id": f"reference:c{k}", "pipeline": "clicks", "source": "reference", "status": "SUCCEEDED",
                         "started_at": started, "ended_at": ended, "duration_seconds": 240.0, "updated_at": now})
        hour = ended.replace(minute=0, second=0, microsecond=0)
        sums[hour] = sums.get(hour, 0.0) + n
    hours = sorted(sums)
    per_hour = [round(sums[h] / 4000) for h in hours]
    assert per_hour.count(2) >= 3 and len(hours) < len(run_rows)  # doubled hours, empty hours
    with engine.begin() as conn:
        conn.execute(runs.insert(), run_rows)
        sid = conn.execute(metric_series.insert().values(
            series_key="c1", namespace="Pipepulse/Reference", metric_name="RecordsIn",
            dimensions=json.dumps({"Pipeline": "clicks"}), stat="Sum", period_seconds=3600, pipeline="clicks")).inserted_primary_key[0]
        conn.execute(metric_points.insert(), [{"series_id": sid, "ts": h, "value": sums[h]} for h in hours])
    detect.run(settings(db_url, tmp_path), engine, now=now)
    with engine.connect() as conn:
        found = list_anomalies(conn, kind="metric")
    bad_hour = run_rows[bad]["ended_at"].replace(minute=0, second=0, microsecond=0)
    assert list(zip(found["subject"], found["window_start"], strict=True)) == [("Pipepulse/Reference/RecordsIn{Pipeline=clicks}", bad_hour)]
    assert found.iloc[0]["observed"] == sums[bad_hour]  # reported as the stored hourly sum


def test_reference_durations_have_the_run_duration_floor(engine, db_url, tmp_path, now):
    # hourly Duration of one run an hour (no runs stored: the series is taken as it is): ~200 s,
    # 30 s shorter for the last two days (quieter weekend), then one run of 12 minutes
    rng = np.random.default_rng(4)
    hours = 10 * 24
    start = (now - timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
    values = 200.0 * rng.normal(1.0, 0.01, hours)
    values[-48:] -= 30.0
    slow = hours - 5
    values[slow] = 720.0
    with engine.begin() as conn:
        sid = conn.execute(metric_series.insert().values(
            series_key="d1", namespace="Pipepulse/Reference", metric_name="Duration",
            dimensions=json.dumps({"Pipeline": "etl"}), stat="Sum", period_seconds=3600, pipeline="etl")).inserted_primary_key[0]
        conn.execute(metric_points.insert(), [{"series_id": sid, "ts": start + timedelta(hours=i), "value": float(v)} for i, v in enumerate(values)])
    detect.run(settings(db_url, tmp_path), engine, now=now)
    with engine.connect() as conn:
        found = list_anomalies(conn)
    assert list(zip(found["subject"], found["window_start"], strict=True)) == [
        ("Pipepulse/Reference/Duration{Pipeline=etl}", start + timedelta(hours=slow))]
    # with no floor the 30-second change alerts too
    detect.run(settings(db_url, tmp_path, metric_floors={"Pipepulse/Reference/Duration": 0}), engine, now=now)
    with engine.connect() as conn:
        found = list_anomalies(conn)
    assert start + timedelta(hours=hours - 48) in set(found["window_start"])


def test_a_failed_run_is_not_also_a_throughput_or_duration_anomaly(engine, db_url, tmp_path, now):
    # 20 days of an hourly pipeline loading ~1000 records in ~300 s. One run fails after its
    # retries (0 records, cut short at 40 s) and is retried in the next hour, beside that
    # hour's own run: that is a failure, reported as one, not a throughput drop then a doubling.
    # A succeeded run that loads a tenth of the usual records is still a throughput anomaly.
    rng = np.random.default_rng(4)
    first = (now - timedelta(days=20)).replace(minute=0, second=0, microsecond=0)
    failed_at, thin_at = 15 * 24 + 13, 17 * 24 + 9
    rows = []
    for h in range(20 * 24):
        started = first + timedelta(hours=h)
        failed = h == failed_at
        dur = 40.0 if failed else 300.0 + 10 * rng.normal()
        out = 0 if failed else (100 if h == thin_at else int(1000 + 20 * rng.normal()))
        rows.append({"run_id": f"reference:f{h}", "pipeline": "feed", "source": "reference",
                     "status": "FAILED" if failed else "SUCCEEDED", "started_at": started,
                     "ended_at": started + timedelta(seconds=dur), "duration_seconds": dur,
                     "records_in": out, "records_out": out, "updated_at": now})
    retry = first + timedelta(hours=failed_at + 1, minutes=20)
    rows.append({"run_id": "reference:retry", "pipeline": "feed", "source": "reference", "status": "SUCCEEDED",
                 "started_at": retry, "ended_at": retry + timedelta(seconds=300), "duration_seconds": 300.0,
                 "records_in": 1000, "records_out": 1000, "updated_at": now})
    with engine.begin() as conn:
        conn.execute(runs.insert(), rows)
    detect.run(settings(db_url, tmp_path), engine, now=now)
    with engine.connect() as conn:
        found = list_anomalies(conn)
    pairs = sorted(zip(found["kind"], found["window_start"], strict=True))
    assert pairs == [("throughput", rows[thin_at]["started_at"])]


def test_a_bucket_is_judged_only_once_it_has_ended(engine, db_url, tmp_path, now):
    # now is 12:00: today's cost row holds half a day, and the metric's current hour (a Sum of
    # records, collected 20 minutes into it) a third of an hour
    rng = np.random.default_rng(8)
    first_day = now.date() - timedelta(days=40)
    hours = 10 * 24
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)
    values = 6000 + rng.normal(0, 60, hours + 1)
    values[-1] = 2000.0  # the hour from 12:00, read at 12:20
    with engine.begin() as conn:
        conn.execute(cost_daily.insert(), [
            {"source": "focus", "day": first_day + timedelta(days=i), "provider": "AWS", "account": "111", "service": "AWS Glue",
             "region": "us-east-1", "usage_type": "ETL", "pipeline": "", "updated_at": now,
             "billed_cost": (90.0 if i == 40 else 10.0 * (1 + 0.01 * rng.normal())), "effective_cost": 10.0}
            for i in range(41)])  # today (i == 40): already 9x a whole day by noon
        sid = conn.execute(metric_series.insert().values(
            series_key="s1", namespace="Custom", metric_name="RecordsIn", dimensions="{}", stat="Sum",
            period_seconds=3600, pipeline=None)).inserted_primary_key[0]
        conn.execute(metric_points.insert(), [{"series_id": sid, "ts": start + timedelta(hours=i), "value": float(v)}
                                              for i, v in enumerate(values)])
    detect.run(settings(db_url, tmp_path), engine, now=now + timedelta(minutes=20))
    with engine.connect() as conn:
        found = list_anomalies(conn)
    # neither today's spend nor the open hour is read yet (what the scan may flag earlier in
    # the metric's first days is not this test's business)
    assert not found["kind"].eq("cost").any()
    assert not (found["window_end"] >= now.replace(minute=0)).any()
    # once the day has ended, its spend is judged (and the hour, now complete at a third, too)
    detect.run(settings(db_url, tmp_path), engine, now=now.replace(hour=0) + timedelta(days=1, minutes=5))
    with engine.connect() as conn:
        found = list_anomalies(conn)
    assert sorted(found.loc[found["kind"] == "cost", "subject"]) == ["cost:region=us-east-1", "cost:service=AWS Glue", "cost:total",
                                                                     "cost:usage_type=ETL"]
    assert found.loc[found["subject"] == "cost:total", "window_start"].iloc[0].date() == now.date()
    assert (found.loc[found["subject"] == "Custom/RecordsIn{}", "window_start"] == now.replace(minute=0)).sum() == 1
