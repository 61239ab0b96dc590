"""``pipepulse anomalies scan`` round trip, malformed input, and the NAB evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli.main import main


@pytest.fixture(autouse=True)
def _no_config(monkeypatch, tmp_path):
    monkeypatch.delenv("PIPEPULSE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def write_series(path, n=3 * 288, spike=700):
    ts = pd.date_range("2026-11-01", periods=n, freq="5min")
    x = 20 + np.random.default_rng(4).normal(0, 1, n)
    x[spike] = 45.0
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": x.round(4)}).to_csv(path, index=False)
    return ts


def test_scan_round_trip(tmp_path, capsys):
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_series(src)
    assert main(["anomalies", "scan", str(src), "--out", str(out)]) == 0
    got = pd.read_csv(out)
    given = pd.read_csv(src)
    assert list(got.columns) == ["timestamp", "value", "score", "is_anomaly"]
    assert got["timestamp"].tolist() == given["timestamp"].tolist()
    assert got["value"].tolist() == given["value"].tolist()
    assert got.index[got["is_anomaly"] == 1].tolist() == [700]
    assert got["score"].between(0, 1).all()
    assert got["score"].iloc[700] > 0.5
    assert "864 points, 1 anomalies" in capsys.readouterr().err
    # to standard output when no --out
    assert main(["anomalies", "scan", str(src)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "timestamp,value,score,is_anomaly" and len(printed) == 865


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("timestamp,value\n2026-11-01 00:00:00,1\n2026-11-01 00:05:00,abc\n", "line 3: value 'abc' is not a number"),
        ("time,amount\n2026-11-01 00:00:00,1\n", "line 1: header is 'time,amount', missing timestamp and/or value"),
        ("timestamp,value\nyesterday,1\n", "line 2: timestamp 'yesterday' is not a date-time"),
        ("timestamp,value\n2026-11-01 00:00:00,1,2\n", "line 2: 3 fields, expected 2"),
        ("timestamp,value\n", "no data lines after the header"),
        ("", "the file is empty"),
    ],
)
def test_scan_malformed_input_names_file_and_line(tmp_path, capsys, content, message):
    src = tmp_path / "bad.csv"
    src.write_text(content)
    assert main(["anomalies", "scan", str(src), "--out", str(tmp_path / "o.csv")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"pipepulse: error: {src}")
    assert message in err
    assert not (tmp_path / "o.csv").exists()


def test_scan_missing_file(tmp_path, capsys):
    assert main(["anomalies", "scan", str(tmp_path / "nope.csv")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_nab_scores_beat_numenta(shared_dir):
    """The whole NAB AWS evaluation through the CLI code path, scored by the shared scorer."""
    from bench.nab_eval import evaluate

    result = evaluate(shared_dir / "data" / "nab-aws")
    ours, numenta = result["results"]["ours"], result["results"]["numenta"]
    assert len(result["files"]) == 8 and result["not_scored"] == []
    assert numenta["nab_standard"] == 78.9 and numenta["event_f1"] == 0.611
    assert ours["nab_standard"] > 78.9, result["table"]
    assert ours["event_f1"] > 0.61, result["table"]


def test_scan_says_when_timestamps_step_back_or_repeat(tmp_path, capsys):
    """The scan keeps file order (a live stream's order), so a file out of order is scored as
    given; it says so, with the first line of each kind, instead of passing silently."""
    src = tmp_path / "in.csv"
    src.write_text("timestamp,value\n2026-11-01 00:10,1\n2026-11-01 00:05,2\n\n2026-11-01 00:05,3\n2026-11-01 00:20,4\n")
    assert main(["anomalies", "scan", str(src), "--out", str(tmp_path / "out.csv")]) == 0
    err = capsys.readouterr().err
    assert f"{src}: note: 1 line(s) step back in time (first: line 3) and 1 repeat the timestamp before them (first: line 5)" in err
    assert "4 points, 0 anomalies" in err
    assert pd.read_csv(tmp_path / "out.csv")["value"].tolist() == [1, 2, 3, 4]  # file order kept
    # in order: no note
    ordered = tmp_path / "ordered.csv"
    write_series(ordered, n=300, spike=100)
    assert main(["anomalies", "scan", str(ordered), "--out", str(tmp_path / "o2.csv")]) == 0
    assert "note" not in capsys.readouterr().err
