"""The 47 labelled NAB series (``nab-aws`` + ``nab-more``) and an in-process NAB scorer.

Only the benchmark scripts read the labels; the detector never sees them. ``score_file``
is ``../shared/tools/nab_score.py``'s ``score_file`` on index arrays (the same standard
profile: 15% probation, scaled sigmoid for the earliest detection in a window, 0.11 per
detection outside windows, less just after one, 1 per missed window), so a parameter search
can score thousands of detector outputs without writing CSVs; ``bench.nab_eval`` checks the
final figures with the shared scorer itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
AWS_ROOT = SHARED / "data" / "nab-aws"
MORE_ROOT = SHARED / "data" / "nab-more"
AWS = "realAWSCloudwatch"  # the category the 8 nab-aws files belong to in NAB
TP_W, FP_W, FN_W = 1.0, 0.11, 1.0

__all__ = ["AWS", "Labelled", "aggregate", "load", "score_file"]


@dataclass(frozen=True)
class Labelled:
    """One series with its windows (index spans, inclusive) and NAB category."""

    name: str
    category: str
    root: Path
    timestamps: pd.DatetimeIndex
    values: np.ndarray
    spans: tuple[tuple[int, int], ...]

    @property
    def probation(self) -> float:
        n = len(self.values)
        return min(math.floor(0.15 * n), 0.15 * 5000)


def load(roots: Iterable[Path] = (AWS_ROOT, MORE_ROOT)) -> list[Labelled]:
    """Every CSV of each root's ``data/`` with its windows; category from ``categories.json``
    (``realAWSCloudwatch`` where a root has none)."""
    out = []
    for root in roots:
        windows = {Path(k).name: v for k, v in json.loads((root / "windows.json").read_text()).items()}
        cat_file = root / "categories.json"
        cats = json.loads(cat_file.read_text()) if cat_file.exists() else {}
        for path in sorted((root / "data").glob("*.csv")):
            frame = pd.read_csv(path)
            raw = frame["timestamp"].astype(str).str[:19]
            index = {t: i for i, t in enumerate(raw)}
            spans = tuple((index[a[:19]], index[b[:19]]) for a, b in windows.get(path.name, []))
            out.append(Labelled(path.name, cats.get(path.name, AWS), root, pd.DatetimeIndex(pd.to_datetime(raw, utc=True)),
                                frame["value"].to_numpy(float), spans))
    return out


def score_file(series: Labelled, flags: np.ndarray) -> tuple[float, int, int, int]:
    """(NAB raw score, windows hit, windows, false-positive events) of boolean ``flags``."""
    n = len(series.values)
    det = np.asarray(flags, dtype=bool).copy()
    det[: int(math.ceil(series.probation))] = False
    inside = np.full(n, -1)
    for k, (a, b) in enumerate(series.spans):
        inside[a : b + 1] = k
    best = [-FN_W] * len(series.spans)
    hit = [False] * len(series.spans)
    for i in np.flatnonzero(det & (inside >= 0)):
        k = int(inside[i])
        a, b = series.spans[k]
        width = b - a + 1
        s = _sigmoid(-(b - i + 1) / width) * TP_W / _sigmoid(-1.0)
        best[k] = max(best[k], s)
        hit[k] = True
    fp_total, fp_events = 0.0, 0
    out = np.flatnonzero(det & (inside < 0))
    if len(out):
        # the last window that ended before each false detection (its right edge and width)
        rights = np.array([b for _, b in series.spans])
        widths = np.array([b - a + 1 for a, b in series.spans])
        for i in out:
            before = np.flatnonzero(rights < i)
            if len(before) == 0:
                fp_total -= FP_W
            else:
                k = before[-1]
                fp_total += _sigmoid(abs(rights[k] - i) / float(widths[k] - 1)) * FP_W
        # a run of consecutive detections outside windows is one event
        fp_events = int(np.sum(np.diff(np.concatenate([[-2], out])) > 1))
    return sum(best) + fp_total, sum(hit), len(series.spans), fp_events


def _sigmoid(pos: float) -> float:
    return -1.0 if pos > 3.0 else 2 / (1 + math.exp(5 * pos)) - 1.0


def aggregate(parts: Iterable[tuple[float, int, int, int]]) -> dict[str, float]:
    """NAB standard score and event F1 over files, as the shared scorer pools them."""
    raw = hits = nwin = fpe = 0.0
    for r, h, w, e in parts:
        raw, hits, nwin, fpe = raw + r, hits + h, nwin + w, fpe + e
    nab = 100 * (raw + FN_W * nwin) / ((TP_W + FN_W) * nwin) if nwin else float("nan")
    recall = hits / nwin if nwin else 0.0
    precision = hits / (hits + fpe) if hits + fpe else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"nab_standard": nab, "windows_hit": int(hits), "windows": int(nwin), "fp_events": int(fpe),
            "precision": precision, "recall": recall, "event_f1": f1}


def by_category(series: list[Labelled], scores: Mapping[str, tuple[float, int, int, int]]) -> dict[str, dict[str, float]]:
    """``aggregate`` per category, keyed by category name."""
    cats: dict[str, list] = {}
    for s in series:
        cats.setdefault(s.category, []).append(scores[s.name])
    return {c: aggregate(v) for c, v in sorted(cats.items())}
