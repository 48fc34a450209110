"""The shared timing harness (in the spirit of llm.c's dev/cuda/common.h): check, then time.

Every benchmark first checks that each implementation agrees with the reference on the same inputs; only
then does it time them, interleaved (A B A B ...) so drift of the machine's speed hits all of them alike,
and reports medians and the ratio of each to the reference, with the spread of that ratio.
"""

import time

import numpy as np


def check_close(name, reference, candidate, rtol, atol):
    """Compare two outputs (arrays or tuples of arrays); raise AssertionError naming what differs."""
    ref = reference if isinstance(reference, tuple) else (reference,)
    got = candidate if isinstance(candidate, tuple) else (candidate,)
    for i, (r, g) in enumerate(zip(ref, got)):
        r, g = np.asarray(r, np.float64), np.asarray(g, np.float64)
        if r.shape != g.shape or not np.allclose(g, r, rtol=rtol, atol=atol):
            err = np.abs(g - r).max() if r.shape == g.shape else f"shape {g.shape} vs {r.shape}"
            raise AssertionError(f"{name}: output {i} differs from the reference (max abs diff {err})")


def time_interleaved(fns, repeats=20, warmup=3):
    """Median seconds per call of each fn in ``fns`` (a dict name -> zero-argument callable), timed in turn,
    plus each one's per-round ratio to the first entry (the reference): {name: (median_s, ratios)}."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    ref = np.array(times[next(iter(fns))])
    return {name: (float(np.median(ts)), np.array(ts) / ref) for name, ts in times.items()}


def format_row(label, results):
    """One table row: the median time of each implementation and its ratio to the reference (p25-p75)."""
    cells = []
    for name, (median, ratios) in results.items():
        lo, mid, hi = np.percentile(ratios, [25, 50, 75])
        cells.append(f"{name} {median * 1e3:8.3f} ms ({mid:5.2f}x, {lo:4.2f}-{hi:4.2f})")
    return f"{label:<44} " + "  ".join(cells)
