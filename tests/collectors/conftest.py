"""Helpers for the collector tests: settings from a TOML snippet, no backoff waits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import collectors.base as base
from pipepulse.settings import load_settings


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(base, "BACKOFF_BASE", 0.0)


@pytest.fixture
def make_settings(tmp_path, db_url):
    """``make_settings(toml_text)`` -> Settings on the test database and a temp data folder."""

    def build(text: str = "", **env: str):
        path = tmp_path / "pipepulse.toml"
        path.write_text(text)
        base_env = {"PIPEPULSE_DATABASE_URL": db_url, "PIPEPULSE_DATA_DIR": str(tmp_path / "data")}
        base_env.update(env)
        return load_settings(base_env, config_path=path)

    return build


LEDGER_DDL = """
CREATE TABLE ledger_runs (run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL,
  trigger TEXT NOT NULL, attempt INT NOT NULL DEFAULT 1, scheduled_for TEXT, queued_at TEXT,
  started_at TEXT, ended_at TEXT, records_in INT, records_out INT, records_rejected INT,
  bytes_in INT, error_type TEXT, error_message TEXT, correlation_id TEXT, usage_json TEXT,
  cost_usd REAL, seq INT NOT NULL);
CREATE TABLE ledger_steps (run_id TEXT NOT NULL, stage TEXT NOT NULL, attempt INT NOT NULL,
  status TEXT NOT NULL, queued_at TEXT, started_at TEXT, ended_at TEXT, records_in INT,
  records_out INT, records_rejected INT, error_type TEXT, error_message TEXT, next_retry_at TEXT,
  seq INT NOT NULL, PRIMARY KEY (run_id, stage, attempt));
"""


class TinyLedger:
    """A ledger written the way docs/CONTRACTS.md describes (global seq = max + 1)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.executescript(LEDGER_DDL)

    def _next(self) -> int:
        return self.db.execute(
            "SELECT max(coalesce((SELECT max(seq) FROM ledger_runs),0), coalesce((SELECT max(seq) FROM ledger_steps),0)) + 1"
        ).fetchone()[0]

    def run(self, **row) -> None:
        row["seq"] = self._next()
        cols = ", ".join(row)
        self.db.execute(f"INSERT OR REPLACE INTO ledger_runs ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values()))

    def step(self, **row) -> None:
        row["seq"] = self._next()
        cols = ", ".join(row)
        self.db.execute(f"INSERT OR REPLACE INTO ledger_steps ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values()))


@pytest.fixture
def ledger(tmp_path):
    return TinyLedger(tmp_path / "data" / "ledger.db")
