"""python -m benchmarks.samplers: every sampler of one trained run at K steps, scored with pyddpm's metrics.

    python -m benchmarks.samplers --ckpt runs/digits2000 [--n 256] [--out benchmarks/samplers.json]

For each sampler and K in {10, 20, 50, 100, 1000} where it applies (annealed Langevin, five model calls a
level, to 100; Langevin at one level, a demonstration, at 1000), draws --n samples (seed 0, one batch, the
run's EMA weights, the automatic backend), times the sampling alone, and scores the samples against the test
split (FD, precision and recall in the features of the run's data classifier, pyddpm.metrics). Prints one
Markdown table and writes every row to --out as it goes (a cut-short run keeps what it measured).
"""

import argparse
import time

import numpy as np

from pyddpm.arrays import to_host
from pyddpm.autograd import no_grad
from pyddpm.data import load_data, to_uint8
from pyddpm.diffusion.noise import PerSampleNoise
from pyddpm.diffusion.samplers import SAMPLERS
from pyddpm.fileio import atomic_write_json
from pyddpm.metrics import Scorer, load_or_train
from pyddpm.ops.backend import array_library, set_backend
from pyddpm.train.builders import load_trained, model_fn_arrays

KS = (10, 20, 50, 100, 1000)
# (row name, sampler, keyword arguments, the Ks it runs at, model calls for K)
GRID = [
    ("ancestral", "ancestral", {}, KS, lambda k: k),
    ("ddim eta=0", "ddim", {"eta": 0.0}, KS, lambda k: k),
    ("sde (Euler-Maruyama)", "sde", {}, KS, lambda k: k),
    ("pc (snr 0.16, 1 corrector)", "pc", {}, KS, lambda k: 2 * k),
    ("ode (Heun)", "ode", {}, KS, lambda k: 2 * k - 1),
    ("annealed langevin (5 per level)", "annealed-langevin", {}, (10, 20, 50, 100), lambda k: 5 * k + 1),
    ("langevin (one level, index 0)", "langevin", {}, (1000,), lambda k: k + 1),
]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.samplers", description=__doc__)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--out", default="benchmarks/samplers.json")
    p.add_argument("--only", nargs="*", help="row names' first words to run (default: all)")
    p.add_argument("--data", help="data set to score against (default: the one the run trained on)")
    p.add_argument("--cache-dir", help="where the feature classifier is cached (as pyddpm.evaluate's)")
    args = p.parse_args(argv)
    set_backend("auto")
    cfg, model, diffusion, meta = load_trained(args.ckpt)
    train, test = load_data(args.data or cfg.data, "train"), load_data(args.data or cfg.data, "test")
    net, _ = load_or_train(train, test, cache_dir=args.cache_dir, progress=False)
    scorer = Scorer(net, test.images)
    rows = []
    for name, sampler, kwargs, ks, calls in GRID:
        if args.only and name.split()[0] not in args.only:
            continue
        for k in (k for k in ks if k <= diffusion.num_timesteps):
            start = time.perf_counter()
            with no_grad():
                x = SAMPLERS[sampler](model_fn_arrays(model), diffusion, (args.n, *meta["image_shape"]),
                                      PerSampleNoise(0, 0, args.n), k, progress=False, xp=array_library(), **kwargs)
            seconds = time.perf_counter() - start
            scores = scorer.score(to_uint8(np.nan_to_num(to_host(x), nan=0.0)))
            rows.append({"sampler": name, "K": k, "model_calls": calls(k), "seconds": seconds, **scores})
            atomic_write_json(args.out, {"ckpt": str(args.ckpt), "n": args.n, "rows": rows})
            print(f"| {name} | {k} | {calls(k)} | {scores['fd']:.3f} | {scores['precision']:.3f} | "
                  f"{scores['recall']:.3f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
