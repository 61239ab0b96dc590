from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from insights.freshness import check_freshness, format_duration, freshness_table
from pipepulse.settings import PipelineConfig

DAILY = PipelineConfig(name="finance_daily", schedule="0 6 * * *", freshness_sla_seconds=3600)
HOURLY = PipelineConfig(name="clickstream", interval_seconds=3600, freshness_sla_seconds=7200)
EVENT = PipelineConfig(name="partner_feed", freshness_sla_seconds=12 * 3600)


def at(hh, mm=0, day=20):
    return datetime(2026, 11, day, hh, mm, tzinfo=UTC)


def r(pipeline, status, start, end=None, scheduled=None):
    return {"pipeline": pipeline, "status": status, "scheduled_for": scheduled, "started_at": start, "ended_at": end}


def frame(*rows):
    return pd.DataFrame(list(rows), columns=["pipeline", "status", "scheduled_for", "started_at", "ended_at"])


def test_daily_run_not_happened_is_missed_with_sentence():
    runs = frame(r("finance_daily", "SUCCEEDED", at(6, 1, 19), at(6, 20, 19), at(6, 0, 19)))
    f = check_freshness(DAILY, runs, now=at(8, 15))
    assert f.state == "missed"
    assert f.due_at == at(6) and f.late_by == timedelta(hours=2, minutes=15)
    assert f.message == "the 06:00 run has not happened (due 06:00 UTC, 2 h 15 min late)"
    assert f.last_success_at == at(6, 20, 19)


def test_daily_run_on_time_late_and_running():
    ok = frame(r("finance_daily", "SUCCEEDED", at(6, 2), at(6, 30), at(6)))
    assert check_freshness(DAILY, ok, now=at(12)).state == "on_time"
    late = frame(r("finance_daily", "SUCCEEDED", at(6, 2), at(7, 40), at(6)))
    f = check_freshness(DAILY, late, now=at(12))
    assert f.state == "late" and f.late_by == timedelta(hours=1, minutes=40)
    assert f.message == "the 06:00 run succeeded at 07:40 UTC, 1 h 40 min after it was due (SLA 1 h)"
    running = frame(r("finance_daily", "RUNNING", at(6, 2)))
    f = check_freshness(DAILY, running, now=at(7, 30))
    assert f.state == "late" and "still running" in f.message
    # within the SLA, with yesterday's run done, a running run is on time
    running_today = frame(
        r("finance_daily", "SUCCEEDED", at(6, 0, 19), at(6, 10, 19), at(6, 0, 19)),
        r("finance_daily", "RUNNING", at(6, 2), None, at(6)),
    )
    f = check_freshness(DAILY, running_today, now=at(6, 30))
    assert f.state == "on_time" and f.message == "the 06:00 run is running (SLA until 07:00 UTC)"


def test_inside_sla_judges_previous_slot():
    # 06:30: today's 06:00 slot is within its SLA, but yesterday's never ran
    f = check_freshness(DAILY, frame(), now=at(6, 30))
    assert f.state == "missed" and f.due_at == at(6, 0, 19)
    yesterday_ok = frame(r("finance_daily", "SUCCEEDED", at(6, 0, 19), at(6, 10, 19), at(6, 0, 19)))
    f = check_freshness(DAILY, yesterday_ok, now=at(6, 30))
    assert f.state == "on_time" and f.message == "the 06:00 run is due (SLA until 07:00 UTC)"


def test_slot_matched_by_start_time_without_scheduled_for():
    runs = frame(r("finance_daily", "SUCCEEDED", at(6, 5), at(6, 25)))
    assert check_freshness(DAILY, runs, now=at(9)).state == "on_time"
    failed = frame(r("finance_daily", "FAILED", at(6, 5), at(6, 25)))
    f = check_freshness(DAILY, failed, now=at(9))
    assert f.state == "missed" and f.message.startswith("the 06:00 run failed and has not succeeded since")


