"""Peak memory of ``pipepulse forecast`` and ``pipepulse anomalies scan`` at their stated limits
(issue #19: ``forecast --horizon 2000000`` was killed by the kernel at 20 GB).

Each command runs in a process of its own; its peak resident memory (``wait4``'s ``ru_maxrss``)
is printed beside a baseline measured in the same run: a process that only imports what the
command imports (pandas, numpy, the insights module). Run under ``nice -n 19``:

    python -m bench.bench_cli_memory [--points 100000,200000,400000]   # also 150000: the default limit

(The scan's detector takes about 0.45 ms a point on a shared 2-core machine, so a million points
is minutes; memory grows linearly, so the limit's figure is the per-point slope times it.)

The limits themselves (``MAX_HORIZON``, ``MAX_HISTORY_DAYS`` in ``cli/commands/forecast.py``,
``MAX_POINTS`` in ``cli/commands/anomalies.py``) are what bounds the memory: past them the
command stops with a one-line error before reading more.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np


def _peak_mb(cmd: list[str]) -> tuple[float, int]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024.0, proc.returncode


def _series(path: Path, points: int) -> None:
    rng = np.random.default_rng(7)
    values = 100 + rng.normal(0, 5, points).cumsum() * 0.01
    start = np.datetime64("2024-01-01T00:00:00")
    stamps = start + np.arange(points).astype("timedelta64[m]")
    with path.open("w") as fh:
        fh.write("timestamp,value\n")
        for t, v in zip(stamps.astype(str), values, strict=True):
            fh.write(f"{t.replace('T', ' ')},{v:.4f}\n")


def _spend(path: Path, days: int) -> None:
    rng = np.random.default_rng(3)
    first = date(2016, 1, 1)
    with path.open("w") as fh:
        fh.write("date,amount\n")
        for i in range(days):
            fh.write(f"{first + timedelta(days=i)},{100 + 10 * np.sin(i / 7) + rng.normal(0, 3):.2f}\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", default="100000,200000,400000", help="anomalies scan sizes")
    args = ap.parse_args(argv)
    py = sys.executable
    cli = [py, "-m", "cli"]
    base_scan, _ = _peak_mb([py, "-c", "import pandas, numpy, insights.anomaly, cli.commands.anomalies"])
    base_fc, _ = _peak_mb([py, "-c", "import pandas, numpy, insights.forecast, cli.commands.forecast"])
    print(f"baseline (imports only): scan {base_scan:,.0f} MB, forecast {base_fc:,.0f} MB")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        print(f"{'command':<44} {'peak MB':>9} {'x baseline':>11} {'exit':>5}")
        for n in (int(x) for x in args.points.split(",")):
            series = tmpdir / f"s{n}.csv"
            _series(series, n)
            mb, rc = _peak_mb([*cli, "anomalies", "scan", str(series), "--out", str(tmpdir / "out.csv")])
            print(f"{'anomalies scan, ' + format(n, ',') + ' points':<44} {mb:>9,.0f} {mb / base_scan:>11.2f} {rc:>5}")
        spend = tmpdir / "spend.csv"
        _spend(spend, 3660)
        today = (date(2016, 1, 1) + timedelta(days=3660)).isoformat()
        for horizon in (30, 366, 2_000_000):
            mb, rc = _peak_mb([*cli, "forecast", str(spend), "--horizon", str(horizon), "--today", today,
                               "--out", str(tmpdir / "fc.csv")])
            print(f"{'forecast, 3,660 days, horizon ' + format(horizon, ','):<44} {mb:>9,.0f} {mb / base_fc:>11.2f} {rc:>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
