"""Prints the fault table at the end of the session (registered by tests/conftest.py).

Rows come from the tests' reports (``user_properties`` named ``fault_row``, see
``faultbed.record_row``), so the table is whole also when xdist workers ran the tests.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FaultTablePlugin", "format_table"]


def format_table(rows: list[dict[str, Any]]) -> list[str]:
    head = ["fault", "db", "expected", "stored", "doubled", "lost", "cost stored", "note"]
    body = [[r["fault"], r["db"], f"{r['expected']:,}", f"{r['stored']:,}", str(r["doubled"]), str(r["lost"]), r["money"], r["note"]]
            for r in rows]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return lines


class FaultTablePlugin:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call":
            self.rows.extend(value for name, value in report.user_properties if name == "fault_row")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows:
            return
        terminalreporter.section("fault table: row accounting against the seeded source (issue 23)")
        for line in format_table(sorted(self.rows, key=lambda r: (r["order"], r["fault"], r["db"]))):
            terminalreporter.write_line(line)
