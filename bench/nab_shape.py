"""A shape (nearest-neighbour) path beside the hand-set rule, checked with leave-one-category-out.

    python -m bench.nab_shape [--window-hours 24] [--sensitivity 1.25,1.5]

Not in the detector: an experiment on the 47 NAB files (``bench.nab_data``). The path asks
whether the recent shape of a series is unlike any earlier one, online:

* the last ``--window-hours`` as four equal segment means (a window ending at each point);
* its nearest earlier window (Euclidean, candidates ending every third point, at least one
  window before the point, so the two never overlap);
* the distance: the largest of the four differences from that neighbour, over the range of
  every earlier point (so it is in the same units on every series);
* flagged when the distance passes ``sensitivity`` x the largest distance of the learned
  history (``insights.anomaly._learned``: the knobs' history, quantile and refresh; distances
  that were anomalies left out: a conformal threshold from the series' own past), from the
  fifth day on.

Its flags are ORed with the rule's anomalous points under each recorded configuration of
``bench/nab_loco.json`` and reported as onsets with that configuration's quiet time. Printed:
the rule alone; the path at each fixed ``--sensitivity`` (not chosen per fold: a left-out score
is then the fold's rule plus the same path); and the path's sensitivity chosen per fold on the
other six categories (from ``CHOICES`` or off, by ``bench.nab_loco.objective``), which is the
honest left-out figure for a searched knob. On an explained detection the neighbour gives the
expected value (its segment mean) and the band (that +- the threshold in the series' units).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np

from bench.nab_data import aggregate, load, score_file
from bench.nab_loco import RECORDED, Evaluator, Knobs, objective
from insights import anomaly as A

__all__ = ["left_neighbour", "main"]

SEGMENTS = 4
STRIDE = 3  # candidate windows end every this many points
CHOICES = (1.0, 1.1, 1.25, 1.35, 1.5, 2.0)
_BLOCK = 2048  # query points per distance block


def _segments(x: np.ndarray, w: int) -> np.ndarray:
    """(n, SEGMENTS): the means of the four segments of the ``w`` points ending at each point
    (truncated at the start of the series)."""
    k = max(1, w // SEGMENTS)
    cs = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(len(x))
    cols = []
    for j in range(SEGMENTS):
        end = np.maximum(idx - (SEGMENTS - 1 - j) * k, 0)
        lo = np.maximum(end - k + 1, 0)
        cols.append((cs[end + 1] - cs[lo]) / (end + 1 - lo))
    return np.stack(cols, axis=1)


def left_neighbour(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Per point: the largest segment-mean difference from its nearest earlier window (inf
    where there is none yet), and where that window ends (-1 where none)."""
    V = _segments(x, w)
    n = len(x)
    cand = np.arange(w - 1, n, STRIDE)
    C = V[cand]
    c2 = (C**2).sum(axis=1)
    dist, where = np.full(n, np.inf), np.full(n, -1)
    for a in range(0, n, _BLOCK):
        t = np.arange(a, min(n, a + _BLOCK))
        Q = V[t]
        D = (Q**2).sum(axis=1)[:, None] + c2[None, :] - 2 * Q @ C.T
        D[cand[None, :] > (t[:, None] - w)] = np.inf
        j = np.argmin(D, axis=1)
        ok = np.isfinite(D[np.arange(len(t)), j])
        dist[t] = np.where(ok, np.abs(Q - C[j]).max(axis=1), np.inf)
        where[t] = np.where(ok, cand[j], -1)
    return dist, where


