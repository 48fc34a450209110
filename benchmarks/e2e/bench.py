"""End-to-end benchmark (issue 5): a training step and a sampling step of the U-Net at the fixed
configurations A, B, C (configs.py), pyddpm's numpy and cpu backends against a PyTorch reference model of
the identical architecture (torch_unet.py).

    python -m benchmarks.e2e.bench                          # A, B, C; train and sample; all impls
    python -m benchmarks.e2e.bench --config A --what train --repeats 20
    python -m benchmarks.e2e.bench --impls numpy cpu        # without PyTorch

For each configuration: first check.py confirms that every implementation computes the same x_t, output,
loss, gradients and reverse step as the reference (perturbed weights, eval mode); then the steps are timed
interleaved in one process (torch numpy cpu torch numpy cpu ...), so drift of the machine's speed hits all
alike, and each is reported as its median time and its per-round ratio to PyTorch (median and p25-p75).
The timed models start from the same weights (copied from pyddpm's). Both sides run with the same number
of threads (OMP_NUM_THREADS, else every core: OpenBLAS and OpenMP for pyddpm, torch.set_num_threads for
PyTorch), thread pools that sleep rather than spin between calls (waiting.py: without that, pyddpm's
OpenBLAS threads spin into PyTorch's turn and slow it down by half) and, being one process, the same
allocator (glibc malloc and its environment). Peak memory comes from a fresh process per implementation
(memory.py); the floor is FLOPs / measured matmul rate (floor.py). Each row also says how much of the
machine other processes used while it was timed (load.py): interleaving does not protect a ratio against
a competing process, which slows pyddpm (OpenBLAS's thread pool) several times more than PyTorch; rerun
rows that show load.

Importable: ``from benchmarks.e2e.bench import bench``; import the benchmarks package before NumPy for
the thread settings to take effect (the result's "waiting" says what was in force).
"""

import argparse
import os

import numpy as np

from benchmarks import waiting
from benchmarks.e2e.check import check_agreement
from benchmarks.e2e.configs import CONFIGS
from benchmarks.e2e.floor import matmul_gflops, step_flops
from benchmarks.e2e.load import OtherLoad
from benchmarks.e2e.memory import peak_memory
from benchmarks.e2e.pyddpm_runner import PyddpmRunner
from benchmarks.harness import format_row, time_interleaved
from pyddpm.ops.backend import available, set_backend

IMPLS = ("torch", "numpy", "cpu")
REPEATS = {"A": 20, "B": 10, "C": 6}  # a round of C's training steps takes ~6 s (numpy ~2.7 s)
WARMUP = {"A": 3, "B": 1, "C": 1}


def threads():
    """The thread count both sides run with."""
    return int(os.environ.get("OMP_NUM_THREADS", os.cpu_count()))


def usable(impls):
    """The implementations of ``impls`` that can run here, PyTorch (the reference) first."""
    def ok(impl):
        if impl == "torch":
            try:
                import torch  # noqa: F401
            except ImportError:
                return False
            return True
        return available(impl)
    return [i for i in IMPLS if i in impls and ok(i)]