def test_interval_pipeline():
    runs = frame(r("clickstream", "SUCCEEDED", at(9), at(9, 10)))
    f = check_freshness(HOURLY, runs, now=at(11, 30))
    assert f.state == "on_time" and f.due_at == at(10) and f.deadline == at(12)
    f = check_freshness(HOURLY, runs, now=at(12, 30))
    assert f.state == "missed" and f.late_by == timedelta(hours=2, minutes=30)
    running = frame(r("clickstream", "SUCCEEDED", at(9), at(9, 10)), r("clickstream", "RUNNING", at(10, 5)))
    assert check_freshness(HOURLY, running, now=at(12, 30)).state == "late"


def test_event_pipeline_sla_since_last_success():
    runs = frame(r("partner_feed", "SUCCEEDED", at(1), at(2)))
    assert check_freshness(EVENT, runs, now=at(13)).state == "on_time"
    f = check_freshness(EVENT, runs, now=at(16, 5))
    assert f.state == "late" and f.message == "no successful run for 14 h 5 min (SLA 12 h)"
    assert check_freshness(EVENT, runs, now=at(3, day=21)).state == "missed"


def test_table_and_durations():
    t = freshness_table([DAILY, EVENT], frame(), now=at(8, 15))
    assert list(t["pipeline"]) == ["finance_daily", "partner_feed"]
    assert list(t["state"]) == ["missed", "missed"]
    assert format_duration(timedelta(minutes=45)) == "45 min"
    assert format_duration(timedelta(days=3, hours=4, minutes=5)) == "3 d 4 h"


def test_sentence_names_the_day_when_not_today():
    f = check_freshness(DAILY, frame(), now=at(0, 30, day=21))
    assert f.message == "the 06:00 run has not happened (due 06:00 UTC on 2026-11-20, 18 h 30 min late)"


def test_sla_longer_than_the_schedule_step_is_not_missed_before_its_deadline():
    # hourly at :00 with a 90-minute SLA: at 13:00 the 12:00 run still has until 13:30
    hourly = PipelineConfig(name="orders", schedule="0 * * * *", freshness_sla_seconds=90 * 60)
    runs = frame(r("orders", "SUCCEEDED", at(11, 1), at(11, 20), at(11)))
    f = check_freshness(hourly, runs, now=at(13))
    assert f.state == "on_time"
    assert f.message == "the 13:00 run is due (SLA until 14:30 UTC)"
    # at 13:31 the 12:00 run's deadline has passed
    f = check_freshness(hourly, runs, now=at(13, 31))
    assert f.state == "missed"
    assert f.due_at == at(12) and f.late_by == timedelta(hours=1, minutes=31)
    assert f.message == "the 12:00 run has not happened (due 12:00 UTC, 1 h 31 min late)"
    # and once the 12:00 run succeeded in time, the pipeline is fresh again
    runs = frame(r("orders", "SUCCEEDED", at(11, 1), at(11, 20), at(11)), r("orders", "SUCCEEDED", at(12, 1), at(12, 25), at(12)))
    assert check_freshness(hourly, runs, now=at(13, 31)).state == "on_time"


def test_a_newer_success_makes_an_older_failed_slot_fresh():
    hourly = PipelineConfig(name="orders", schedule="0 * * * *", freshness_sla_seconds=90 * 60)
    runs = frame(r("orders", "FAILED", at(12, 1), at(12, 5), at(12)), r("orders", "SUCCEEDED", at(13, 1), at(13, 20), at(13)))
    f = check_freshness(hourly, runs, now=at(14))
    assert f.state == "on_time" and f.message == "the 13:00 run succeeded at 13:20 UTC"
    # without the 13:00 success, the failed 12:00 slot is missed once its deadline passed
    f = check_freshness(hourly, runs.iloc[:1], now=at(14))
    assert f.state == "missed" and f.message == "the 12:00 run failed and has not succeeded since (due 12:00 UTC, 2 h late)"
