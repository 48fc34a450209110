"""python -m pyddpm.sample: draw images from a trained run with ancestral sampling (Alg. 2, Ho et al. 2020).

Uses the EMA weights, as the paper's samples do. Writes a PNG grid and, with --npz, the raw samples.
Image i of a seed is the same at any --batch-size: its noise comes from its own generator (seed, i).
"""

import argparse
import sys

import numpy as np

import pyddpm
from pyddpm.arrays import to_host
from pyddpm.autograd import no_grad
from pyddpm.checkpoint import CheckpointError
from pyddpm.command import run
from pyddpm.data import to_uint8
from pyddpm.diffusion.noise import PerSampleNoise
from pyddpm.fileio import atomic_open, check_output_file
from pyddpm.image_grid import save_image_grid
from pyddpm.ops.backend import BackendUnavailable, array_library, set_backend
from pyddpm.train.builders import load_trained, model_fn_arrays


def check_counts(**flags):
    """ValueError naming the flag for a count below its minimum: n, batch_size >= 1; seed >= 0."""
    for name, value in flags.items():
        low = 0 if name == "seed" else 1
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}")


def sample(ckpt, n, seed=0, batch_size=64, weights="ema", progress=True):
    """Returns uint8 samples (n, C, H, W) from the run in ``ckpt``; image i depends on (seed, i) only."""
    check_counts(n=n, seed=seed, batch_size=batch_size)
    cfg, model, diffusion, meta = load_trained(ckpt, weights)
    # Allocated first, as the batch itself would be: a batch too large for memory fails here, at once.
    np.empty((min(n, batch_size), *meta["image_shape"]), np.float32)
    chunks = []
    with no_grad():
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            x = diffusion.p_sample_loop(model_fn_arrays(model), (count, *meta["image_shape"]),
                                        PerSampleNoise(seed, start, count), progress=progress, xp=array_library())
            x = to_host(x)
            if not np.isfinite(x).all():
                raise ValueError(f"{ckpt}: sampling gave inf or NaN values (images {start}..{start + count - 1})")
            chunks.append(to_uint8(x))
    return np.concatenate(chunks)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pyddpm.sample", description=__doc__)
    p.add_argument("--ckpt", required=True, help="run folder (or its checkpoint.json)")
    p.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    p.add_argument("--out", default="samples.png", help="PNG grid to write (default samples.png)")
    p.add_argument("--npz", help="also write the samples as uint8 (N, C, H, W) under key 'images'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=["auto", "numpy", "cpu", "cuda"], default="auto",
                   help="where the kernels run (auto: cuda, else cpu if built, else numpy)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--weights", choices=["ema", "model"], default="ema",
                   help="EMA weights (default, as the paper) or the raw trained weights")
    args = p.parse_args(argv)
    pyddpm.tune_process()

    def work():
        check_counts(n=args.n, seed=args.seed, batch_size=args.batch_size)
        check_output_file(args.out, "--out")
        if args.npz:
            check_output_file(args.npz, "--npz")
        set_backend(args.backend)
        return sample(args.ckpt, args.n, args.seed, args.batch_size, args.weights)

    images, code = run(work, (BackendUnavailable, CheckpointError, ValueError))
    if code:
        return code
    save_image_grid(args.out, images)
    print(f"wrote {args.out}")
    if args.npz:
        with atomic_open(args.npz) as f:
            np.savez(f, images=images)
        print(f"wrote {args.npz}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
