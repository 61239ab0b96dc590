"""`pipepulse logs parse`: every aws-shapes example through the command, as a user would run it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cli.main import main

SHAPES = Path("/work/shared/data/aws-shapes")
if not SHAPES.is_dir():
    SHAPES = Path(__file__).resolve().parents[3] / "shared" / "data" / "aws-shapes"
NOT_IN_LINE = {"note", "log", "stream", "executor_id"}  # context or prose, not in the line itself


def _samples(folder: str, key: str) -> list:
    path = SHAPES / folder / "expected.json"
    return [pytest.param(folder, s, id=s["id"]) for s in json.loads(path.read_text())[key]] if path.exists() else []


def _run(monkeypatch, capsys, argv: list[str], stdin: str = "") -> list[dict]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _equal(got: dict, expected: dict) -> None:
    for key, value in expected.items():
        if key in NOT_IN_LINE:
            continue
        if key == "message_first_line" and value.endswith("..."):  # the sample shortened it
            assert got[key].startswith(value[:-3].rstrip(","))
        else:
            assert got.get(key, "absent") == value, key


@pytest.mark.parametrize(("folder", "sample"), _samples("lambda-logs", "samples") + _samples("glue", "logs"))
def test_each_sample_from_standard_input(folder, sample, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    lines = (SHAPES / folder / sample["file"]).read_text(encoding="utf-8").splitlines(keepends=True)
    text = "".join(lines[sample["first_line"] - 1:sample["last_line"]])
    expected = sample["expected"] if isinstance(sample["expected"], list) else [sample["expected"]]
    fmt = "glue" if folder == "glue" else "lambda"
    got = _run(monkeypatch, capsys, ["logs", "parse", "--format", fmt, "-"], text)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        _equal(g, e)


@pytest.mark.parametrize("name", ["platform-text.log", "report-xray.log", "node-tab-app.log", "timeout.log",
                                  "oom.log", "error-json.log", "json-platform.log"])
def test_a_whole_file_gives_its_samples_in_order(name, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    samples = sorted((s for s in json.loads((SHAPES / "lambda-logs" / "expected.json").read_text())["samples"]
                      if s["file"] == name), key=lambda s: s["first_line"])
    got = _run(monkeypatch, capsys, ["logs", "parse", str(SHAPES / "lambda-logs" / name)])
    assert len(got) == len(samples)
    for g, s in zip(got, samples, strict=True):
        _equal(g, s["expected"])
    # the field names come first, in its order
    assert all(list(g)[0] == "kind" for g in got)


def test_a_missing_file_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(["logs", "parse", str(tmp_path / "nope.log")]) == 1
    err = capsys.readouterr().err
    assert "nope.log: cannot read it" in err and len(err.strip().splitlines()) == 1
