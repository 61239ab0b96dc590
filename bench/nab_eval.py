"""NAB evaluation: run ``pipepulse anomalies scan`` over the labelled AWS CloudWatch series and
print the shared scorer's side-by-side table (ours vs the published detectors).

    python -m bench.nab_eval [--data-root ../shared/data/nab-aws] [--keep DIR] [--json]

One configuration for every file (the CLI defaults); the labels are only read by the scorer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_DATA = SHARED / "data" / "nab-aws"
SCORER = SHARED / "tools" / "nab_score.py"
PUBLISHED = {"numenta": (78.9, 0.61)}

__all__ = ["evaluate", "main", "scan_dir"]


def scan_dir(data_dir: Path, out_dir: Path) -> list[str]:
    """Scan every CSV of ``data_dir`` into ``out_dir`` (same names) through the CLI code path."""
    from cli.main import main as cli

    names = sorted(p.name for p in data_dir.glob("*.csv"))
    for name in names:
        code = cli(["anomalies", "scan", str(data_dir / name), "--out", str(out_dir / name)])
        if code != 0:
            raise RuntimeError(f"scan failed for {name} (exit {code})")
    return names


def evaluate(data_root: Path = DEFAULT_DATA, *, keep: Path | None = None) -> dict:
    """Scan, score with the shared scorer; returns its JSON and prints nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(keep) if keep else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        scan_dir(data_root / "data", out)
        args = [sys.executable, str(SCORER), "--data", str(data_root / "data"), "--windows", str(data_root / "windows.json"),
                "--baselines", str(data_root / "baselines"), "--ours", str(out)]
        table = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        result = json.loads(subprocess.run([*args, "--json"], check=True, capture_output=True, text=True).stdout)
    result["table"] = table
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    p.add_argument("--keep", type=Path, help="write the scan outputs here instead of a temporary folder")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    result = evaluate(a.data_root, keep=a.keep)
    if a.json:
        print(json.dumps({k: v for k, v in result.items() if k != "table"}, indent=1))
        return 0
    print(result["table"], end="")
    ours = result["results"]["ours"]
    for name, (nab, f1) in PUBLISHED.items():
        verdict = "beats" if ours["nab_standard"] > nab and ours["event_f1"] > f1 else "does NOT beat"
        print(f"ours {ours['nab_standard']:.2f} NAB / {ours['event_f1']:.3f} F1 {verdict} {name} (published {nab} / {f1})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
