"""The ``pipepulse pipeline`` commands, and the pipeline's import boundary."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cli.main import main
from pipeline.ledger import Ledger


def test_every_pipeline_command_has_help(capsys):
    for argv in (
        ["pipeline"],
        ["pipeline", "run"],
        ["pipeline", "backfill"],
        ["pipeline", "schedule"],
    ):
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--help"])
        assert exc.value.code == 0
        assert "usage: pipepulse pipeline" in capsys.readouterr().out


@pytest.mark.aws_clock  # the command runs on the wall clock and sends its metrics and log events
def test_pipeline_run_command_processes_a_local_file(aws, tmp_path, monkeypatch, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "p.csv").write_text(
        "sku,partner,qty,price\nA,acme,2,1.50\nB,acme,two,1.00\n"
    )
    cfg = tmp_path / "p.toml"
    cfg.write_text(
        f'[[pipelines]]\nname = "partner_feed"\n[pipeline]\noutput = "{tmp_path}/out"\nquarantine = "{tmp_path}/q"\n'
    )
    monkeypatch.setenv("PIPEPULSE_DATA_DIR", str(tmp_path))
    assert (
        main(
            [
                "--config",
                str(cfg),
                "pipeline",
                "run",
                "--pipeline",
                "partner_feed",
                "--input",
                str(tmp_path / "in" / "p.csv"),
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert "SUCCEEDED; 2 records in, 1 loaded, 1 quarantined" in err
    events = [json.loads(line) for line in out.splitlines()]
    assert (
        events[-1]["message"] == "run succeeded" and len({e["correlation_id"] for e in events}) == 1
    )
    with Ledger(tmp_path / "ledger.db") as led:
        assert [(r["pipeline"], r["trigger"], r["status"]) for r in led.runs()] == [
            ("partner_feed", "manual", "SUCCEEDED")
        ]
    # errors are one line naming what is wrong
    assert main(["--config", str(cfg), "pipeline", "run", "--pipeline", "orders"]) == 1
    assert (
        "no reference pipeline named 'orders'; configured: partner_feed" in capsys.readouterr().err
    )
    assert main(["--config", str(cfg), "pipeline", "backfill", "--days", "0"]) == 1
    assert "--days: expected a positive number of days" in capsys.readouterr().err


def test_pipeline_imports_nothing_of_the_dashboard_side():
    code = (
        "import sys, pipeline.backfill, pipeline.triggers, pipeline.run; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'store', 'collectors', 'insights', 'dashboard', 'alerts', 'jobs', 'cli', 'devkit'}), "
        "sorted(m for m in sys.modules if m.startswith('pipepulse.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    # the floor, and of store/ only its ledger module (docs/architecture.md)
    # (files: the ledger is created 0600; redact: settings masks URLs in its errors)
    floor = ("['pipepulse.cron', 'pipepulse.errors', 'pipepulse.files', 'pipepulse.redact', 'pipepulse.retries', "
             "'pipepulse.settings', 'pipepulse.vocab']")
    assert out == f"['store', 'store.ledger'] {floor}"
