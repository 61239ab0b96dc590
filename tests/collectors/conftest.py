"""Helpers for the collector tests: no backoff waits, a ledger written as the contract says."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipepulse import retries
from store.ledger import LedgerFile


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(retries, "AWS_REQUESTS", retries.Backoff(base=0.0, cap=0.0))


class TinyLedger:
    """A ledger written as ``store/ledger.py`` describes it (global seq = max + 1), with any
    status: the pipeline's state checks are not the collector's business."""

    def __init__(self, path: Path) -> None:
        self.file = LedgerFile(path)

    def run(self, **row) -> None:
        self.file.insert_run(row)

    def step(self, **row) -> None:
        self.file.insert_step(row)


@pytest.fixture
def ledger(tmp_path):
    led = TinyLedger(tmp_path / "data" / "ledger.db")
    yield led
    led.file.close()
