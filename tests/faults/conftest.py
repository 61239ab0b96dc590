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


# ---- the fault table (tests/faults/test_fault_table.py), printed at the end of the session ----

_FAULT_ROWS: list[dict] = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        _FAULT_ROWS.extend(value for name, value in report.user_properties if name == "fault_row")


def pytest_terminal_summary(terminalreporter):
    if not _FAULT_ROWS:
        return
    from faultbed import format_table

    terminalreporter.section("fault table: row accounting against the seeded source (issue 23)")
    for line in format_table(sorted(_FAULT_ROWS, key=lambda r: (r["order"], r["db"]))):
        terminalreporter.write_line(line)