def bench(config, what="train", repeats=None, impls=IMPLS, warmup=None, check=True, memory=True, rate=None):
    """Time one configuration's "train" or "sample" step on each implementation, interleaved.

    config: a name in CONFIGS ("A", "B", "C"). Returns a dict:
      config, what, batch, threads, waiting (thread-pool settings, waiting.py);
      reference: the implementation the ratios are taken to (torch if present);
      flops; matmul_gflops: ``rate``, else measured just before timing; floor_s: flops / rate;
      other_load: the share of all cores that other processes used while timing (load.py);
      impls: {name: {median_s, ratio_p25, ratio_p50, ratio_p75, and with ``memory`` peak_mib,
      above_imports_mib (memory.py)}}; timed: the raw result of harness.time_interleaved.
    """
    config = CONFIGS[config]
    impls = usable(impls)
    repeats = REPEATS.get(config.name, 5) if repeats is None else repeats
    warmup = WARMUP.get(config.name, 1) if warmup is None else warmup
    n_threads = threads()
    if "torch" in impls:
        _torch_threads(n_threads)
    if check:
        check_agreement(config, impls)

    images = np.random.default_rng(0).integers(0, 256, (64, *config.image_shape()), dtype=np.uint8)
    runners = {i: PyddpmRunner(config, i, images) for i in impls if i != "torch"}
    if "torch" in impls:
        from benchmarks.e2e.torch_runner import TorchRunner
        runners = {"torch": TorchRunner(config, images, init_from=next(iter(runners.values()), None)), **runners}
    steps = {i: (r.train_step if what == "train" else r.sample_step) for i, r in runners.items()}
    with OtherLoad() as load:
        if rate is None:
            set_backend("numpy")  # the cpu backend holds NumPy's BLAS at one thread; the floor wants them all
            rate = matmul_gflops()
        timed = time_interleaved(steps, repeats=repeats, warmup=warmup)
    del runners, steps  # free the models before the memory children run

    flops = step_flops(config, what)
    result = dict(config=config.name, what=what, batch=config.batch(what), threads=n_threads,
                  waiting=waiting.describe(),
                  reference=impls[0], flops=flops, matmul_gflops=rate, floor_s=flops / (rate * 1e9),
                  other_load=load.fraction, impls={}, timed=timed)
    for impl, (median, ratios) in timed.items():
        p25, p50, p75 = np.percentile(ratios, [25, 50, 75])
        entry = dict(median_s=median, ratio_p25=p25, ratio_p50=p50, ratio_p75=p75)
        if memory:
            entry.update(peak_memory(config.name, what, impl, n_threads))
        result["impls"][impl] = entry
    return result


def _pct(r):
    return "?" if r["other_load"] is None else f"{100 * r['other_load']:.0f}%"


def _torch_threads(n):
    import torch
    torch.set_num_threads(n)


def markdown_row(r):
    """| config | step | batch | per impl: median ms, ratio (p25-p75), memory | floor ms | other load |"""
    cells = []
    for impl, e in r["impls"].items():
        mem = f", {e['above_imports_mib']:.0f} MiB" if "above_imports_mib" in e else ""
        cells.append(f"{e['median_s'] * 1e3:.0f} ms, {e['ratio_p50']:.2f}x "
                     f"({e['ratio_p25']:.2f}-{e['ratio_p75']:.2f}){mem}")
    floor = f"{r['floor_s'] * 1e3:.0f} ms"
    return f"| {r['config']} | {r['what']} | {r['batch']} | " + " | ".join(cells) + f" | {floor} | {_pct(r)} |"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", nargs="+", choices=sorted(CONFIGS), default=sorted(CONFIGS))
    p.add_argument("--what", nargs="+", choices=["train", "sample"], default=["train", "sample"])
    p.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    p.add_argument("--repeats", type=int, help=f"timed rounds (default per config: {REPEATS})")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory children")
    p.add_argument("--no-check", action="store_true", help="time without checking agreement first")
    args = p.parse_args(argv)

    impls = usable(args.impls)
    print(f"threads {threads()}, {waiting.describe()}; ratios to {impls[0]} (median, p25-p75 of per-round "
          f"ratios); floor = FLOPs / matmul rate measured before each row")
    rows = []
    for name in args.config:
        for what in args.what:
            check = not args.no_check and what == args.what[0]  # once per configuration
            r = bench(name, what, args.repeats, impls, check=check, memory=not args.no_memory)
            label = (f"{name} {what} (batch {r['batch']}, floor {r['floor_s'] * 1e3:.0f} ms at "
                     f"{r['matmul_gflops']:.0f} GFLOP/s, other load {_pct(r)})")
            print(format_row(label, r["timed"]), flush=True)
            if not args.no_memory:
                print(" " * 45 + "  ".join(f"{i} peak {e['peak_mib']:.0f} MiB ({e['above_imports_mib']:.0f} "
                                           f"above imports)" for i, e in r["impls"].items()), flush=True)
            rows.append(markdown_row(r))
    print()
    print("| config | step | batch | " + " | ".join(impls) + " | floor | other load |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in impls) + " | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
