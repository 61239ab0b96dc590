"""The demo's FOCUS bill: the day it ends in has only the hours before its end, and the nightly
Glue job is billed only for the nights it ran."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pipeline.focus import account_rows
from pipepulse.settings import Prices

TODAY = date(2026, 12, 7)
DAYS = [TODAY - timedelta(days=2), TODAY - timedelta(days=1), TODAY]
# one pipeline's runs: two yesterday, one today before the bill's end
USAGE = {(DAYS[1], "orders"): {"compute_vcpu_seconds": 7200.0}, (TODAY, "orders"): {"compute_vcpu_seconds": 3600.0}}


def _by_line(rows):
    return {(r["ChargePeriodStart"][:10], r["x_UsageType"], r["Tags"]): float(r["BilledCost"]) for r in rows}


def _bill(**kw):
    return _by_line(account_rows(DAYS[0], TODAY + timedelta(days=1), USAGE, Prices(), seed=7, **kw))


@pytest.mark.parametrize("hour", [1, 6, 23])
def test_todays_bill_covers_the_hours_that_have_passed(hour):
    full = _bill()
    until = datetime.combine(TODAY, datetime.min.time(), UTC) + timedelta(hours=hour)
    # the Glue job ran the two nights before; tonight's run is not over
    partial = _bill(until=until, glue_nights=DAYS[:2])
    glue = '{"pipeline": "glue_nightly"}'
    # the days that have ended: billed in full, as without an end
    assert {k: v for k, v in partial.items() if k[0] != f"{TODAY}"} == {k: v for k, v in full.items() if k[0] != f"{TODAY}"}
    today = {k: v for k, v in partial.items() if k[0] == f"{TODAY}"}
    # today: no Glue line (no run yet); the metered lines (and the lake storage) at hour/24 of a whole day's
    assert (f"{TODAY}", "USE1-ETL-DPU-Hour", glue) not in today
    assert (f"{TODAY}", "USE1-ETL-DPU-Hour", glue) in full
    metered = {k: v for k, v in full.items() if k[0] == f"{TODAY}" and k[2] != glue
               and k[1] != "USE1-Fargate-vCPU-Hours:perCPU"}
    assert today.keys() - {(f"{TODAY}", "USE1-Fargate-vCPU-Hours:perCPU", '{"pipeline": "orders"}')} == metered.keys()
    for key, cost in metered.items():
        assert today[key] == pytest.approx(cost * hour / 24, abs=1e-10), key  # the export rounds to 1e-10 USD
    # what the runs used is what they used, whatever the hour
    fargate = (f"{TODAY}", "USE1-Fargate-vCPU-Hours:perCPU", '{"pipeline": "orders"}')
    assert today[fargate] == full[fargate]


def test_a_glue_night_is_billed_once_its_run_happened():
    until = datetime.combine(TODAY, datetime.min.time(), UTC) + timedelta(hours=5)
    full = _bill()
    ran = _bill(until=until, glue_nights=DAYS)
    key = (f"{TODAY}", "USE1-ETL-DPU-Hour", '{"pipeline": "glue_nightly"}')
    # the night's run is the night's whole job, not a share of the day
    assert ran[key] == full[key]
    # a night without a run (a day the job did not run) has no line
    skipped = _bill(until=until, glue_nights=[DAYS[0], TODAY])
    assert (f"{DAYS[1]}", "USE1-ETL-DPU-Hour", '{"pipeline": "glue_nightly"}') not in skipped


def test_no_line_after_the_bill_ends():
    until = datetime.combine(TODAY, datetime.min.time(), UTC)  # midnight: today has not begun
    assert {k[0] for k in _bill(until=until)} == {f"{DAYS[0]}", f"{DAYS[1]}"}
