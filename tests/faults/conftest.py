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


# The fault table (tests/faults/test_fault_table.py) is printed at the end of the session by the
# plugin in faulttable.py, which tests/conftest.py registers: a hook here would not run in the
# xdist controller of `make test`, which never loads this file.
