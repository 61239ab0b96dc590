"""Scan N series of a week at 5 minutes (2,016 points) with the online detector, against a
numpy rolling z-score over the same series in the same run: time and peak memory.

    python -m bench.bench_anomaly_scan [--series 10000] [--chunk 500]

Series are synthetic CloudWatch-like metrics (daily cycle, noise; 10% get a spike and 5% a level
shift after the first day), generated per chunk from a fixed seed so both methods see identical
data. Besides speed, the table counts injected incidents flagged within an hour of their onset
and false alerts (alert onsets nowhere near an incident). Both methods are
vectorised across the series of a chunk; peak memory is what ``tracemalloc`` sees (numpy
reports its buffers to it) during one more chunk of each method alone, untimed.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from insights.anomaly import DetectorConfig, scan_matrix

__all__ = ["main", "make_chunk", "rolling_zscore", "score_flags"]

POINTS = 2016
STEP = 300


def make_chunk(m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``m`` synthetic series of ``POINTS`` points, and a mask of the injected incidents' onsets."""
    rng = np.random.default_rng(seed)
    t = np.arange(POINTS)
    level = rng.uniform(10, 1000, (m, 1))
    daily = 0.2 * level * np.sin(2 * np.pi * (t[None, :] / 288 + rng.uniform(0, 1, (m, 1))))
    x = level + daily + rng.normal(0, 1, (m, POINTS)) * 0.05 * level
    truth = np.zeros((m, POINTS), dtype=bool)
    rows = rng.choice(m, m // 10, replace=False)
    at = rng.integers(400, POINTS, len(rows))
    x[rows, at] += 0.8 * level[rows, 0]
    truth[rows, at] = True
    shift = rng.choice(np.setdiff1d(np.arange(m), rows), m // 20, replace=False)
    at = rng.integers(400, POINTS, len(shift))
    for r, a in zip(shift, at, strict=True):
        x[r, a:] += 0.5 * level[r, 0]
        truth[r, a] = True
    return x, truth


def score_flags(flags: np.ndarray, truth: np.ndarray, within: int = 12) -> tuple[int, int, int]:
    """(incidents injected, incidents with a flag within ``within`` points of the onset,
    alert onsets (a flag whose previous point is not flagged) not near any incident)."""
    m, n = flags.shape
    near = np.zeros_like(truth)
    for k in range(within + 1):
        near[:, k:] |= truth[:, : n - k]
    hit = 0
    for r, a in zip(*np.nonzero(truth), strict=True):
        hit += bool(flags[r, a : a + within + 1].any())
    onsets = flags & ~np.concatenate([np.zeros((m, 1), dtype=bool), flags[:, :-1]], axis=1)
    return int(truth.sum()), hit, int(np.count_nonzero(onsets & ~near))


def rolling_zscore(x: np.ndarray, window: int = 288, z: float = 3.0) -> np.ndarray:
    """Flags |x - mean| > z * std over the previous ``window`` points (trailing, online)."""
    m, n = x.shape
    c1 = np.concatenate([np.zeros((m, 1)), np.cumsum(x, axis=1)], axis=1)
    c2 = np.concatenate([np.zeros((m, 1)), np.cumsum(x * x, axis=1)], axis=1)
    idx = np.arange(n)
    lo = np.maximum(idx - window, 0)
    cnt = np.maximum(idx - lo, 1)
    mean = (c1[:, idx] - c1[:, lo]) / cnt
    var = np.maximum((c2[:, idx] - c2[:, lo]) / cnt - mean**2, 0)
    flags = np.abs(x - mean) > z * np.sqrt(var)
    flags[:, :window] = False
    return flags


def _measure(fn, chunks, m, *args):
    t0, c0 = time.perf_counter(), time.process_time()
    counts = np.zeros(3, dtype=int)
    for k in range(chunks):
        x, truth = make_chunk(m, seed=k)
        counts += score_flags(np.asarray(fn(x, *args), dtype=bool), truth)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    # peak memory from one more chunk (chunks are alike): tracing every numpy allocation slows
    # a loop of many small arrays far more than one of a few big ones, so never while timed
    tracemalloc.start()
    fn(make_chunk(m, seed=0)[0], *args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return dt, cpu, peak, counts


def _ours(x, ts, cfg):
    return scan_matrix(x, ts, cfg).is_anomaly


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", type=int, default=10_000)
    p.add_argument("--chunk", type=int, default=500, help="series scanned together (memory vs speed)")
    a = p.parse_args(argv)
    m = min(a.chunk, a.series)
    chunks = -(-a.series // m)
    total = chunks * m
    ts = np.arange(POINTS, dtype=float) * STEP + 1.7e9
    cfg = DetectorConfig.for_step(STEP)
    z_t, z_cpu, z_mem, z_flags = _measure(rolling_zscore, chunks, m)
    o_t, o_cpu, o_mem, o_flags = _measure(_ours, chunks, m, ts, cfg)
    # data generation is inside both timings; measure it alone to report net figures
    g_t, g_cpu, _, _ = _measure(lambda x: np.zeros_like(x, dtype=bool), chunks, m)
    print(f"{total:,} series x {POINTS:,} points ({total * POINTS / 1e6:.1f} M points), chunks of {m}")
    # CPU seconds too: on a shared machine wall time mostly measures the neighbours
    print(f"{'method':<20}{'seconds':>9}{'net s':>9}{'net CPU s':>10}{'M pts/s':>9}{'peak MiB':>10}{'incidents hit':>15}{'false alerts':>14}")
    for name, t, cpu, mem, (inj, hit, fa) in (("rolling z-score", z_t, z_cpu, z_mem, z_flags), ("pipepulse online", o_t, o_cpu, o_mem, o_flags)):
        net = max(t - g_t, 1e-9)
        print(f"{name:<20}{t:>9.2f}{net:>9.2f}{max(cpu - g_cpu, 0):>10.2f}{total * POINTS / net / 1e6:>9.2f}{mem / 2**20:>10.1f}"
              f"{f'{hit:,}/{inj:,}':>15}{fa:>14,}")
    print(f"ratio pipepulse / z-score: time {max(o_t - g_t, 1e-9) / max(z_t - g_t, 1e-9):.1f}x, "
          f"CPU {max(o_cpu - g_cpu, 1e-9) / max(z_cpu - g_cpu, 1e-9):.1f}x (net of data generation), "
          f"peak memory {o_mem / max(z_mem, 1):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
