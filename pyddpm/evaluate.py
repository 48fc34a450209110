"""python -m pyddpm.evaluate: the negative log-likelihood bound in bits/dim on a data split (Eq. 5, Table 1),
and with --samples N (or --samples-npz FILE) the quality of the run's samples.

total = L_T (prior) + sum over t > 1 of L_{t-1} (the KL terms) + L_0 (the discretized decoder, Eq. 13),
each in bits per dimension, averaged over the images; computed with the EMA weights. The noise of image
i comes from its own generator (seed, i), so the result does not depend on --batch-size.

The sample metrics (pyddpm.metrics) are pyddpm's own, in the features of a small classifier it trains on
the data set's labels and caches ($PYDDPM_CACHE or ~/.cache/pyddpm): the Fréchet distance to the test
split, precision and recall, confidence and the entropy of the predicted classes, each beside the same
scores of N real train images (the floor) and of N noise images (the ceiling).

With --ode-bpd K, beside the bound: the likelihood of the same images through the probability-flow ODE
(pyddpm.diffusion.ode_likelihood: K Heun steps, Hutchinson's trace with one Rademacher probe per image,
uniform dequantisation), as bits/dim, an upper bound on the discrete NLL like the variational one.

On a run of the one-latent VAE (--model vae): the negative ELBO in bits/dim (reconstruction + KL to the prior)
and the IWAE bound with --iwae K importance samples (pyddpm/vae_cli.py); the samples scored are the decoder
means at z ~ N(0, I). --ode-bpd, a diffusion's, is refused there.
"""

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import pyddpm
from pyddpm.arrays import to_host
from pyddpm.autograd import no_grad
from pyddpm.checkpoint import CheckpointError
from pyddpm.command import run
from pyddpm.data import DataError, load_data, to_model_range
from pyddpm.diffusion.noise import PerSampleNoise
from pyddpm.diffusion.ode_likelihood import bits_per_dim, dequantize, ode_log_likelihood
from pyddpm.diffusion.samplers.steps import check_steps
from pyddpm.fileio import append_json_line, atomic_write_json, check_output_file
from pyddpm.image_grid import save_side_by_side
from pyddpm.inception import inception_scores
from pyddpm.inception import requirements as inception_requirements
from pyddpm.ops.backend import BackendUnavailable, array_library, set_backend
from pyddpm.sampling import check_counts
from pyddpm.scoring import format_table, score_samples
from pyddpm.train.builders import load_trained, model_fn_arrays, model_vjp_arrays, run_config
from pyddpm.vae_cli import format_vae_bpd, is_vae_run, refuse_diffusion_flags, vae_evaluate


def evaluate(ckpt, split="test", n=None, batch_size=100, seed=0, data=None, weights="ema", progress=True,
             ode_steps=None):
    """Bits/dim of the run in ``ckpt`` on the first ``n`` images of ``split``; returns a dict of floats. With
    ``ode_steps`` K, also the bits/dim through the probability-flow ODE on the same images (ode_bpd)."""
    check_counts(n=n, seed=seed, batch_size=batch_size)
    cfg, model, diffusion, meta = load_trained(ckpt, weights)
    images = load_data(data or cfg.data, split).images
    if tuple(images.shape[1:]) != tuple(meta["image_shape"]):
        raise DataError(f"{data or cfg.data}: images are {images.shape[1:]}, the model was trained on "
                        f"{tuple(meta['image_shape'])}")
    images = images[:n] if n else images
    parts = {"total_bpd": [], "prior_bpd": [], "decoder_bpd": [], "kl_bpd": [], "terms_bpd": []}
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
            parts["terms_bpd"].append(r["vb_terms"])
    terms = np.concatenate(parts.pop("terms_bpd")).mean(axis=0)
    result = {k: float(np.concatenate(v).mean()) for k, v in parts.items()}
    result["terms_bpd"] = [float(v) for v in terms]  # index t: L_t, the decoder L_0 at index 0 (Eq. 5)
    result.update(n=len(images), split=split, data=data or cfg.data, step=meta["step"], weights=weights,
                  timesteps=diffusion.num_timesteps)
    if ode_steps is not None:
        result.update(ode_bpd(model, diffusion, images, ode_steps, batch_size, seed, progress))
    return result


def ode_bpd(model, diffusion, images, steps, batch_size=100, seed=0, progress=True):
    """Bits/dim through the probability-flow ODE with K = ``steps`` of the trained ``model`` on uint8 ``images``
    (N, C, H, W): a dict with ode_bpd (the mean), its standard error, K and N. Image i's dequantisation noise and
    probe come from its own generator (seed, i), so the result does not depend on ``batch_size``."""
    check_steps(steps, diffusion.num_timesteps, "--ode-bpd")
    vjp_fn, xp, bpd = model_vjp_arrays(model), array_library(), []
    for start in range(0, len(images), batch_size):
        x0 = to_model_range(images[start:start + batch_size])
        gens = [np.random.default_rng([seed, i, 1]) for i in range(start, start + len(x0))]
        probe = np.stack([g.choice([-1.0, 1.0], size=x0.shape[1:]) for g in gens])
        y = np.stack([dequantize(x, g) for x, g in zip(x0, gens)])
        r = ode_log_likelihood(vjp_fn, diffusion, xp.asarray(y), None, steps, probe=probe, progress=progress)
        bpd.append(bits_per_dim(r["log_likelihood"], x0[0].size))
    bpd = np.concatenate(bpd)
    return {"ode_bpd": float(bpd.mean()), "ode_bpd_se": float(bpd.std() / np.sqrt(len(bpd))), "ode_steps": steps,
            "ode_n": len(bpd)}


