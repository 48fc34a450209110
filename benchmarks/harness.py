"""The shared harness of the benchmarks (in the spirit of llm.c's dev/cuda/common.h): check, then time.

A Case is one kernel at one shape: its implementations (zero-argument callables returning an array or a
tuple of arrays, NumPy or torch), the one whose outputs are the truth, a tolerance, and the bytes the
fused kernel must move. run_cases checks every implementation against the reference before it times
anything, then times them interleaved (A B A B ...) so drift of the machine's speed hits all alike, with
a copy of the same number of bytes ("copy", machine.fastest_copy) timed in the same rounds as a yardstick.
Each row: the median time, the ratio to a baseline taken round by round (median, p25-p75), the achieved
GB/s = bytes_moved / median, that as a % of the machine's copy bandwidth (benchmarks/machine.py) and as a
% of the interleaved same-size copy's, and GFLOP/s where the case counts flops.
"""

import argparse
import dataclasses
import functools
import sys
import time

import numpy as np

from benchmarks import machine


@dataclasses.dataclass
class Case:
    label: str
    kernel: str
    impls: dict                # name -> zero-argument callable returning the outputs
    reference: str = "numpy"   # the impl whose outputs the others must match
    rtol: float = 1e-5
    atol: float = 1e-5
    bytes_moved: int = 0       # the minimum bytes the fused kernel reads + writes per call
    flops: int = 0             # floating-point operations per call, for the matmul-bound kernels
    notes: str = ""


@dataclasses.dataclass
class Traffic:
    """A model of the DRAM bytes a GPU moves per call, NOT a measurement: the fused kernel(s) against the
    unfused launch sequences they replace. Each launch is (what, passes): the arrays it reads plus those
    it writes, in units of one array of `unit_bytes` (float32)."""
    label: str
    unit: str                  # what one unit is, e.g. "N = 128*3*32*32 floats"
    unit_bytes: int
    fused: tuple
    unfused: dict              # name of the sequence -> its launches
    assumptions: str = ""


def check_close(name, reference, candidate, rtol, atol):
    """Compare two outputs (arrays or tuples of arrays); raise AssertionError naming what differs."""
    ref = reference if isinstance(reference, tuple) else (reference,)
    got = candidate if isinstance(candidate, tuple) else (candidate,)
    if len(ref) != len(got):
        raise AssertionError(f"{name}: {len(got)} outputs, the reference has {len(ref)}")
    for i, (r, g) in enumerate(zip(ref, got)):
        r, g = (np.asarray(a.detach() if hasattr(a, "detach") else a, np.float64) for a in (r, g))  # torch too
        if r.shape != g.shape or not np.allclose(g, r, rtol=rtol, atol=atol):
            err = np.abs(g - r).max() if r.shape == g.shape else f"shape {g.shape} vs {r.shape}"
            raise AssertionError(f"{name}: output {i} differs from the reference (max abs diff {err})")


def check_case(case, impls=None):
    """Run the reference once and every other impl (all, or those named in impls) once; raise on disagreement."""
    want = case.impls[case.reference]()
    for name, fn in case.impls.items():
        if name != case.reference and (impls is None or name in impls):
            check_close(f"{case.label} [{name}]", want, fn(), case.rtol, case.atol)


