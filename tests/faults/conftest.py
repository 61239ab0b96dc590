"""Fixtures of the fault suite: a reference-pipeline ledger for the logs collector's runs."""

from __future__ import annotations

import pytest

from store.ledger import LedgerFile


class _Ledger:
    def __init__(self, file: LedgerFile) -> None:
        self.file = file

    def run(self, **row) -> None:
        self.file.insert_run(row)


@pytest.fixture
def ledger(tmp_path):
    led = _Ledger(LedgerFile(tmp_path / "data" / "ledger.db"))
    yield led
    led.file.close()