HISTORY_NAME = "eval_history.jsonl"


def append_history(path, record):
    """Add one line, the record with the time, to the run's evaluation history (for curves over steps)."""
    append_json_line(path, {**record, "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}, sync=True)


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
    p.add_argument("--samples", type=int, help="draw N samples from the run and score them")
    p.add_argument("--samples-npz", help="score the samples in this .npz (key 'images', uint8 (N, C, H, W))")
    p.add_argument("--sample-batch-size", type=int, default=64, help="batch size for drawing samples")
    p.add_argument("--grid", help="PNG of the samples beside real test images (default: <ckpt>/eval_samples.png)")
    p.add_argument("--cache-dir", help="where the feature classifier is cached (default: $PYDDPM_CACHE or "
                                       "~/.cache/pyddpm)")
    p.add_argument("--skip-bpd", action="store_true", help="score the samples only, not the bound")
    p.add_argument("--ode-bpd", type=int, metavar="K", help="also bits/dim through the probability-flow ODE in K "
                                                           "steps (1..T), on the same images")
    p.add_argument("--iwae", type=int, metavar="K", help="VAE runs: importance samples per image for the IWAE "
                                                         "bound (default 64)")
    p.add_argument("--fid", choices=["inception"], help="also the standard FID and Inception Score through "
                                                       "torch-fidelity (installed, with its weights present)")
    args = p.parse_args(argv)
    pyddpm.tune_process()
    ckpt_dir = Path(args.ckpt).parent if Path(args.ckpt).suffix == ".json" else Path(args.ckpt)
    out = Path(args.out) if args.out else ckpt_dir / f"eval_{args.split}.json"
    grid = Path(args.grid) if args.grid else ckpt_dir / "eval_samples.png"
    scoring = args.samples is not None or args.samples_npz is not None

    def work():
        check_counts(n=args.n, seed=args.seed, batch_size=args.batch_size, samples=args.samples,
                     sample_batch_size=args.sample_batch_size)
        if args.samples is not None and args.samples_npz is not None:
            raise ValueError("give --samples N or --samples-npz FILE, not both")
        if args.fid and not scoring:
            raise ValueError("--fid inception scores samples: give --samples N or --samples-npz FILE")
        if args.fid:
            inception_requirements()  # before any sampling: a missing piece is said at once
        if args.skip_bpd and not scoring:
            raise ValueError("--skip-bpd leaves nothing to do without --samples or --samples-npz")
        vae = is_vae_run(args.ckpt)
        if vae:
            refuse_diffusion_flags(args.ckpt, ode_bpd=args.ode_bpd)
        elif args.iwae is not None:
            raise ValueError(f"--iwae applies to VAE runs (--model vae); {args.ckpt} is a DDPM run")
        if args.ode_bpd is not None:
            if args.skip_bpd:
                raise ValueError("--ode-bpd is computed beside the bound: not with --skip-bpd")
            check_steps(args.ode_bpd, run_config(args.ckpt)[0].timesteps, "--ode-bpd")
        check_output_file(out, "--out")
        if scoring:
            check_output_file(grid, "--grid")
        set_backend(args.backend)
        if args.skip_bpd:
            bpd = None
        elif vae:
            bpd = vae_evaluate(args.ckpt, args.split, args.n, args.batch_size, args.seed, args.data, args.weights,
                               64 if args.iwae is None else args.iwae)
        else:
            bpd = evaluate(args.ckpt, args.split, args.n, args.batch_size, args.seed, args.data, args.weights,
                           ode_steps=args.ode_bpd)
        if bpd is not None and not np.isfinite(bpd["total_bpd"]):
            raise ValueError(f"{args.ckpt}: the bound came out as {bpd['total_bpd']} bits/dim")
        scores = samples = None
        if scoring:
            cfg, _, meta = run_config(args.ckpt)
            scores, samples, test = score_samples(args.ckpt, args.data or cfg.data, args.samples, args.samples_npz,
                                                  args.seed, args.sample_batch_size, args.cache_dir)
            save_side_by_side(grid, samples, test[np.random.default_rng(args.seed).permutation(len(test))[:64]])
            scores["step"] = meta["step"]
            if args.fid:
                scores["rows"]["samples"].update(inception_scores(samples, test))
        return bpd, scores

    result, code = run(work, (BackendUnavailable, CheckpointError, DataError, ValueError))
    if code:
        return code
    bpd, scores = result
    record = {**(bpd or {"step": scores["step"]}), **({"sample_metrics": scores} if scores else {})}
    atomic_write_json(out, record)
    append_history(ckpt_dir / HISTORY_NAME, record)
    if bpd is not None and bpd.get("model_type") == "vae":
        print(format_vae_bpd(bpd))
        bpd = None
    if bpd is not None or scores:
        print(format_table(bpd, scores))
    if scores:
        print(f"wrote {grid} (samples on the left, real test images on the right)")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
