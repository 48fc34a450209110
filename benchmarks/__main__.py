"""python -m benchmarks: the kernel microbenchmarks and the end-to-end U-Net steps, in one table.

    python -m benchmarks                                    # every kernel, and config A's train and sample step
    python -m benchmarks --kernels group_norm attention --e2e A B C --what train
    python -m benchmarks --small --e2e none                 # the kernels at test sizes: seconds

Run from the repository root. Each benchmark checks that every implementation agrees with the reference
before it times anything, then times them interleaved in this process (numpy, cpu, and PyTorch where it is
installed) and reports the median time and the ratio to the baseline (PyTorch where present) with its
p25-p75 spread. Run the modules one by one for their full output (bytes models, peak memory, floors):
python -m benchmarks.kernels.<name>, python -m benchmarks.e2e.bench. PyTorch is optional: without it the
PyTorch columns are skipped, and the table says so.
"""

import argparse
import importlib
import sys

from tqdm import tqdm

from benchmarks.e2e.bench import bench
from benchmarks.harness import run_cases, torch_or_none
from benchmarks.machine import describe

KERNELS = ("group_norm", "attention", "q_sample", "sampler_step", "discretized_gaussian_log_likelihood",
           "normal_kl", "im2col", "winograd")


def kernel_rows(names, small, repeats, bar):
    """One row per (case, implementation) of the named kernels' modules (benchmarks/kernels/<name>.py)."""
    rows = []
    for name in names:
        bar.set_description(name)
        module = importlib.import_module(f"benchmarks.kernels.{name}")
        for case in module.cases(small=small):
            for r in run_cases([case], repeats):
                ratio = f"{r['ratio']:.2f} ({r['ratio_p25']:.2f}-{r['ratio_p75']:.2f}) x {r['baseline']}"
                rows.append((r["case"], r["impl"], r["median_s"], ratio, f"{r['pct_copy_interleaved']:.0f}% copy"))
        bar.update()
    return rows


def e2e_rows(configs, whats, repeats, memory, bar):
    """One row per (configuration, step, implementation) of benchmarks/e2e."""
    rows = []
    for config in configs:
        for what in whats:
            bar.set_description(f"{config} {what}")
            r = bench(config, what, repeats, memory=memory, check=True)
            bar.update()
            for impl, e in r["impls"].items():
                ratio = f"{e['ratio_p50']:.2f} ({e['ratio_p25']:.2f}-{e['ratio_p75']:.2f}) x {r['reference']}"
                extra = f"floor {r['floor_s'] * 1e3:.0f} ms, other load {100 * r['other_load']:.0f}%"
                if memory:
                    extra += f", {e['above_imports_mib']:.0f} MiB"
                rows.append((f"{config} {what} step (batch {r['batch']})", impl, e["median_s"], ratio, extra))
    return rows


def print_table(rows):
    print("| benchmark | impl | median ms | ratio (p25-p75) | notes |")
    print("| --- | --- | --- | --- | --- |")
    for label, impl, median, ratio, notes in rows:
        print(f"| {label} | {impl} | {median * 1e3:.3f} | {ratio} | {notes} |")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kernels", nargs="+", default=["all"], choices=["all", "none", *KERNELS])
    p.add_argument("--e2e", nargs="+", default=["A"], choices=["A", "B", "C", "none"],
                   help="U-Net configurations (benchmarks/e2e/configs.py; default A)")
    p.add_argument("--what", nargs="+", default=["train", "sample"], choices=["train", "sample"])
    p.add_argument("--repeats", type=int, help="timed rounds (default: each benchmark's own)")
    p.add_argument("--small", action="store_true", help="kernels at their test sizes (a quick agreement check)")
    p.add_argument("--no-memory", action="store_true", help="skip the end-to-end peak-memory measurements")
    args = p.parse_args(argv)
    kernels = [] if "none" in args.kernels else KERNELS if "all" in args.kernels else args.kernels
    configs = [] if "none" in args.e2e else args.e2e

    torch = torch_or_none()  # sets PyTorch's threads, or says it is skipped
    print(describe())
    if torch is None:
        print("skipped: every PyTorch comparison (torch is not installed; pip install torch==2.13.0 adds them)")
    with tqdm(total=len(kernels) + len(configs) * len(args.what), unit="benchmark", file=sys.stderr) as bar:
        rows = kernel_rows(kernels, args.small, args.repeats or 20, bar)
        rows += e2e_rows(configs, args.what, args.repeats, not args.no_memory, bar)
    print()
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