class ShapePath:
    """The path's flags per file, sensitivity and configuration (distances cached per file)."""

    def __init__(self, ev: Evaluator, window_seconds: float):
        self.ev = ev
        self.window = window_seconds
        self._dist: dict[int, np.ndarray] = {}
        self._q: dict[tuple, np.ndarray] = {}

    def distance(self, i: int) -> np.ndarray:
        if i not in self._dist:
            x = self.ev.series[i].values
            w = max(SEGMENTS, int(round(self.window / self.ev.step[i])) // SEGMENTS * SEGMENTS)
            d, _ = left_neighbour(x, w)
            hi, lo = np.maximum.accumulate(x), np.minimum.accumulate(x)
            rng = np.concatenate([[0.0], (hi - lo)[:-1]])
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where((rng > 0) & np.isfinite(d), d / rng, 0.0)
            self._dist[i] = z
        return self._dist[i]

    def flags(self, i: int, k: Knobs, sensitivity: float) -> np.ndarray:
        cfg = k.config(self.ev.step[i])
        key = (i, cfg.history, cfg.quantile, cfg.refresh, cfg.warmup, sensitivity)
        z = self.distance(i)
        if key not in self._q:
            self._q[key] = A._learned(z[None], np.zeros((1, len(z)), dtype=bool), cfg, sensitivity)[0]
        warm = np.arange(len(z)) >= A.INTRADAY["record_warmup"] / self.ev.step[i]  # the record path's warm-up
        return (z > sensitivity * self._q[key]) & warm


def scores(ev: Evaluator, path: ShapePath, k: Knobs, sensitivity: float | None, files: Sequence[int]) -> np.ndarray:
    """(files, 4) as ``Evaluator.scores``: the rule under ``k``, ORed with the path (None: off)."""
    rows = []
    for i in files:
        cfg = k.config(ev.step[i])
        anomalous = A._decide(ev._features(i, cfg), cfg, explain=False).anomalous[0]
        if sensitivity is not None:
            anomalous = anomalous | path.flags(i, k, sensitivity)
        rows.append(score_file(ev.series[i], A.onsets(anomalous, cfg.suppress)))
    return np.array(rows, dtype=float)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--window-hours", type=float, default=24.0)
    p.add_argument("--sensitivity", default="1.25,1.5", help="comma-separated fixed sensitivities to report")
    a = p.parse_args(argv)
    saved = json.loads(RECORDED.read_text())
    chosen = Knobs(**saved["chosen"])
    folds = {c: Knobs(**k) for c, k in saved["folds"].items()}
    ev = Evaluator(load())
    path = ShapePath(ev, a.window_hours * 3600.0)
    cats = [s.category for s in ev.series]
    everything = list(range(len(ev.series)))

    def pick(k: Knobs, files: list[int]) -> float | None:
        options: list[float | None] = [None, *CHOICES]
        vals = [(objective(scores(ev, path, k, s, files), [cats[i] for i in files]), -j) for j, s in enumerate(options)]
        return options[-max(vals)[1]]

    variants: list[tuple[str, object]] = [("rule alone", None)]
    variants += [(f"+ shape path at {float(s):g}", float(s)) for s in a.sensitivity.split(",") if s]
    variants.append(("+ shape path, sensitivity chosen per fold", "fold"))
    print(f"shape path: the last {a.window_hours:g} h as {SEGMENTS} segment means; configurations from bench/{RECORDED.name}")
    for title, sens in variants:
        s_in = pick(chosen, everything) if sens == "fold" else sens
        print(f"\n{title}" + (f" (chosen on all 47: {s_in})" if sens == "fold" else ""))
        print(f"{'category':<24}{'in-sample NAB':>14}{'F1':>7}{'left-out NAB':>14}{'F1':>7}{'gap':>7}  FP ev  fold's choice")
        pin, pout = [], []
        for cat in sorted(set(cats)):
            files = [i for i in everything if cats[i] == cat]
            s_out = pick(folds[cat], [i for i in everything if cats[i] != cat]) if sens == "fold" else sens
            pin.append(scores(ev, path, chosen, s_in, files))  # type: ignore[arg-type]
            pout.append(scores(ev, path, folds[cat], s_out, files))  # type: ignore[arg-type]
            x, y = aggregate(map(tuple, pin[-1])), aggregate(map(tuple, pout[-1]))
            if x["windows"]:
                print(f"{cat:<24}{x['nab_standard']:>14.2f}{x['event_f1']:>7.3f}{y['nab_standard']:>14.2f}{y['event_f1']:>7.3f}"
                      f"{x['nab_standard'] - y['nab_standard']:>7.2f}  {y['fp_events']:>5}  {s_out if sens == 'fold' else ''}")
            else:
                print(f"{cat:<24}{'no windows':>14}{'':>7}{'no windows':>14}{'':>7}{'':>7}  {y['fp_events']:>5}  "
                      f"{s_out if sens == 'fold' else ''}")
        x, y = aggregate(map(tuple, np.concatenate(pin))), aggregate(map(tuple, np.concatenate(pout)))
        print(f"{'all 47, pooled':<24}{x['nab_standard']:>14.2f}{x['event_f1']:>7.3f}{y['nab_standard']:>14.2f}{y['event_f1']:>7.3f}"
              f"{x['nab_standard'] - y['nab_standard']:>7.2f}  {y['fp_events']:>5}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
