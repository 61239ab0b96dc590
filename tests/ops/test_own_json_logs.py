"""pipepulse's own logs: JSON lines on stderr at the configured level (pipepulse/logs.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from store.schema import run_logs


def _old_logs(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    old = datetime.now(UTC) - timedelta(days=400)
    with engine.begin() as conn:
        conn.execute(sa.insert(run_logs), [{"log_id": f"g:{i}", "ts": old, "message": "m"} for i in range(4)])
    engine.dispose()


def _records(err: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_retention_logs_json_at_info(db_url, cli, tmp_path):
    _old_logs(db_url)
    (tmp_path / "pipepulse.toml").write_text("[retention]\nbatch_size = 3\n")
    status, out, err = cli(db_url, "retention", "apply", env={"PIPEPULSE_LOG_LEVEL": "INFO"})
    assert status == 0
    assert "run_logs         deleted          4 rows older than 30 days" in out
    records = _records(err)
    # one INFO record per table, no DEBUG batch records
    assert [r["table"] for r in records] == ["metric_points", "run_logs", "run_steps", "collector_runs", "notifications"]
    for r in records:
        assert r["level"] == "INFO"
        assert r["logger"] == "jobs.retention"
        assert r["message"] == "retention applied"
        assert datetime.fromisoformat(r["ts"]).tzinfo is not None
    by_table = {r["table"]: r for r in records}
    assert (by_table["run_logs"]["deleted"], by_table["run_logs"]["batches"], by_table["run_logs"]["keep_days"]) == (4, 2, 30)
    assert by_table["metric_points"]["deleted"] == 0


def test_debug_level_adds_batch_records_and_warning_silences_info(db_url, cli, tmp_path):
    _old_logs(db_url)
    (tmp_path / "pipepulse.toml").write_text("[retention]\nbatch_size = 3\n")
    _, _, err = cli(db_url, "retention", "apply", env={"PIPEPULSE_LOG_LEVEL": "DEBUG"})
    batches = [r for r in _records(err) if r["message"] == "retention batch" and r["table"] == "run_logs"]
    assert [(r["level"], r["deleted"]) for r in batches] == [("DEBUG", 3), ("DEBUG", 1)]

    _old_logs(db_url)  # fresh old rows for a second pass
    status, _, err = cli(db_url, "retention", "apply", env={"PIPEPULSE_LOG_LEVEL": "WARNING"})
    assert status == 0
    assert err == ""


def test_text_format_and_errors_as_one_line(db_url, cli, tmp_path):
    _, _, err = cli(db_url, "retention", "apply", env={"PIPEPULSE_LOG_FORMAT": "text"})
    lines = err.splitlines()
    assert len(lines) == 5
    assert all(" INFO jobs.retention: retention applied" in line for line in lines)

    (tmp_path / "pipepulse.toml").write_text("[retention]\nrun_logs_days = 0\n")
    status, out, err = cli(db_url, "retention", "apply")
    assert status == 1
    assert out == ""
    assert err == "pipepulse: error: pipepulse.toml: [retention] run_logs_days: expected a whole number of days >= 1, got 0\n"
