from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from collectors.runner import collect
from devkit.aws_seed import (
    GLUE_OOM_NIGHT,
    GLUE_TIMEOUT_MINUTES,
    GLUE_TIMEOUT_NIGHT,
    GLUE_WORKERS,
    SFN_EXECUTIONS,
    seed_aws_sources,
)
from pipepulse.settings import load_settings
from store.schema import run_steps, runs

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.toml"


def test_demo_seed_collects_sfn_and_glue(aws, db_url, tmp_path, engine, now):
    shutil.copy(DEMO, tmp_path / "demo.toml")
    settings = load_settings({"PIPEPULSE_DATABASE_URL": db_url, "PIPEPULSE_DATA_DIR": str(tmp_path / "data")},
                             config_path=tmp_path / "demo.toml")
    seeded = seed_aws_sources(settings, now=now, history_days=90)
    results = collect(settings, engine, sources=["stepfunctions", "glue"], now=now + timedelta(minutes=5))
    assert [(r.source, r.status) for r in results] == [("stepfunctions", "succeeded"), ("glue", "succeeded")]
    with engine.connect() as conn:
        counts = dict(conn.execute(sa.select(runs.c.pipeline + ":" + runs.c.status, sa.func.count())
                                   .group_by(runs.c.pipeline, runs.c.status)).all())
        # one Glue run for every day of the 90-day bill (91 days with today's) whose 02:00 run is
        # over by now (the job's timeout), two of them not succeeding
        nights = 90 + (now >= now.replace(hour=2, minute=GLUE_TIMEOUT_MINUTES, second=0, microsecond=0))
        assert counts == {"sfn_customer_etl:SUCCEEDED": SFN_EXECUTIONS - 3, "sfn_customer_etl:FAILED": 3,
                          "glue_nightly:SUCCEEDED": nights - 2, "glue_nightly:FAILED": 1, "glue_nightly:TIMED_OUT": 1}
        errors = sorted(conn.execute(sa.select(runs.c.error_type, runs.c.error_message)
                                     .where(runs.c.pipeline == "sfn_customer_etl", runs.c.status == "FAILED")).all())
        assert errors == [("DataQualityError", "state RejectBatch: rows failed validation: null customer_id")] * 2 + [
            ("SchemaMismatch", "state SchemaDrift: column 'segment' missing from the export")]
        assert conn.execute(sa.select(sa.func.count()).select_from(run_steps)).scalar_one() > 0
        # issue #21: every execution started at the same minute with 0 s; now each at its own time, each lasting
        sfn = conn.execute(sa.select(runs.c.started_at, runs.c.duration_seconds).where(runs.c.pipeline == "sfn_customer_etl")).all()
        assert len({started for started, _ in sfn}) == SFN_EXECUTIONS
        assert all(duration and duration > 0 for _, duration in sfn), sfn
    # Glue runs as the demo's bill meters them: its glue_nightly line is 5.0 DPU-hours a day growing
    # 0.2% a day from the start of the 90-day history (pipeline/focus.py), here on 10 G.1X workers
    with engine.connect() as conn:
        glue_runs = conn.execute(sa.select(runs).where(runs.c.pipeline == "glue_nightly", runs.c.status == "SUCCEEDED")).all()
        failed = dict(conn.execute(sa.select(runs.c.status, runs.c.started_at)
                                   .where(runs.c.pipeline == "glue_nightly", runs.c.status != "SUCCEEDED")).all())
    start = (now - timedelta(days=90)).date()
    # every day the bill's glue_nightly line covers, from its first day, has its night's run, at 02:00
    days = sorted({r.started_at.date() for r in glue_runs} | {d.date() for d in failed.values()})
    assert days == [start + timedelta(days=i) for i in range(nights)]
    # and those nights are the days the bill charges the job (tonight's only once its run is over)
    assert seeded.glue_nights == days
    assert {(r.started_at.hour, r.started_at.minute) for r in glue_runs} == {(2, 0)}
    assert {k: (now.date() - v.date()).days for k, v in failed.items()} == {"FAILED": GLUE_OOM_NIGHT, "TIMED_OUT": GLUE_TIMEOUT_NIGHT}
    for run in glue_runs:
        billed_dpu_hours = 5.0 * (1 + 0.002 * (run.started_at.date() - start).days)
        assert run.cost_usd == pytest.approx(billed_dpu_hours * 0.44, rel=0.001)
        # wall clock = 40 s start-up + the billed seconds of 10 workers
        assert run.duration_seconds == pytest.approx(40 + billed_dpu_hours * 3600 / GLUE_WORKERS, abs=1)
    # Step Functions runs on the schedule the demo config gives the pipeline (every 6 hours at
    # :30), a few seconds after each slot; the transitions the seed hands the bill are the
    # collector's estimates, day by day (tolerance: float sums)
    with engine.connect() as conn:
        sfn_runs = conn.execute(sa.select(runs.c.started_at, runs.c.cost_usd).where(runs.c.pipeline == "sfn_customer_etl")).all()
    slots = [r.started_at.replace(second=0, microsecond=0) for r in sfn_runs]
    assert all(s.minute == 30 and s.hour % 6 == 0 for s in slots), slots
    assert all(timedelta(0) < r.started_at - s < timedelta(seconds=30) for r, s in zip(sfn_runs, slots, strict=True))
    estimate: dict = {}
    for r in sfn_runs:
        estimate[r.started_at.date()] = estimate.get(r.started_at.date(), 0.0) + r.cost_usd
    billed = {day: n * settings.prices.sfn_transition for (day, tag, _), n in seeded.sfn_transitions.items()}
    assert {tag for _, tag, _ in seeded.sfn_transitions} == {"sfn_customer_etl"}
    assert billed.keys() == estimate.keys()
    assert all(billed[d] == pytest.approx(estimate[d], rel=1e-9) for d in billed), (billed, estimate)
    again = collect(settings, engine, sources=["stepfunctions", "glue"], now=now + timedelta(minutes=10))
    assert [r.rows_written for r in again] == [0, 0]


