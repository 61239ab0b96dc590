"""jobs.forecast over the store (both DBs) and the `pipepulse forecast` CLI."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from cli.main import main
from jobs import forecast
from jobs.forecast import forecast_options, score_snapshots
from pipepulse.errors import ConfigError
from pipepulse.settings import Settings
from store.costs import partial_days
from store.forecasts import latest_snapshots, save_snapshot, snapshot_points
from store.schema import cost_daily
from store.writes import upsert


def _settings(db_url, tmp_path, **raw):
    return Settings(database_url=db_url, data_dir=tmp_path, budget_monthly=300.0,
                    budgets_by_pipeline={"orders": 50.0, "clicks": 10.0}, raw=raw)


def _cost_rows(now):
    rows = []
    day = date(2026, 10, 1)
    while day <= date(2026, 11, 19):
        for service, pipeline, cost in (("Amazon S3", "", 10.0), ("AWS Glue", "orders", 2.0)):
            rows.append({"source": "focus", "day": day, "provider": "AWS", "account": "123", "service": service,
                         "region": "us-east-1", "usage_type": "x", "pipeline": pipeline, "billed_cost": cost,
                         "effective_cost": cost, "usage_quantity": 1.0, "currency": "USD"})
        day += timedelta(days=1)
    return rows


def test_snapshot_forecasts_total_and_budgeted_pipelines(engine, db_url, tmp_path, now):
    with engine.begin() as conn:
        upsert(conn, cost_daily, _cost_rows(now), now=now)
    settings = _settings(db_url, tmp_path, forecast={"horizon_days": 10})
    ids = forecast.run(settings, engine, now=now)  # now = 20 Nov 12:00
    assert len(ids) == 2  # clicks has no spend: skipped
    with engine.connect() as conn:
        snaps = latest_snapshots(conn, method="pipepulse").set_index("subject")
        pts = snapshot_points(conn, int(snaps.loc["total", "snapshot_id"]))
    total = snaps.loc["total"]
    assert total["train_end"] == date(2026, 11, 19) and total["train_start"] == date(2026, 10, 1)
    assert total["month_end_mean"] == pytest.approx(360.0)  # 19 x 12 spent + 11 x 12 to come
    assert total["budget"] == 300.0 and total["budget_cross_day"] == date(2026, 11, 25)
    assert total["backtest_points"] > 0 and total["coverage"] == 1.0
    orders = snaps.loc["pipeline:orders"]
    assert orders["month_end_mean"] == pytest.approx(60.0) and orders["budget_cross_day"] == date(2026, 11, 25)
    assert pts["day"].tolist()[0] == date(2026, 11, 20) and len(pts) == 11
    assert pts["mean"].tolist() == pytest.approx([12.0] * 11)
    # the chosen model and its backtest error beside the simple forecasts' (a constant series:
    # every candidate is exact, the tie goes to the regime's median)
    assert total["model"] == "regime-median"
    assert (total["backtest_mae"], total["mae_last_value"], total["mae_seasonal_naive"]) == (0.0, 0.0, 0.0)
    # the same day again replaces rather than adds
    forecast.run(settings, engine, now=now + timedelta(hours=1))
    with engine.connect() as conn:
        assert len(latest_snapshots(conn)) == 2


def test_snapshot_leaves_out_a_day_collected_before_it_ended(engine, db_url, tmp_path, now):
    # 19 Nov was collected at 15:00 that day: 3.0 so far instead of 12; a forecast that read it
    # would start from a drop. It is left out and forecast instead.
    rows = _cost_rows(now)
    with engine.begin() as conn:
        upsert(conn, cost_daily, [r for r in rows if r["day"] < date(2026, 11, 19)], now=now)
        upsert(conn, cost_daily, [{**r, "billed_cost": r["billed_cost"] / 4, "effective_cost": r["effective_cost"] / 4}
                                  for r in rows if r["day"] == date(2026, 11, 19)],
               now=datetime(2026, 11, 19, 15, tzinfo=UTC))
        assert partial_days(conn, date(2026, 11, 1), date(2026, 11, 19)) == [date(2026, 11, 19)]
    forecast.run(_settings(db_url, tmp_path, forecast={"horizon_days": 10}), engine, now=now)
    with engine.connect() as conn:
        total = latest_snapshots(conn, method="pipepulse").set_index("subject").loc["total"]
        pts = snapshot_points(conn, int(total["snapshot_id"]))
    assert total["train_end"] == date(2026, 11, 18) and pts["day"].tolist()[0] == date(2026, 11, 19)
    assert pts["mean"].tolist() == pytest.approx([12.0] * 12)
    assert total["month_end_mean"] == pytest.approx(360.0)  # 18 x 12 spent + 12 x 12 to come


def test_score_ours_and_aws_against_actuals(engine, db_url, tmp_path, now):
    with engine.begin() as conn:
        upsert(conn, cost_daily, _cost_rows(now), now=now)
        days = [date(2026, 11, 10) + timedelta(days=i) for i in range(12)]
        save_snapshot(conn, created_at=datetime(2026, 11, 10, 6, tzinfo=UTC), method="aws", subject="total",
                      level=0.8, points=pd.DataFrame({"day": days, "mean": 13.0, "lower": 12.5, "upper": 14.0}))
        save_snapshot(conn, created_at=datetime(2026, 11, 10, 6, tzinfo=UTC), method="pipepulse", subject="total",
                      level=0.8, points=pd.DataFrame({"day": days, "mean": 12.0, "lower": 11.0, "upper": 13.0}))
    table = score_snapshots(_settings(db_url, tmp_path), engine, now=now).set_index("method")
    # settled: days up to 18 Nov (two days' restatement margin): 10..18 Nov = 9 days
    aws = table.loc["aws"]
    assert (aws["days"], aws["mae"], aws["coverage"]) == (9, 1.0, 0.0)
    assert aws["bias"] == pytest.approx(1 / 12)
    ours = table.loc["pipepulse"]
    assert (ours["days"], ours["mae"], ours["bias"], ours["coverage"]) == (9, 0.0, 0.0, 1.0)


def test_forecast_options_errors(tmp_path):
    s = _settings("sqlite://", tmp_path, forecast={"level": 80})
    with pytest.raises(ConfigError, match=r"\[forecast\] level"):
        forecast_options(s)
    with pytest.raises(ConfigError, match=r"\[forecast\] horizon: unknown key; did you mean horizon_days\?"):
        forecast_options(_settings("sqlite://", tmp_path, forecast={"horizon": 3}))


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIPEPULSE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PIPEPULSE_CONFIG", raising=False)
    return tmp_path


def _write(path, days, amount=lambda i: 100.0 + (i % 7) * 10):
    lines = ["date,amount"] + [f"{date(2026, 9, 1) + timedelta(days=i)},{amount(i)}" for i in range(days)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_round_trip(cli_env, capsys):
    src = _write(cli_env / "in.csv", 42)
    out = cli_env / "out.csv"
    assert main(["forecast", str(src), "--horizon", "5", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "MASE" in err and "80% interval coverage 100.0%" in err
    # an exact weekly pattern: seasonal-naive is exact from the first week on (the models that
    # know the week tie with it later: a tie goes to the simpler); the backtest shows the two
    # simple forecasts' errors beside its own
    assert "model seasonal-naive, chosen by the series' own backtest (165 forecasts" in err
    assert "MAE 0.000 (last-value 23.939, seasonal-naive 0.000)" in err
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["date", "mean", "lower", "upper", "model"]
    assert set(frame["model"]) == {"seasonal-naive"}
    assert frame["date"].tolist() == ["2026-10-13", "2026-10-14", "2026-10-15", "2026-10-16", "2026-10-17"]
    # 42 days of an exact weekly pattern from Tue 1 Sep: day i is worth 100 + (i % 7) x 10
    assert frame["mean"].tolist() == pytest.approx([100.0 + (i % 7) * 10 for i in range(42, 47)])
    assert main(["forecast", str(src), "--horizon", "3", "--level", "0.9"]) == 0
    stdout = capsys.readouterr().out
    assert stdout.splitlines()[0] == "date,mean,lower,upper,model" and len(stdout.splitlines()) == 4


def test_cli_leaves_out_today(cli_env, capsys):
    # the file's last row is today's spend so far: a drop that is not one
    src = _write(cli_env / "in.csv", 43, amount=lambda i: 30.0 if i == 42 else 100.0 + (i % 7) * 10)
    out = cli_env / "out.csv"
    assert main(["forecast", str(src), "--horizon", "3", "--out", str(out), "--today", "2026-10-13"]) == 0
    err = capsys.readouterr().err
    assert "left out 1 day(s) from 2026-10-13 on: today (2026-10-13) is not over; the forecast starts with it" in err
    frame = pd.read_csv(out)
    assert frame["date"].tolist() == ["2026-10-13", "2026-10-14", "2026-10-15"]
    assert frame["mean"].tolist() == pytest.approx([100.0 + (i % 7) * 10 for i in range(42, 45)])


def test_cli_errors(cli_env, capsys):
    bad = cli_env / "bad.csv"
    bad.write_text("date,amount\n2026-01-01,1\n2026-01-2x,2\n")
    assert main(["forecast", str(bad), "--horizon", "3"]) == 1
    assert f"{bad}, line 3: date '2026-01-2x' is not YYYY-MM-DD" in capsys.readouterr().err
    gap = _write(cli_env / "gap.csv", 30)
    gap.write_text("\n".join(line for line in gap.read_text().splitlines() if not line.startswith("2026-09-10")) + "\n")
    assert main(["forecast", str(gap), "--horizon", "3"]) == 1
    assert "1 day(s) missing between 2026-09-01 and 2026-09-30, first 2026-09-10" in capsys.readouterr().err
    assert main(["forecast", str(gap), "--horizon", "3", "--fill-missing"]) == 0
    capsys.readouterr()
    short = _write(cli_env / "short.csv", 9)
    assert main(["forecast", str(short), "--horizon", "3"]) == 1
    assert f"{short}: history too short: 9 days" in capsys.readouterr().err
    header = cli_env / "header.csv"
    header.write_text("day,cost\n2026-01-01,1\n")
    assert main(["forecast", str(header), "--horizon", "3"]) == 1
    assert "line 1: header must name columns date and amount" in capsys.readouterr().err
    assert main(["forecast", str(short)]) == 1
    assert "--horizon N is required" in capsys.readouterr().err


def test_cli_snapshot_on_empty_store(cli_env, db_url, monkeypatch, capsys):
    monkeypatch.setenv("PIPEPULSE_DATABASE_URL", db_url)
    assert main(["forecast", "snapshot"]) == 0
    assert capsys.readouterr().out.strip() == "stored 0 forecast snapshot(s) (no subject had enough history)"
    assert main(["forecast", "score"]) == 0
    assert "no stored forecast" in capsys.readouterr().out
