"""Choose the detector's intraday defaults on 47 labelled NAB series, and check how well the
choice generalises with leave-one-category-out (LOCO).

    python -m bench.nab_loco [--quick] [--write]     # the search (~20 min of one core)
    python -m bench.nab_loco --recorded               # the recorded choice, scored again (seconds)
    python -m bench.nab_loco --only record            # the recorded choices, one knob re-chosen (seconds)
    python -m bench.nab_loco --hold history=1814400   # the search with a knob held (not searched)
    python -m bench.nab_loco --starts 10 [--smooth] [--drop-one]   # other selection rules (not kept)

The seven categories are the six of ``nab-more/categories.json`` and the 8 ``nab-aws`` files
(``realAWSCloudwatch``). One search (``search``) picks one configuration on a set of files;
it is run on all 47 files ("in-sample") and once per category on the other six ("left out":
the category is scored with the configuration chosen without it). The gap between the two,
per category and over all files, is the figure that says whether the defaults generalise.

The search, coarse to fine, over the spans of ``insights.anomaly.INTRADAY`` (the second
scale, the baseline, the learned history, the quiet time before a new report) and the
threshold's quantile and sensitivity (``FIXED`` holds the seasonal gate's margin at 3 and the
seasonal path on, as sensitive as the other paths: fewer choices made on the data):

1. a coarse grid (``COARSE``) of every knob;
2. around the best of stage 1, each knob up to two steps either way on a finer ladder
   (``LADDER``), repeated until nothing improves (at most ``ROUNDS`` rounds).

Other selection rules, tried on issue #16's gap and not kept (bench/README.md, "Selection
rules"): ``--starts K`` climbs from the K best of stage 1 and keeps the best climb;
``--smooth`` climbs on the objective averaged over each configuration and its neighbours
(one ladder step of one knob: a flat optimum); ``--drop-one`` takes the lowest objective over
the files with one more category left out. With 1 to 10 starts the gap ran from 1.6 to 10.4:
the folds' choices among near-equal optima, not the detector, set it.

The objective is the mean over categories of the NAB standard score plus 100 x the pooled
event F1 (false alarms on ``artificialNoAnomaly``, which has no windows, count in the F1's
false-positive events). Per-series features (windowed means, baselines, seasonal envelopes,
learned quantiles) are computed once per span and cached; each configuration then costs only
the cheap decision step. One process, no pools: the full run takes about 12 minutes of one
core (4 with warm caches); ``--quick`` (stage 1 only) less.

Labels are read by this script and the scorer only (``bench.nab_data``); the detector
never sees them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.nab_data import AWS, Labelled, aggregate, load, score_file
from insights import anomaly as A

__all__ = ["Knobs", "Evaluator", "loco", "main", "objective", "search"]

HOUR = 3600.0
DAY = 86400.0
ROUNDS = 6
SMOOTH = False  # stage 2 maximises the objective averaged over each configuration's neighbours (``neighbours``)
DROP_ONE = False  # the objective is the lowest over the files with one of their categories left out
STARTS = 1  # stage 2 climbs from this many of the best stage-1 configurations (bench/README.md: more starts did not help)
MAX_CACHED = 30_000  # learned-quantile arrays kept (about 1.5 GB at most on these files)

# the ladders each knob moves on (stage 2); stage 1 uses COARSE
LADDER: dict[str, list[float]] = {
    "scale": [0.0, 0.5 * HOUR, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR],
    "baseline": [0.5 * HOUR, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR],
    "history": [1 * DAY, 2 * DAY, 3 * DAY, 5 * DAY, 7 * DAY, 10 * DAY, 14 * DAY, 21 * DAY, 28 * DAY],
    "suppress": [1 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR, 48 * HOUR, 72 * HOUR],
    "quantile": [0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0],
    "sensitivity": [0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0],
    "margin": [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, float("inf")],
    "season": [0.75, 1.0, 1.5, 2.0, 3.0, float("inf")],
    "record": [0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, float("inf")],
}
COARSE: dict[str, list[float]] = {
    "scale": [0.0, HOUR, 3 * HOUR],
    "baseline": [HOUR, 3 * HOUR, 12 * HOUR],
    "history": [3 * DAY, 7 * DAY, 14 * DAY],
    "suppress": [6 * HOUR, 24 * HOUR],
    "quantile": [0.95, 0.99, 1.0],
    "sensitivity": [1.0, 1.5, 2.5, 4.0],
    "margin": [1.0, 3.0, float("inf")],
    "season": [1.0, 2.0, float("inf")],
    "record": [0.02, 0.1, float("inf")],
}
# knobs held at a value instead of searched (fewer choices made on the data: a smaller gap
# between in-sample and left-out): the seasonal gate's margin as it was, the seasonal path on,
# as sensitive as the other paths, and the learned history at the 14 days that the scheduled
# ``pipepulse detect`` reads (``jobs.detect``: ``lookback_days``), so the threshold is learnt
# over what production scans (searched, it took 21 days, which detect never sees; held, the
# left-out score rose 58.60 -> 63.29 and the gap fell 8.93 -> 5.38: bench/README.md)
FIXED: dict[str, float] = {"margin": 3.0, "season": 1.0, "history": 14 * DAY}
F1_WEIGHT = 100.0
PER_CATEGORY_F1 = False


@dataclass(frozen=True)
class Knobs:
    """One configuration of the intraday defaults."""

    scale: float
    baseline: float
    history: float
    suppress: float
    quantile: float
    sensitivity: float
    margin: float
    season: float  # the seasonal path's sensitivity over ``sensitivity``; inf: off
    record: float = float("inf")  # the record path's margin; inf: off

    def config(self, step: float) -> A.DetectorConfig:
        """The detector configuration for a series sampled every ``step`` seconds."""
        spans = {"scale": self.scale, "baseline": self.baseline, "history": self.history, "suppress": self.suppress}
        margin = self.margin if np.isfinite(self.margin) else 1e300  # inf: the gate never lets a point through
        return A.DetectorConfig.for_step(step, seconds=spans, quantile=self.quantile, sensitivity=self.sensitivity,
                                         season_margin=margin,
                                         season_sensitivity=self.season * self.sensitivity if np.isfinite(self.season) else None,
                                         record_margin=self.record if np.isfinite(self.record) else None)

    def text(self) -> str:
        return (f"scale {self.scale / HOUR:g} h, baseline {self.baseline / HOUR:g} h, history {self.history / DAY:g} d, "
                f"suppress {self.suppress / HOUR:g} h, quantile {self.quantile:g}, sensitivity {self.sensitivity:g}, "
                f"season margin {self.margin:g}, seasonal path {self.season:g}, record margin {self.record:g}")


class Evaluator:
    """Scores of every file under a configuration, with per-series features cached."""

    def __init__(self, series: list[Labelled]):
        self.series = series
        self.ts = [A._epoch_seconds(s.timestamps) for s in series]
        self.step = [A._step(t[: A.STEP_POINTS]) for t in self.ts]
        self._scale: dict[tuple, tuple] = {}  # (file, s, L, season) -> z, base, dev, gates
        self._q: dict[tuple, Any] = {}  # (file, s, L, H, q, warmup, refresh) -> learned quantile
        self._scores: dict[Knobs, np.ndarray] = {}  # knobs -> (files, 4)
        self.evaluated = 0

    def _features(self, i: int, cfg: A.DetectorConfig) -> A._Features:
        x = self.series[i].values[None, :]
        ex = np.zeros_like(x, dtype=bool)
        out = []
        for s in sorted(set(cfg.scales)):
            L = max(cfg.baseline, 2 * s)
            key = (i, s, L, cfg.season_window, cfg.season_cycles)
            if key not in self._scale:
                z = A._window_means(x, s)
                base = A._baseline(x, s, L)
                self._scale[key] = (z, base, np.abs(z - base), A._envelope(z, self.ts[i], cfg))
            z, base, dev, env = self._scale[key]
            qkey = (*key, cfg.history, cfg.quantile, cfg.warmup, cfg.refresh, cfg.sensitivity)
            if qkey not in self._q:
                if len(self._q) > MAX_CACHED:
                    self._q.clear()
                self._q[qkey] = A._learned(dev, ex, cfg, cfg.sensitivity, s)
            out.append(A._Scale(s, z, base, self._q[qkey], [(env, cfg.min_cycles)]))
        if cfg.season_sensitivity is not None:
            skey = ("season", *qkey[:-1], cfg.season_sensitivity)
            if skey not in self._q:
                self._q[skey] = A._seasonal(out[-1].z, env, ex, cfg, out[-1].s)  # type: ignore[assignment]
            out.append(self._q[skey])  # type: ignore[arg-type]
        if cfg.record_margin is not None:
            rkey = (i, "record", cfg.record_warmup)
            if rkey not in self._scale:
                self._scale[rkey] = A._record(x, ex, cfg.record_warmup)  # type: ignore[assignment]
            out.append(self._scale[rkey])  # type: ignore[arg-type]
        return A._Features(out, ex)

    def scores(self, k: Knobs) -> np.ndarray:
        """(files, 4): NAB raw score, windows hit, windows, false-positive events."""
        if k not in self._scores:
            rows = []
            for i, s in enumerate(self.series):
                cfg = k.config(self.step[i])
                flags = A._decide(self._features(i, cfg), cfg, explain=False).is_anomaly[0]
                rows.append(score_file(s, flags))
            self._scores[k] = np.array(rows, dtype=float)
            self.evaluated += 1
        return self._scores[k]

    def flags(self, k: Knobs) -> list[int]:
        """Reported detections per file (the flag rate)."""
        out = []
        for i in range(len(self.series)):
            cfg = k.config(self.step[i])
            out.append(int(A._decide(self._features(i, cfg), cfg, explain=False).is_anomaly.sum()))
        return out

    def drop_quantiles(self) -> None:
        self._q.clear()


def objective(table: np.ndarray, cats: Sequence[str]) -> float:
    """Mean over categories (with windows) of the NAB standard score + ``F1_WEIGHT`` x the
    event F1 (pooled over all files, or with ``PER_CATEGORY_F1`` the mean of the categories'
    F1, each counting the false alarms of ``artificialNoAnomaly`` with the category's own)."""
    nabs, f1s = [], []
    quiet = [i for i, x in enumerate(cats) if not aggregate(map(tuple, table[[i]]))["windows"]]
    for c in sorted(set(cats)):
        sel = [i for i, x in enumerate(cats) if x == c]
        agg = aggregate(map(tuple, table[sel]))
        if agg["windows"]:
            nabs.append(agg["nab_standard"])
            f1s.append(aggregate(map(tuple, table[sel + [i for i in quiet if i not in sel]]))["event_f1"])
    f1 = float(np.mean(f1s)) if PER_CATEGORY_F1 else aggregate(map(tuple, table))["event_f1"]
    return float(np.mean(nabs)) + F1_WEIGHT * f1


def search(ev: Evaluator, files: Sequence[int], *, fine: bool = True, log: Callable[[str], None] = print,
           trail: list[Knobs] | None = None) -> tuple[Knobs, float]:
    """The knobs that maximise ``objective`` on ``files`` (indices into ``ev.series``);
    ``trail`` collects the choice after each start (what ``STARTS`` = 1, 2, ... would return)."""
    cats = [ev.series[i].category for i in files]

    subsets = [np.array([j for j, c in enumerate(cats) if c != left]) for left in sorted(set(cats))]

    def value(k: Knobs) -> float:
        table = ev.scores(k)[list(files)]
        if DROP_ONE:  # the worst of the objectives with one more category left out
            return min(objective(table[sel], [cats[j] for j in sel]) for sel in subsets)
        return objective(table, cats)

    names = list(COARSE)
    grid = {n: [FIXED[n]] if n in FIXED else COARSE[n] for n in names}
    stage1 = []
    for combo in itertools.product(*(grid[n] for n in names)):
        k = Knobs(**dict(zip(names, combo, strict=True)))
        stage1.append((value(k), -len(stage1), k))  # ties: the earlier in the grid, as before
    stage1.sort(reverse=True)
    best_v, _, best = stage1[0]
    log(f"  stage 1: {best_v:.2f}  {best.text()}")
    if not fine:
        return best, best_v
    smoothed: dict[Knobs, float] = {}

    def smooth(k: Knobs) -> float:
        """The objective averaged over ``k`` and its neighbours (one ladder step of one knob)."""
        if k not in smoothed:
            smoothed[k] = float(np.mean([value(n) for n in neighbours(k)]))
        return smoothed[k]

    climb = smooth if SMOOTH else value
    for n_start, (_, _, start) in enumerate(stage1[:STARTS]):
        start_v = climb(start)
        k, v = _climb(climb, start, start_v, names)
        log(f"  stage 2 from start {n_start + 1} ({start_v:.2f}): {v:.2f}  {k.text()}")
        if v > best_v + 1e-9 or n_start == 0:
            best, best_v = k, v
        if trail is not None:
            trail.append(best)
    return best, best_v


def neighbours(k: Knobs) -> list[Knobs]:
    """``k`` and every configuration one step from it on one searched knob's ladder."""
    out = [k]
    for name in (n for n in LADDER if n not in FIXED):
        ladder = LADDER[name]
        cur = getattr(k, name)
        pos = _ladder_pos(ladder, cur)
        out += [replace(k, **{name: ladder[j]}) for j in (pos - 1, pos + 1) if 0 <= j < len(ladder)]
    return out


def _ladder_pos(ladder: Sequence[float], cur: float) -> int:
    """Where ``cur`` stands on ``ladder`` (its nearest rung; inf matches inf)."""
    return int(np.argmin([abs(v - cur) if np.isfinite(v) or np.isfinite(cur) else 0 for v in ladder]))


def _climb(value: Callable[[Knobs], float], best: Knobs, best_v: float, names: Sequence[str]) -> tuple[Knobs, float]:
    """Stage 2 from one start: each searched knob up to two steps either way on its ladder,
    repeated until nothing improves (at most ``ROUNDS`` rounds)."""
    for _ in range(ROUNDS):
        improved = False
        for name in (n for n in names if n not in FIXED):
            ladder = LADDER[name]
            cur = getattr(best, name)
            pos = _ladder_pos(ladder, cur)
            for j in (pos - 2, pos - 1, pos + 1, pos + 2):
                if 0 <= j < len(ladder):
                    k = replace(best, **{name: ladder[j]})
                    v = value(k)
                    if v > best_v + 1e-9:
                        best, best_v, improved = k, v, True
        if not improved:
            break
    return best, best_v


def refine(ev: Evaluator, start: dict[str, Any], knobs: Sequence[str], *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """``start`` (a recorded LOCO result) with ``knobs`` re-chosen over their whole ladders, the
    others held: in-sample on all files, and per category without it from that fold's choice.
    A new knob's leave-one-category-out check that costs seconds, not a full search."""
    everything = list(range(len(ev.series)))

    def best_of(k: Knobs, files: list[int]) -> Knobs:
        cats = [ev.series[i].category for i in files]
        for name in knobs:
            vals = [(objective(ev.scores(replace(k, **{name: v}))[files], cats), -j, v) for j, v in enumerate(LADDER[name])]
            k = replace(k, **{name: max(vals)[2]})
        return k

    out: dict[str, Any] = {"chosen": best_of(start["chosen"], everything), "folds": {}}
    log(f"  all files: {out['chosen'].text()}")
    for cat, k in start["folds"].items():
        out["folds"][cat] = best_of(k, [i for i in everything if ev.series[i].category != cat])
        log(f"  without {cat}: {out['folds'][cat].text()}")
    return out


def categories(ev: Evaluator) -> list[str]:
    return sorted({s.category for s in ev.series})


def table_of(ev: Evaluator, k: Knobs, files: Sequence[int]) -> dict[str, Any]:
    return aggregate(map(tuple, ev.scores(k)[list(files)]))


def loco(ev: Evaluator, *, fine: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """In-sample choice on all files, and one left-out choice per category."""
    everything = list(range(len(ev.series)))
    log("choosing on all 47 files")
    trails: dict[str, list[Knobs]] = {"": []}
    chosen, _ = search(ev, everything, fine=fine, log=log, trail=trails[""])
    out: dict[str, Any] = {"chosen": chosen, "folds": {}, "trails": trails}
    for cat in categories(ev):
        train = [i for i in everything if ev.series[i].category != cat]
        log(f"choosing without {cat}")
        trails[cat] = []
        k, _ = search(ev, train, fine=fine, log=log, trail=trails[cat])
        out["folds"][cat] = k
    return out


def pooled(ev: Evaluator, chosen: Knobs, folds: dict[str, Knobs]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The scores over all files: in-sample (every file with ``chosen``) and left out (each
    category's files with the configuration chosen without it, ``folds``)."""
    cats = [s.category for s in ev.series]
    out = np.stack([ev.scores(folds[c])[i] for i, c in enumerate(cats)])
    return aggregate(map(tuple, ev.scores(chosen))), aggregate(map(tuple, out))


def report(ev: Evaluator, result: dict[str, Any]) -> str:
    """The LOCO table: per category, in-sample vs left out, and the gap; pooled over all."""
    chosen: Knobs = result["chosen"]
    lines = [f"chosen on all 47 files: {chosen.text()}", "",
             f"{'category':<24}{'files':>6}  {'in-sample NAB':>13} {'F1':>6}  {'left-out NAB':>12} {'F1':>6}  {'gap':>6}  left-out FP events"]
    for cat in categories(ev):
        files = [i for i, s in enumerate(ev.series) if s.category == cat]
        a = table_of(ev, chosen, files)
        b = table_of(ev, result["folds"][cat], files)
        if a["windows"]:
            gap = a["nab_standard"] - b["nab_standard"]
            lines.append(f"{cat:<24}{len(files):>6}  {a['nab_standard']:>13.2f} {a['event_f1']:>6.3f}  {b['nab_standard']:>12.2f} "
                         f"{b['event_f1']:>6.3f}  {gap:>6.2f}  {b['fp_events']}")
        else:
            lines.append(f"{cat:<24}{len(files):>6}  {'no windows':>13} {'':>6}  {'no windows':>12} {'':>6}  {'':>6}  "
                         f"{b['fp_events']} (in-sample {a['fp_events']})")
    a, b = pooled(ev, chosen, result["folds"])
    lines.append(f"{'all 47, pooled':<24}{len(ev.series):>6}  {a['nab_standard']:>13.2f} {a['event_f1']:>6.3f}  "
                 f"{b['nab_standard']:>12.2f} {b['event_f1']:>6.3f}  {a['nab_standard'] - b['nab_standard']:>6.2f}  {b['fp_events']}")
    lines.append("")
    lines.append("configuration chosen without each category:")
    for cat, k in result["folds"].items():
        lines.append(f"  {cat:<24}{k.text()}")
    return "\n".join(lines)


RECORDED = Path(__file__).with_name("nab_loco.json")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="stage 1 (the coarse grid) only")
    p.add_argument("--recorded", action="store_true",
                   help=f"no search: score the configurations recorded in {RECORDED.name} (what make bench prints)")
    p.add_argument("--only", default="", help="comma-separated knobs: re-choose only these, from the recorded choices (no full search)")
    p.add_argument("--write", action="store_true", help=f"record the chosen configurations in {RECORDED.name}")
    p.add_argument("--f1-weight", type=float, default=F1_WEIGHT, help="weight of the event F1 in the objective")
    p.add_argument("--starts", type=int, default=STARTS, help="stage 2 climbs from this many of the best stage-1 configurations")
    p.add_argument("--smooth", action="store_true", help="stage 2: the objective averaged over ladder neighbours")
    p.add_argument("--drop-one", action="store_true", help="the objective: its lowest value with one more category left out")
    p.add_argument("--free", default="", help="comma-separated knobs of FIXED to search as well")
    p.add_argument("--hold", default="", help="comma-separated knob=value (spans in seconds): held there, not searched")
    a = p.parse_args(argv)
    globals()["F1_WEIGHT"] = a.f1_weight
    globals()["STARTS"] = a.starts
    globals()["SMOOTH"] = a.smooth
    globals()["DROP_ONE"] = a.drop_one
    for name in filter(None, a.free.split(",")):
        FIXED.pop(name)
    for item in filter(None, a.hold.split(",")):
        name, _, value = item.partition("=")
        if name not in LADDER:
            p.error(f"--hold: unknown knob {name!r}; known: {', '.join(LADDER)}")
        FIXED[name] = float(value)
    t0 = time.process_time()
    ev = Evaluator(load())
    assert {s.category for s in ev.series} >= {AWS}
    if a.recorded or a.only:
        saved = json.loads(RECORDED.read_text())
        result = {"chosen": Knobs(**saved["chosen"]), "folds": {c: Knobs(**k) for c, k in saved["folds"].items()}}
        print(f"recorded in bench/{RECORDED.name} by `python -m bench.nab_loco --write` (not searched again here)")
        if a.only:
            knobs = [k for k in a.only.split(",") if k]
            print(f"re-chosen from those: {', '.join(knobs)}")
            result = refine(ev, result, knobs, log=lambda m: print(m, file=sys.stderr, flush=True))
    else:
        result = loco(ev, fine=not a.quick, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(report(ev, result))
    if a.starts > 1 and "trails" in result:
        print(f"\nthe same search with fewer starts (the best of the first K climbs), all 47 pooled:\n"
              f"{'starts':>6}  {'in-sample NAB':>13} {'F1':>6}  {'left-out NAB':>12} {'F1':>6}  {'gap':>6}")
        for n in range(1, a.starts + 1):
            t = result["trails"]
            if any(len(v) < n for v in t.values()):
                break
            x, y = pooled(ev, t[""][n - 1], {c: t[c][n - 1] for c in categories(ev)})
            print(f"{n:>6}  {x['nab_standard']:>13.2f} {x['event_f1']:>6.3f}  {y['nab_standard']:>12.2f} {y['event_f1']:>6.3f}  "
                  f"{x['nab_standard'] - y['nab_standard']:>6.2f}")
    if not (a.recorded or a.only):
        print(f"\n{ev.evaluated} configurations scored, {time.process_time() - t0:.0f} s of CPU")
    if a.write:
        RECORDED.write_text(json.dumps({"chosen": result["chosen"].__dict__,
                                        "folds": {c: k.__dict__ for c, k in result["folds"].items()}}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