@pytest.mark.aws_clock
def test_demo_lambda_invocations_line_up_with_the_stages_they_run(aws, db_url, tmp_path, engine, now):
    """Each function's REPORT line spans the stages it runs in the run (ingest: ingest to
    quarantine; transform: transform and load), as the run detail lists them under the run."""
    from devkit.aws_seed import seed_lambda_reports
    from pipeline.config import pipeline_section
    from store.invocations import invocations_frame
    from store.ledger import LedgerFile, iso

    shutil.copy(DEMO, tmp_path / "demo.toml")
    settings = load_settings({"PIPEPULSE_DATABASE_URL": db_url, "PIPEPULSE_DATA_DIR": str(tmp_path / "data")},
                             config_path=tmp_path / "demo.toml")
    at = now - timedelta(days=2)
    # (run, its stages as (stage, attempt, status, start s, end s) from the run's start)
    plan = {
        "r-ok": [("ingest", 1, "SUCCEEDED", 9, 18.2), ("validate", 1, "SUCCEEDED", 18.2, 21.5),
                 ("quarantine", 1, "SUCCEEDED", 21.5, 22.4), ("transform", 1, "SUCCEEDED", 22.4, 184.8),
                 ("load", 1, "FAILED", 184.8, 188.1), ("load", 2, "SUCCEEDED", 192.1, 195.4)],
        "r-early": [("ingest", 1, "SUCCEEDED", 5, 11), ("validate", 1, "FAILED", 11, 14)],
    }
    starts = {"r-ok": at, "r-early": at + timedelta(hours=1)}
    with LedgerFile(pipeline_section(settings).ledger_path) as ledger:
        for rid, stages in plan.items():
            t = starts[rid]
            ledger.insert_run({"run_id": rid, "pipeline": "orders", "status": "FAILED" if rid == "r-early" else "SUCCEEDED",
                               "trigger": "schedule", "attempt": 1, "started_at": iso(t),
                               "ended_at": iso(t + timedelta(seconds=stages[-1][4] + 1)), "correlation_id": f"c-{rid}"})
            for stage, attempt, status, a, b in stages:
                ledger.insert_step({"run_id": rid, "stage": stage, "attempt": attempt, "status": status,
                                    "started_at": iso(t + timedelta(seconds=a)), "ended_at": iso(t + timedelta(seconds=b))})
    assert seed_lambda_reports(settings, now=now) == 3
    [p] = collect(settings, engine, sources=["logs"], now=now + timedelta(minutes=5))
    assert p.status == "succeeded", p.error

    def shown(rid):  # the invocations the run detail lists under the run (dashboard/data.py run_invocations)
        t, last = starts[rid], plan[rid][-1][4] + 1
        with engine.connect() as conn:
            frame = invocations_frame(conn, t, t + timedelta(seconds=last, minutes=1), pipeline="orders")
        return [(f, e - t, round(d)) for f, e, d in frame[["function_name", "ended_at", "duration_ms"]].itertuples(index=False)]

    assert shown("r-ok") == [("pipepulse-orders-ingest", timedelta(seconds=22.4), 13_400),
                             ("pipepulse-orders-transform", timedelta(seconds=195.4), 173_000)]
    # a run that failed before its transform stage: no transform invocation
    assert shown("r-early") == [("pipepulse-orders-ingest", timedelta(seconds=14), 9_000)]
