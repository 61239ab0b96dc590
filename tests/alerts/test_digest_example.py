"""The example digest (``python -m devkit.digest_example``) renders from its realistic morning."""

from __future__ import annotations

from devkit.digest_example import main


def test_the_example_digest_renders(tmp_path, capsys):
    out = tmp_path / "digest-example.html"
    assert main(["--out", str(out)]) == 0
    subject = "pipepulse daily: 3 failures, 2 missed, 1 late, 2 anomalies, 1 collector failing, spend forecast 5% over budget"
    assert capsys.readouterr().out.splitlines()[0] == subject
    html = out.read_text(encoding="utf-8")
    for section in ("Failed runs (3)", "Late or missed runs (3)", "Anomalies (2)", "Budget (2)", "Collectors failing (1)",
                    "Still open anomalies (1)", "Spend in November 2026", "Runs in this period"):
        assert section in html
    assert "orders run duration" not in html  # the acknowledged anomaly
    text = out.with_suffix(".txt").read_text(encoding="utf-8")
    assert text.startswith(subject + "\n")
    assert b"Content-ID: <spend-sparkline@pipepulse>" in out.with_suffix(".eml").read_bytes()
