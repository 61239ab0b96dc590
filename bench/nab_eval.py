"""NAB evaluation: run ``pipepulse anomalies scan`` (its defaults) over labelled NAB series and
print the shared scorer's side-by-side tables (ours vs the published detectors).

    python -m bench.nab_eval [--all] [--rates] [--data-root DIR] [--keep DIR] [--json]

Without ``--all``: the 8 AWS CloudWatch files of ``../shared/data/nab-aws``. With ``--all``:
those, then the 39 files of ``../shared/data/nab-more`` with a table per category, and
whether the targets of issue #16 are met (nab-more: above ARTime's NAB standard score and
contextOSE's event F1; nab-aws: above numenta on both). ``--rates`` adds the reported
detections per file beside the published detectors' (onsets of their flagged runs at their
standard-profile thresholds): a detector that is too quiet shows there first.

One configuration for every file (the CLI defaults); the labels are only read by the scorer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_DATA = SHARED / "data" / "nab-aws"
MORE_DATA = SHARED / "data" / "nab-more"
SCORER = SHARED / "tools" / "nab_score.py"
PUBLISHED = {"numenta": (78.9, 0.61)}
# issue #16's targets: (data root, detector to beat on NAB standard, its score, detector to
# beat on event F1, its F1)
TARGETS = {"nab-aws": ("numenta", 78.9, "numenta", 0.611), "nab-more": ("ARTime", 77.34, "contextOSE", 0.700)}

__all__ = ["evaluate", "flag_rates", "main", "scan_dir"]


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
    """Scan, score with the shared scorer (a table per category where the root has
    ``categories.json``); returns its JSON plus ``table`` (the printed tables) and ``flags``
    (reported detections per file); prints nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(keep) if keep else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        names = scan_dir(data_root / "data", out)
        args = [sys.executable, str(SCORER), "--data", str(data_root / "data"), "--windows", str(data_root / "windows.json"),
                "--baselines", str(data_root / "baselines"), "--ours", str(out)]
        cats = data_root / "categories.json"
        extra = ["--categories", str(cats)] if cats.exists() else []
        table = subprocess.run([*args, *extra], check=True, capture_output=True, text=True).stdout
        result = json.loads(subprocess.run([*args, "--json"], check=True, capture_output=True, text=True).stdout)
        result["flags"] = {n: int(pd.read_csv(out / n)["is_anomaly"].sum()) for n in names}
    result["table"] = table
    return result


def flag_rates(data_root: Path, ours: dict[str, int]) -> str:
    """Reported detections per file, ours beside each published detector's flagged-run onsets."""
    thresholds = json.loads((data_root / "baselines" / "thresholds.json").read_text())
    dets = [d for d in ("numenta", "ARTime", "contextOSE") if (data_root / "baselines" / d).is_dir()]
    windows = json.loads((data_root / "windows.json").read_text())
    lines = [f"{'file':<42}{'windows':>8}{'ours':>6}" + "".join(f"{d:>12}" for d in dets)]
    for name, n in ours.items():
        row = f"{name[:41]:<42}{len(windows.get(name, [])):>8}{n:>6}"
        for d in dets:
            flags = pd.read_csv(data_root / "baselines" / d / name)["anomaly_score"].to_numpy() >= thresholds[d]
            row += f"{int(np.sum(flags & ~np.concatenate([[False], flags[:-1]]))):>12}"
        lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    p.add_argument("--all", action="store_true", help="nab-aws and nab-more (per category), with the issue's targets")
    p.add_argument("--rates", action="store_true", help="also print the reported detections per file")
    p.add_argument("--keep", type=Path, help="write the scan outputs here instead of a temporary folder")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    roots = [DEFAULT_DATA, MORE_DATA] if a.all else [a.data_root]
    results = {}
    for root in roots:
        results[root.name] = evaluate(root, keep=(a.keep / root.name) if a.keep else None)
    if a.json:
        print(json.dumps({k: {f: v for f, v in r.items() if f != "table"} for k, r in results.items()}, indent=1))
        return 0
    for name, result in results.items():
        print(f"== {name} ==")
        print(result["table"], end="")
        if a.rates:
            print(f"\nreported detections per file ({name}):")
            print(flag_rates(SHARED / "data" / name if a.all else a.data_root, result["flags"]))
        print()
    for name, result in results.items():
        ours = result["results"]["ours"]
        if name in TARGETS:
            nab_det, nab, f1_det, f1 = TARGETS[name]
            ok_nab, ok_f1 = ours["nab_standard"] > nab, ours["event_f1"] > f1
            print(f"{name}: ours NAB {ours['nab_standard']:.2f} {'>' if ok_nab else '<='} {nab_det} {nab}; "
                  f"event F1 {ours['event_f1']:.3f} {'>' if ok_f1 else '<='} {f1_det} {f1}: "
                  f"target {'met' if ok_nab and ok_f1 else 'NOT met'}")
        else:
            for det, (nab, f1) in PUBLISHED.items():
                verdict = "beats" if ours["nab_standard"] > nab and ours["event_f1"] > f1 else "does NOT beat"
                print(f"ours {ours['nab_standard']:.2f} NAB / {ours['event_f1']:.3f} F1 {verdict} {det} (published {nab} / {f1})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
