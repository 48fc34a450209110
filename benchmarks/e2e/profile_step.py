"""Where a step's time goes: cProfile for pyddpm, torch.profiler for PyTorch.

    python -m benchmarks.e2e.profile_step --config A --impl cpu [--what train] [--steps 5] [--top 25]

pyddpm: the functions with the most time of their own (tottime). NumPy's matmul runs inside the Python
line that calls it (the `@` operator is no function call to cProfile), so a convolution's GEMM is
counted in conv.py's own time; a native profiler (e.g. `perf record -g` and `perf report --sort dso`)
splits BLAS from the rest. PyTorch: the aten operators with the most self CPU time.
"""

import argparse
import cProfile
import os
import pstats

import numpy as np

from benchmarks.e2e.configs import CONFIGS
from benchmarks.e2e.pyddpm_runner import PyddpmRunner

WARMUP = 2


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", choices=sorted(CONFIGS), default="A")
    p.add_argument("--impl", choices=["numpy", "cpu", "torch"], default="cpu")
    p.add_argument("--what", choices=["train", "sample"], default="train")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    config = CONFIGS[args.config]
    images = np.random.default_rng(0).integers(0, 256, (64, *config.image_shape()), dtype=np.uint8)
    if args.impl == "torch":
        import torch

        from benchmarks.e2e.torch_runner import TorchRunner
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
        runner = TorchRunner(config, images)
    else:
        runner = PyddpmRunner(config, args.impl, images)
    step = runner.train_step if args.what == "train" else runner.sample_step
    for _ in range(WARMUP):
        step()
    print(f"config {args.config}, {args.what} step, {args.impl}, {args.steps} steps after {WARMUP} warm-up")
    if args.impl == "torch":
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
    else:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.steps):
            step()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
