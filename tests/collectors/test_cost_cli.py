"""`pipepulse costs import` and `pipepulse costs daily` end to end."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from cli.main import main


@pytest.fixture
def cli(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", db_url)
    monkeypatch.setenv("PIPEPULSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PIPEPULSE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return main


@pytest.fixture
def sample(shared_dir):
    return shared_dir / "data" / "cost" / "focus-1.0-sample" / "focus_sample.csv"


def test_import_prints_rows_rejections_and_month_totals(cli, sample, tmp_path, capsys):
    bad = tmp_path / "focus.csv.gz"
    lines = sample.read_text().splitlines()
    lines[1] = lines[1].replace("0.00000080000", "oops", 1)  # line 2's BilledCost
    bad.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    assert cli(["costs", "import", str(bad)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{bad}: FOCUS, 1,000 rows read, 1 rejected"
    assert out[2] == "rows rejected: 1"
    assert out[3] == f"  {bad}:2: BilledCost 'oops' is not a number"
    assert out[4] == f"note: {bad}: ignored 1 column(s) that are not FOCUS 1.0-1.2: Id"  # the sample's extra column
    out = out[1:]
    assert out[4] == "total per billing month:"
    assert out[5].split() == ["focus", "2024-09", "billed", "20.28", "effective", "14.98", "USD", "(998", "rows)"]
    assert out[6].split() == ["focus", "2024-10", "billed", "0.24", "effective", "0.00", "USD", "(1", "rows)"]
    # again: nothing new
    assert cli(["costs", "import", str(bad)]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("rows stored: 0 daily cost rows changed")


def test_unreadable_file_exits_non_zero(cli, sample, tmp_path, capsys):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    assert cli(["costs", "import", str(sample), str(broken)]) == 1
    captured = capsys.readouterr()
    assert "FOCUS, 1,000 rows read, 0 rejected" in captured.out
    assert captured.err.startswith(f"pipepulse: error: {broken}: not a readable Parquet file")
    # the broken file alone: its error, and no summary of rows that were never read
    assert cli(["costs", "import", str(broken)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"pipepulse: error: {broken}: not a readable Parquet file")


def test_daily_table_and_csv(cli, sample, capsys):
    assert cli(["costs", "import", str(sample)]) == 0
    capsys.readouterr()
    assert cli(["costs", "daily", "--from", "2024-09-03", "--to", "2024-09-03", "--by", "provider", "--format", "csv"]) == 0
    f = pd.read_csv(sample, na_values=["NULL"], keep_default_na=False)
    day = f[f["ChargePeriodStart"].str.startswith("2024-09-03")]
    want = day.groupby("ProviderName")[["BilledCost", "EffectiveCost"]].sum()
    assert len(want) == 3
    assert capsys.readouterr().out.splitlines() == ["day,provider,source,billed_cost,effective_cost,currency"] + [
        f"2024-09-03,{p},focus,{r.BilledCost:.6f},{r.EffectiveCost:.6f},USD" for p, r in want.iterrows()]
    assert cli(["costs", "daily", "--from", "2024-09-01", "--to", "2024-09-30"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["day", "source", "billed_cost", "effective_cost", "currency"]
    assert out[-1] == "total: billed 20.52  effective 14.98"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "2024-9-1", "--to", "2024-09-30"], "--from '2024-9-1' is not a date; use YYYY-MM-DD, today or today-N (N days ago), e.g. --from 2026-11-01 or --from today-30"),
        (["--from", "2024-09-30", "--to", "2024-09-01"], "--to 2024-09-01 is before --from 2024-09-30; the range includes both days"),
    ],
)
def test_bad_dates_are_clear(cli, capsys, argv, message):
    assert cli(["costs", "daily", *argv]) == 1
    assert capsys.readouterr().err.strip() == f"pipepulse: error: {message}"
