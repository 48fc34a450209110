"""python -m pyddpm.sample: draw images from a trained run with any sampler of pyddpm.diffusion.samplers.

The default is Alg. 2 of Ho et al. 2020 (ancestral sampling) over all T steps, with the EMA weights, as the
paper's samples. --sampler and --steps pick another sampler and its number of steps K; --trajectory writes
each image's x_t and predicted x_0 (Eq. 15) along the way, --interpolate decodes mixtures of two test images
through x_t (Fig. 8); both as PNG strips (pyddpm/strips.py). Writes a PNG and, with --npz, the raw samples.
Image i of a seed is the same at any --batch-size (its noise comes from its own generator (seed, i)), except
with --sampler pc, whose Langevin step size is shared by the batch.

On a run of the one-latent VAE (--model vae): the decoder means at z ~ N(0, I), and with --reconstruct PNG the
first --n test images beside their reconstructions (pyddpm/vae_cli.py); the diffusion's flags are refused.
"""

import argparse
import sys

import numpy as np

import pyddpm
from pyddpm.checkpoint import CheckpointError
from pyddpm.command import run
from pyddpm.data import DataError
from pyddpm.diffusion.samplers import SAMPLERS
from pyddpm.fileio import atomic_open, check_output_file
from pyddpm.image_grid import save_image_grid
from pyddpm.ops.backend import BackendUnavailable, set_backend
from pyddpm.sampling import check_counts, sample
from pyddpm.strips import interpolation_strip, trajectory_strip
from pyddpm.vae_cli import is_vae_run, refuse_diffusion_flags, vae_reconstructions, vae_samples


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pyddpm.sample", description=__doc__)
    p.add_argument("--ckpt", required=True, help="run folder (or its checkpoint.json)")
    p.add_argument("--n", type=int, help="number of images (default 64; 8 for --trajectory and --interpolate, "
                                         "where it counts rows)")
    p.add_argument("--out", default="samples.png", help="PNG to write (default samples.png)")
    p.add_argument("--npz", help="also write the samples as uint8 (N, C, H, W) under key 'images'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampler", choices=list(SAMPLERS),
                   help="ancestral (Alg. 2, default), ddim, langevin (one noise level), annealed-langevin, sde "
                        "(Euler-Maruyama on the reverse SDE), pc (predictor-corrector), ode (probability flow, Heun)")
    p.add_argument("--steps", type=int, help="K, the sampler's number of steps, 1..T (default T)")
    p.add_argument("--eta", type=float, help="DDIM's eta >= 0 (default 0, deterministic; 1 is ancestral with "
                                             "beta-tilde)")
    p.add_argument("--trajectory", action="store_true",
                   help="write, for each image, x_t and the predicted x_0 at 10 points of the sampling as a strip")
    p.add_argument("--interpolate", type=int, nargs="?", const=500, metavar="T",
                   help="write interpolations between pairs of test images, encoded to x_t at index T (default "
                        "500) and decoded by Alg. 2, one strip per pair")
    p.add_argument("--backend", choices=["auto", "numpy", "cpu", "cuda"], default="auto",
                   help="where the kernels run (auto: cuda, else cpu if built, else numpy)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--weights", choices=["ema", "model"], default="ema",
                   help="EMA weights (default, as the paper) or the raw trained weights")
    p.add_argument("--reconstruct", metavar="PNG", help="VAE runs: also write the first --n test images, each row "
                                                       "of them followed by the row of their reconstructions")
    args = p.parse_args(argv)
    pyddpm.tune_process()

    def work():
        strip = args.trajectory or args.interpolate is not None
        n = args.n if args.n is not None else (8 if strip else 64)
        check_counts(n=n, seed=args.seed, batch_size=args.batch_size)
        if args.trajectory and args.interpolate is not None:
            raise ValueError("--trajectory and --interpolate write different strips: pick one")
        if strip and args.npz:
            raise ValueError("--npz writes samples: not with --trajectory or --interpolate")
        sampler = args.sampler or "ancestral"
        if args.interpolate is not None and (sampler != "ancestral" or args.eta is not None):
            raise ValueError("--interpolate decodes with Alg. 2 (--sampler ancestral) and takes no --eta")
        check_output_file(args.out, "--out")
        if args.npz:
            check_output_file(args.npz, "--npz")
        if args.reconstruct:
            check_output_file(args.reconstruct, "--reconstruct")
        set_backend(args.backend)
        if is_vae_run(args.ckpt):
            refuse_diffusion_flags(args.ckpt, sampler=args.sampler, steps=args.steps, eta=args.eta,
                                   trajectory=args.trajectory, interpolate=args.interpolate)
            if args.reconstruct:
                save_image_grid(args.reconstruct, *vae_reconstructions(args.ckpt, n, weights=args.weights))
                print(f"wrote {args.reconstruct}")
            return vae_samples(args.ckpt, n, args.seed, args.batch_size, args.weights)
        if args.reconstruct:
            raise ValueError(f"--reconstruct applies to VAE runs (--model vae); {args.ckpt} is a DDPM run")
        if args.trajectory:
            return trajectory_strip(args.ckpt, n, args.seed, args.batch_size, args.weights, True, sampler,
                                    args.steps, args.eta)
        if args.interpolate is not None:
            return interpolation_strip(args.ckpt, n, args.interpolate, args.seed, args.weights, True, args.steps)
        return sample(args.ckpt, n, args.seed, args.batch_size, args.weights, True, sampler, args.steps,
                      args.eta)

    images, code = run(work, (BackendUnavailable, CheckpointError, DataError, ValueError))
    if code:
        return code
    if isinstance(images, tuple):  # a strip: (images, images per row)
        save_image_grid(args.out, images[0], nrow=images[1])
    else:
        save_image_grid(args.out, images)
    print(f"wrote {args.out}")
    if args.npz:
        with atomic_open(args.npz) as f:
            np.savez(f, images=images)
        print(f"wrote {args.npz}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