def time_rounds(fns, repeats=20, warmup=3):
    """Seconds per call of each fn in ``fns`` (name -> zero-argument callable), called in turn each round:
    {name: array of `repeats` times}."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: np.array(ts) for name, ts in times.items()}


def time_interleaved(fns, repeats=20, warmup=3):
    """time_rounds as {name: (median_s, per-round ratios to the first entry)}, for format_row."""
    times = time_rounds(fns, repeats, warmup)
    ref = times[next(iter(fns))]
    return {name: (float(np.median(ts)), ts / ref) for name, ts in times.items()}


def format_row(label, results):
    """One table row: the median time of each implementation and its ratio to the first (p25-p75)."""
    cells = []
    for name, (median, ratios) in results.items():
        lo, mid, hi = np.percentile(ratios, [25, 50, 75])
        cells.append(f"{name} {median * 1e3:8.3f} ms ({mid:5.2f}x, {lo:4.2f}-{hi:4.2f})")
    return f"{label:<44} " + "  ".join(cells)


def run_cases(cases, repeats=20, impls=None, baseline=None, warmup=3):
    """Check, then time each case; one row (a dict) per implementation, plus one for the same-size copy.

    impls: the names to run (default all); the reference is always run for the check.
    baseline: the impl the ratios are to; default "torch" where a case has it, else the case's reference.
    """
    rows = []
    for case in cases:
        check_case(case, impls)
        fns = {n: fn for n, fn in case.impls.items() if impls is None or n in impls}
        fns["copy"] = machine.fastest_copy(case.bytes_moved)
        times = time_rounds(fns, repeats, warmup)
        base = next(b for b in (baseline, "torch", case.reference, *fns) if b in fns)
        for name, ts in times.items():
            median = float(np.median(ts))
            lo, mid, hi = np.percentile(ts / times[base], [25, 50, 75])
            gbps = case.bytes_moved / median / 1e9
            rows.append(dict(case=case.label, kernel=case.kernel, impl=name, median_s=median, baseline=base,
                             ratio=mid, ratio_p25=lo, ratio_p75=hi, gbps=gbps,
                             pct_copy=100 * gbps / machine.copy_bandwidth(),
                             pct_copy_interleaved=100 * float(np.median(times["copy"] / ts)),
                             gflops=case.flops / median / 1e9 if case.flops and name != "copy" else None,
                             notes=case.notes))
    return rows


def print_table(rows, header=True):
    """Print rows as a Markdown table (one case after another)."""
    if header:
        print("| case | impl | median ms | x baseline (p25-p75) | GB/s | % copy | % copy, interleaved | GFLOP/s |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        gflops = f"{r['gflops']:.1f}" if r["gflops"] else "-"
        print(f"| {r['case']} | {r['impl']} | {r['median_s'] * 1e3:.3f} | {r['ratio']:.2f} "
              f"({r['ratio_p25']:.2f}-{r['ratio_p75']:.2f}) x {r['baseline']} | {r['gbps']:.1f} | "
              f"{r['pct_copy']:.0f} | {r['pct_copy_interleaved']:.0f} | {gflops} |", flush=True)


def print_traffic(models):
    """Print each GPU bytes model: totals, the fused/unfused ratio, and the launches behind them."""
    print("\nCUDA bytes model (a MODEL, not a measurement: no GPU here). Float32; every launch reads each input "
          "and writes each output once in DRAM; nothing stays in cache from one launch to the next.")
    for m in models:
        fused = sum(p for _, p in m.fused)
        print(f"\n{m.label}: unit = {m.unit} = {m.unit_bytes / 1e6:.2f} MB")
        if m.assumptions:
            print(f"  assumes: {m.assumptions}")
        for name, launches in (("fused", m.fused), *m.unfused.items()):
            total = sum(p for _, p in launches)
            ratio = "" if launches is m.fused else f" = {total / fused:.2f}x fused"
            print(f"  {name}: {total:.2f} units = {total * m.unit_bytes / 1e6:.2f} MB in {len(launches)} "
                  f"launch(es){ratio}\n    " + ", ".join(f"{what} {p:.3g}" for what, p in launches))


@functools.cache
def torch_or_none():
    """PyTorch set to pyddpm's thread count, or None after printing that it is skipped."""
    try:
        import torch
    except ImportError:
        print("skipped torch: not installed", file=sys.stderr)
        return None
    torch.set_num_threads(machine.threads())
    return torch


@functools.cache
def fused_backends():
    """("numpy", "cpu"), or ("numpy",) after printing why the cpu backend is skipped."""
    from pyddpm.ops.backend import BackendUnavailable, extension
    try:
        extension("cpu")
    except BackendUnavailable as e:
        print(f"skipped cpu: {e}", file=sys.stderr)
        return ("numpy",)
    return ("numpy", "cpu")


def main(cases, traffic=None, doc=""):
    """The command line every kernel script shares: check, time, print the table and the bytes model."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--small", action="store_true", help="the test sizes (a quick check that all agree)")
    p.add_argument("--impls", nargs="+", help="run only these implementations (the reference always checks)")
    p.add_argument("--baseline", help="ratios to this impl (default torch where present, else the reference)")
    args = p.parse_args()
    torch_or_none()  # before the machine line, which names torch's thread count
    print(machine.describe() + "\n", flush=True)
    notes = []
    for i, case in enumerate(cases(small=args.small)):  # one case at a time: its arrays go before the next's
        print_table(run_cases([case], args.repeats, args.impls, args.baseline), header=i == 0)
        notes += [f"- {case.label}: {case.notes}"] if case.notes else []
    print("\n".join(["", "notes:", *notes]) if notes else "")
    if traffic is not None:
        print_traffic(traffic())
