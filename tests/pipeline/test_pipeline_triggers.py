"""Triggers decide with an injected clock: cron, interval, file arrival; the scheduler loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.triggers import CronTrigger, FileArrivalTrigger, IntervalTrigger, Scheduler
from pipepulse.cron import CronSchedule
from pipepulse.settings import PipelineConfig


def t(h, m=0, s=0):
    return datetime(2026, 11, 20, h, m, s, tzinfo=UTC)


def test_cron_trigger_runs_each_missed_slot_once():
    hourly = CronTrigger(CronSchedule("0 * * * *"))
    assert hourly.kind == "schedule"
    assert hourly.due(t(12, 30), None) == [t(12)]  # never ran: only the latest slot
    assert hourly.due(t(12, 30), t(10)) == [t(11), t(12)]  # a pause: each missed slot once
    assert hourly.due(t(12, 59), t(12)) == []
    assert hourly.due(t(13), t(12)) == [t(13)]  # a slot is due at its exact time
    daily = CronTrigger(CronSchedule("0 6 * * *"))
    assert daily.due(t(5, 59), t(6) - timedelta(days=1)) == []
    assert daily.due(t(6, 0, 30), t(6) - timedelta(days=1)) == [t(6)]


def test_interval_trigger_counts_from_the_last_start():
    every_hour = IntervalTrigger(3600)
    assert every_hour.kind == "interval"
    assert every_hour.due(t(12, 7), None) == [t(12, 7)]
    assert every_hour.due(t(13, 6, 59), t(12, 7)) == []
    assert every_hour.due(t(13, 9), t(12, 7)) == [t(13, 7)]


def test_file_arrival_sees_only_files_not_yet_loaded(runtime):
    trig = FileArrivalTrigger(
        runtime.source, "partner_feed/", lambda: runtime.ledger.loaded_inputs("partner_feed")
    )
    assert trig.kind == "event" and trig.new_files() == []
    put = runtime.source.s3.put_object
    put(
        Bucket="landing",
        Key="incoming/partner_feed/d1.csv",
        Body=b"sku,partner,qty,price\nA,acme,1,2.50\n",
    )
    put(Bucket="landing", Key="incoming/orders/o.csv", Body=b"x\n")  # another pipeline's prefix
    assert [f.key for f in trig.new_files()] == ["partner_feed/d1.csv"]
    runtime.ledger.mark_inputs("partner_feed", "r1", [(f.key, f.etag) for f in trig.new_files()])
    assert trig.new_files() == []
    # the same name with new content is a new arrival
    put(
        Bucket="landing",
        Key="incoming/partner_feed/d1.csv",
        Body=b"sku,partner,qty,price\nB,acme,1,2.50\n",
    )
    assert [f.key for f in trig.new_files()] == ["partner_feed/d1.csv"]


def test_scheduler_loop_fires_runs_on_the_injected_clock(runtime, clock, now, no_backoff):
    runtime.source.s3.put_object(
        Bucket="landing",
        Key="incoming/partner_feed/d1.csv",
        Body=b"sku,partner,qty,price\nA,acme,3,2.50\n",
    )
    pipelines = [
        PipelineConfig(name="orders", schedule="0 * * * *"),
        PipelineConfig(name="clickstream", interval_seconds=3600),
        PipelineConfig(name="partner_feed"),
    ]
    sched = Scheduler(runtime, pipelines, poll_seconds=600)
    results = sched.loop(until=now + timedelta(minutes=65))  # polls at 12:00, 12:10, ... 13:00
    made = [(r.pipeline, runtime.ledger.run(r.run_id)["trigger"]) for r in results]
    assert made == [
        ("orders", "schedule"),
        ("clickstream", "interval"),
        ("partner_feed", "event"),
        ("orders", "schedule"),
        ("clickstream", "interval"),
    ]
    slots = [
        runtime.ledger.run(r.run_id)["scheduled_for"] for r in results if r.pipeline == "orders"
    ]
    assert slots == [now.isoformat(), (now + timedelta(hours=1)).isoformat()]
    partner = [r for r in results if r.pipeline == "partner_feed"]
    assert (partner[0].status, partner[0].records_in, partner[0].records_out) == ("SUCCEEDED", 1, 1)
    # a new file arrives; the next poll runs it; SIGTERM-style stop ends the loop
    runtime.source.s3.put_object(
        Bucket="landing",
        Key="incoming/partner_feed/d2.csv",
        Body=b"sku,partner,qty,price\nB,acme,1,1\n",
    )
    sched.on_run = lambda r: sched.stop.set()
    more = sched.loop(max_iterations=5)
    assert [(r.pipeline, r.records_in) for r in more] == [("partner_feed", 1)]
    assert sched.stop.is_set()


def test_scheduler_resumes_from_the_ledger(runtime, clock, now, no_backoff):
    pipelines = [PipelineConfig(name="orders", schedule="0 * * * *")]
    first = Scheduler(runtime, pipelines, poll_seconds=600)
    assert len(first.poll()) == 1
    clock.t = now + timedelta(hours=2, minutes=5)
    second = Scheduler(
        runtime, pipelines, poll_seconds=600
    )  # a restart: the last slot comes from the ledger
    slots = [runtime.ledger.run(r.run_id)["scheduled_for"] for r in second.poll()]
    assert slots == [(now + timedelta(hours=h)).isoformat() for h in (1, 2)]
