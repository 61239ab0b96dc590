"""A learned alternative to the detector's hand-set rule, compared with leave-one-category-out.

    python -m bench.nab_learned [--fold-spans]

The hand-set rule flags a point when any path's deviation-to-threshold ratio passes the
sensitivity (and the seasonal gate). The learned one feeds the same online, per-point
features to a logistic regression (scikit-learn) and flags a point when the predicted
probability passes a cut-off, with the same onset-only reporting:

* ``log(1 + r)`` of each path (point, window mean, seasonal path), ``r`` the deviation over the
  learned quantile (before the sensitivity), signed by the deviation's direction;
* how far outside the daily seasonal envelope the point and the window mean are (in robust
  spreads, clipped to +-10; 0 before a day of history).

Training labels: the first half of each NAB window (where a detection scores most) is 1,
points outside windows 0, the rest of a window is left out; the first 15% of a file (NAB's
probation) is left out too. The cut-off and the quiet time between reports are chosen on the
training files with ``bench.nab_loco.objective``. For each of the seven categories, the model
is fitted and tuned on the other six and scored on the one left out, beside the hand-set
rule's left-out scores from ``bench/nab_loco.json``. The spans (baseline, history, scale) are
the recorded choice's (chosen on all 47 files, the left-out kind included); ``--fold-spans``
computes each fold's features with the spans chosen without its kind instead.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from bench.nab_data import aggregate, load, score_file
from bench.nab_loco import HOUR, RECORDED, Evaluator, Knobs, objective
from insights.anomaly import onsets

__all__ = ["features", "main"]

SUPPRESS = [3 * HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR, 48 * HOUR]


def features(ev: Evaluator, k: Knobs, i: int) -> np.ndarray:
    """(points, features) for file ``i`` under the spans of ``k``; every column is online."""
    cfg = k.config(ev.step[i])
    f = ev._features(i, cfg)
    cols = []
    for sc in f.scales:
        dev = sc.z - sc.base
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.abs(dev) / sc.q
        r = np.where(np.isfinite(r), r, np.where(np.abs(dev) > 0, 50.0, 0.0))
        r = np.where(np.isfinite(sc.q) & np.isfinite(dev), np.minimum(r, 50.0), 0.0)
        cols.append(np.sign(np.nan_to_num(dev)) * np.log1p(r))
        cols.append(np.log1p(r))
        for (mU, mL, sU, sL, cnt), _ in sc.gates:
            with np.errstate(divide="ignore", invalid="ignore"):
                e = np.maximum((sc.z - mU) / np.maximum(sU, 1e-9), (mL - sc.z) / np.maximum(sL, 1e-9))
            cols.append(np.where(cnt >= 1, np.clip(np.nan_to_num(e), -10, 10), 0.0))
    return np.vstack([c[0] for c in cols]).T


def labels(s) -> np.ndarray:
    """1 in the first half of a window, 0 outside windows, -1 (left out) elsewhere."""
    n = len(s.values)
    y = np.zeros(n)
    for a, b in s.spans:
        y[a : b + 1] = -1
        y[a : a + (b - a + 1) // 2] = 1
    y[: int(np.ceil(s.probation))] = -1
    return y


def flags_of(p: np.ndarray, cut: float, suppress: int, warmup: int) -> np.ndarray:
    anomalous = p > cut
    anomalous[:warmup] = False
    return onsets(anomalous, suppress)


def main(argv: list[str] | None = None) -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    fold_spans = "--fold-spans" in (sys.argv[1:] if argv is None else argv)
    saved = json.loads(RECORDED.read_text())
    chosen = Knobs(**saved["chosen"])
    folds = {c: Knobs(**k) for c, k in saved["folds"].items()}
    ev = Evaluator(load())
    X = [features(ev, chosen, i) for i in range(len(ev.series))]
    Y = [labels(s) for s in ev.series]
    cats = [s.category for s in ev.series]
    steps = ev.step
    rows: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    pooled_learned, pooled_rule = [], []
    for cat in sorted(set(cats)):
        if fold_spans:
            X = [features(ev, folds[cat], i) for i in range(len(ev.series))]
        train = [i for i, c in enumerate(cats) if c != cat]
        test = [i for i, c in enumerate(cats) if c == cat]
        xt = np.vstack([X[i][Y[i] >= 0] for i in train])
        yt = np.concatenate([Y[i][Y[i] >= 0] for i in train])
        scaler = StandardScaler().fit(xt)
        model = LogisticRegression(class_weight="balanced", max_iter=500).fit(scaler.transform(xt), yt)
        P = [model.predict_proba(scaler.transform(X[i]))[:, 1] for i in range(len(X))]
        allp = np.concatenate([P[i] for i in train])
        cuts = np.quantile(allp, [0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999])
        best, best_v = None, -np.inf
        for cut in cuts:
            for sup in SUPPRESS:
                table = np.array([score_file(ev.series[i], flags_of(P[i], cut, max(1, round(sup / steps[i])),
                                                                    max(12, round(86400 / steps[i])))) for i in train])
                v = objective(table, [cats[i] for i in train])
                if v > best_v:
                    best, best_v = (cut, sup), v
        assert best is not None
        cut, sup = best
        got = np.array([score_file(ev.series[i], flags_of(P[i], cut, max(1, round(sup / steps[i])),
                                                           max(12, round(86400 / steps[i])))) for i in test])
        rule = ev.scores(folds[cat])[test]
        pooled_learned.append(got)
        pooled_rule.append(rule)
        rows.append((cat, aggregate(map(tuple, got)), aggregate(map(tuple, rule))))
        print(f"{cat}: cut {cut:.4f}, suppress {sup / HOUR:g} h", file=sys.stderr, flush=True)
    print(f"{'left-out category':<24}{'learned NAB':>12}{'F1':>7}{'FP ev':>7}   {'hand-set NAB':>12}{'F1':>7}{'FP ev':>7}")
    for cat, a, b in rows:
        na = f"{a['nab_standard']:.2f}" if a["windows"] else "-"
        nb = f"{b['nab_standard']:.2f}" if b["windows"] else "-"
        print(f"{cat:<24}{na:>12}{a['event_f1']:>7.3f}{a['fp_events']:>7}   {nb:>12}{b['event_f1']:>7.3f}{b['fp_events']:>7}")
    a = aggregate(map(tuple, np.concatenate(pooled_learned)))
    b = aggregate(map(tuple, np.concatenate(pooled_rule)))
    print(f"{'all 47, pooled':<24}{a['nab_standard']:>12.2f}{a['event_f1']:>7.3f}{a['fp_events']:>7}   "
          f"{b['nab_standard']:>12.2f}{b['event_f1']:>7.3f}{b['fp_events']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
