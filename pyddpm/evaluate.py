"""python -m pyddpm.evaluate: the negative log-likelihood bound in bits/dim on a data split (Eq. 5, Table 1).

total = L_T (prior) + sum over t > 1 of L_{t-1} (the KL terms) + L_0 (the discretized decoder, Eq. 13),
each in bits per dimension, averaged over the images; computed with the EMA weights. The noise of image
i comes from its own generator (seed, i), so the result does not depend on --batch-size.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

import pyddpm
from pyddpm.arrays import to_host
from pyddpm.autograd import no_grad
from pyddpm.checkpoint import CheckpointError
from pyddpm.command import run
from pyddpm.data import DataError, load_data, to_model_range
from pyddpm.diffusion.noise import PerSampleNoise
from pyddpm.fileio import atomic_write_json, check_output_file
from pyddpm.ops.backend import BackendUnavailable, array_library, set_backend
from pyddpm.sample import check_counts
from pyddpm.train.builders import load_trained, model_fn_arrays


def evaluate(ckpt, split="test", n=None, batch_size=100, seed=0, data=None, weights="ema", progress=True):
    """Bits/dim of the run in ``ckpt`` on the first ``n`` images of ``split``; returns a dict of floats."""
    check_counts(n=n, seed=seed, batch_size=batch_size)
    cfg, model, diffusion, meta = load_trained(ckpt, weights)
    images = load_data(data or cfg.data, split).images
    if tuple(images.shape[1:]) != tuple(meta["image_shape"]):
        raise DataError(f"{data or cfg.data}: images are {images.shape[1:]}, the model was trained on "
                        f"{tuple(meta['image_shape'])}")
    images = images[:n] if n else images
    parts = {"total_bpd": [], "prior_bpd": [], "decoder_bpd": [], "kl_bpd": []}
    with no_grad():
        for start in range(0, len(images), batch_size):
            x0 = array_library().asarray(to_model_range(images[start:start + batch_size]))
            rng = PerSampleNoise(seed, start, len(x0))
            r = diffusion.calc_bpd_loop(model_fn_arrays(model), x0, rng, progress=progress)
            r = {k: to_host(v) for k, v in r.items()}  # one transfer per batch of images
            parts["total_bpd"].append(r["total_bpd"])
            parts["prior_bpd"].append(r["prior_bpd"])
            parts["decoder_bpd"].append(r["vb_terms"][:, 0])  # index 0 is the paper's t = 1: L_0
            parts["kl_bpd"].append(r["vb_terms"][:, 1:].sum(axis=1))
    result = {k: float(np.concatenate(v).mean()) for k, v in parts.items()}
    result.update(n=len(images), split=split, data=data or cfg.data, step=meta["step"], weights=weights,
                  timesteps=diffusion.num_timesteps)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pyddpm.evaluate", description=__doc__)
    p.add_argument("--ckpt", required=True, help="run folder (or its checkpoint.json)")
    p.add_argument("--split", choices=["train", "test"], default="test")
    p.add_argument("--n", type=int, default=None, help="evaluate the first N images (default: all)")
    p.add_argument("--data", help="data set to score (default: the one the run trained on)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=["auto", "numpy", "cpu", "cuda"], default="auto",
                   help="where the kernels run (auto: cuda, else cpu if built, else numpy)")
    p.add_argument("--weights", choices=["ema", "model"], default="ema")
    p.add_argument("--out", help="JSON file for the result (default: <ckpt>/eval_<split>.json)")
    args = p.parse_args(argv)
    pyddpm.tune_process()
    ckpt_dir = Path(args.ckpt).parent if Path(args.ckpt).suffix == ".json" else Path(args.ckpt)
    out = Path(args.out) if args.out else ckpt_dir / f"eval_{args.split}.json"

    def work():
        check_counts(n=args.n, seed=args.seed, batch_size=args.batch_size)
        check_output_file(out, "--out")
        set_backend(args.backend)
        result = evaluate(args.ckpt, args.split, args.n, args.batch_size, args.seed, args.data, args.weights)
        if not np.isfinite(result["total_bpd"]):
            raise ValueError(f"{args.ckpt}: the bound came out as {result['total_bpd']} bits/dim")
        return result

    result, code = run(work, (BackendUnavailable, CheckpointError, DataError, ValueError))
    if code:
        return code
    atomic_write_json(out, result)
    print(f"bits/dim on {result['n']} {args.split} images: {result['total_bpd']:.4f} "
          f"(prior {result['prior_bpd']:.5f}, decoder {result['decoder_bpd']:.4f}, sum of KL {result['kl_bpd']:.4f})")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
