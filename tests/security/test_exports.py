"""Exports and terminal output carry attacker-controlled text (pipeline names, errors, services,
regions from cost exports and AWS). Findings of issue #19 replayed here:
- CSV formula injection in every dashboard CSV and in ``pipepulse costs daily --format csv``;
- terminal escape codes from cost exports printed raw by ``costs daily``;
- a step status reaching a chart's hover label unescaped (a live link).
"""

from __future__ import annotations

import csv
import io

import pytest
from conftest import (
    ESCAPE_REGION,
    FORMULA_ERROR,
    FORMULA_PIPELINE,
    FORMULA_SERVICE,
    FORMULA_USAGE,
    PLANTED_RUN,
    settle,
)

from cli.main import main
from pipepulse.export import csv_bytes, csv_cell


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.browser
def test_dashboard_csvs_neutralise_formula_cells(local, page):
    page.goto(local.base + "/?range=24h")
    settle(page, text="Recent failures")
    with page.expect_download() as dl:
        page.locator('a[data-key="csv_failures"]').click()
    rows = _rows(open(dl.value.path(), encoding="utf-8").read())
    planted = [r for r in rows if r["run_id"] == PLANTED_RUN]
    assert len(planted) == 1
    assert planted[0]["pipeline"] == "'" + FORMULA_PIPELINE
    assert planted[0]["error_message"] == "'" + FORMULA_ERROR
    # the run history's CSV (a grid's download) too, with numbers left as numbers
    page.goto(local.base + "/pipelines?range=24h")
    settle(page, text="Run history")
    with page.expect_download() as dl:
        page.locator('a[data-key="csv_history"]').click()
    runs = _rows(open(dl.value.path(), encoding="utf-8").read())
    (row,) = [r for r in runs if r["run_id"] == PLANTED_RUN]
    assert row["pipeline"] == "'" + FORMULA_PIPELINE
    assert float(row["cost_usd"]) == 0.5 and row["duration_seconds"] == "120.0"


@pytest.mark.browser
def test_a_step_status_is_text_in_the_charts_hover_label(local, page):
    page.goto(local.base + "/run?run=" + PLANTED_RUN)
    settle(page, text="Log lines")
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 0")
    traces = page.evaluate("() => document.querySelectorAll('.js-plotly-plot')[0].data.map(t => [t.name, t.hovertemplate, t.text])")
    shown = " ".join(str(x) for t in traces for x in t)
    assert "<a href" not in shown
    assert "&lt;a href" in shown  # plotly shows the escaped text as the literal status
    assert page.locator('.js-plotly-plot a[href*="evil.example"]').count() == 0


def test_costs_daily_csv_neutralises_formula_cells_and_keeps_numbers(sec_db, capsys, monkeypatch):
    url, _ = sec_db
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", url)
    monkeypatch.delenv("PIPEPULSE_CONFIG", raising=False)
    from datetime import UTC, datetime, timedelta

    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    for by in ("service", "usage_type", "region"):
        assert main(["costs", "daily", "--from", day, "--to", day, "--by", by, "--format", "csv"]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out
        rows = {r[by]: r for r in _rows(out)}
        planted = {"service": "'" + FORMULA_SERVICE, "usage_type": "'" + FORMULA_USAGE, "region": "us-evil-1"}[by]
        assert planted in rows, sorted(rows)
        assert rows[planted]["billed_cost"] == "-12.500000"  # a negative amount is a number, not a formula


def test_costs_daily_table_prints_no_escape_codes(sec_db, capsys, monkeypatch):
    url, _ = sec_db
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", url)
    monkeypatch.delenv("PIPEPULSE_CONFIG", raising=False)
    from datetime import UTC, datetime, timedelta

    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert main(["costs", "daily", "--from", day, "--to", day, "--by", "region"]) == 0
    out = capsys.readouterr().out
    assert ESCAPE_REGION not in out
    assert not any(c in out for c in "\x1b\x07\x9b\x9d\r")
    assert "us-evil-1" in out  # the text is kept, the escape sequences go


@pytest.mark.parametrize(("value", "cell"), [
    ("=1+1", "'=1+1"), ("+1", "+1"), ("+1+1", "'+1+1"), ("-12.5", "-12.5"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\r=1", "'=1"), ("a\x00b\x1b[31mc", "abc"), ("\x1b]0;title\x07x", "x"), ("\x00=1", "'=1"), ("plain", "plain"),
    (-12.5, -12.5), (3, 3), (None, ""), (float("nan"), ""), (True, "True"), ("1e-3", "1e-3"), ("line1\nline2", "line1\nline2"),
])
def test_the_one_csv_cell_rule(value, cell):
    # OWASP's rule: text starting with = + - @ tab CR gets a leading quote, unless it is a number
    assert csv_cell(value) == cell


def test_the_one_writer_round_trips_through_the_csv_module():
    data = csv_bytes(["name", "amount"], [[FORMULA_PIPELINE, -1.5], ["ok, with comma", 2]]).decode()
    assert list(csv.reader(io.StringIO(data))) == [["name", "amount"], ["'" + FORMULA_PIPELINE, "-1.5"], ["ok, with comma", "2"]]
