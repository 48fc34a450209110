"""Peak memory of one implementation's steps, each measured in a fresh process that runs only it.

    python -m benchmarks.e2e.memory --config A --what train --impl cpu

What the number is: the child's peak resident set size (VmHWM, /proc/self/status) over building the
model, its EMA copy and the optimizer state and running a few steps, minus its resident size right after
importing its libraries (VmRSS then). So it counts every page the implementation touches, whoever
allocated it (NumPy, OpenBLAS, the C++ extension, PyTorch's allocator), and not the libraries' own code
and data; tracemalloc would see NumPy's arrays only. A pyddpm child never imports torch; a torch child
starts from PyTorch's own initialisation (weights do not change the memory). Linux only (/proc).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys

STEPS = 3
ROOT = pathlib.Path(__file__).resolve().parents[2]  # the checkout: its benchmarks and pyddpm for the child


def peak_memory(config_name, what, impl, threads):
    """{"peak_mib": the child's peak RSS, "above_imports_mib": that minus its RSS after imports} (MiB)."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.e2e.memory", "--config", config_name, "--what", what,
                          "--impl", impl, "--threads", str(threads)], cwd=ROOT, check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _status_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def _child(config_name, what, impl, threads):
    import numpy as np

    from benchmarks.e2e.configs import CONFIGS
    from benchmarks.e2e.pyddpm_runner import PyddpmRunner
    if impl == "torch":
        import torch

        from benchmarks.e2e.torch_runner import TorchRunner
        torch.set_num_threads(threads)
    config = CONFIGS[config_name]
    images = np.random.default_rng(0).integers(0, 256, (64, *config.image_shape()), dtype=np.uint8)
    base = _status_mib("VmRSS")
    runner = TorchRunner(config, images) if impl == "torch" else PyddpmRunner(config, impl, images)
    step = runner.train_step if what == "train" else runner.sample_step
    for _ in range(STEPS):
        step()
    peak = _status_mib("VmHWM")
    print(json.dumps({"peak_mib": peak, "above_imports_mib": peak - base}))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--what", choices=["train", "sample"], required=True)
    p.add_argument("--impl", choices=["numpy", "cpu", "torch"], required=True)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    _child(args.config, args.what, args.impl, args.threads)


if __name__ == "__main__":
    main()
