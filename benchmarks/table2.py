"""python -m benchmarks.table2: Table 2 of Ho et al. 2020 (and the improved-DDPM rows) on the built-in digits.

    python -m benchmarks.table2 --runs runs/table2 [--n-bpd 100] [--n-samples 256] [--sample-steps 250]

One row per (mean parameterisation x objective x variance), each trained from scratch with the digits preset's
budget (2000 steps at batch 32, Adam at 1e-3 after 100 warm-up steps, EMA 0.9999, T = 1000, seed 0), then
scored with its EMA weights: the bound (Eq. 5) in bits/dim on the first --n-bpd test images; --n-samples samples
by ancestral sampling (Alg. 2, with the learned variance where there is one) over --sample-steps evenly spaced
steps, scored against the test split (FD, precision, recall in the features of the digits classifier,
pyddpm.metrics); and whether training stayed stable: a non-finite loss stops a run (TrainingError), and the
spread of the logged losses over the last quarter of training (their standard deviation over their mean).
A row whose run folder already holds a finished run is not trained again. Rows go to --out as they finish.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pyddpm.arrays import to_host
from pyddpm.autograd import no_grad
from pyddpm.checkpoint import find_checkpoint, read_checkpoint_meta
from pyddpm.data import load_data, to_uint8
from pyddpm.diffusion.noise import PerSampleNoise
from pyddpm.diffusion.samplers import SAMPLERS
from pyddpm.evaluate import evaluate
from pyddpm.fileio import atomic_write_json
from pyddpm.metrics import Scorer, load_or_train
from pyddpm.ops.backend import array_library, set_backend
from pyddpm.train.builders import load_trained, model_fn_arrays

# (row name, folder, training flags): Table 2's rows first, then the x0 rows and Nichol & Dhariwal's.
ROWS = [
    ("eps, L_simple, fixed beta", "eps_simple", []),
    ("eps, L (bound), fixed beta", "eps_kl", ["--loss-type", "kl"]),
    ("eps, L (bound), learned diagonal", "eps_kl_learned", ["--loss-type", "kl", "--var-type", "learned"]),
    ("mu-tilde, ||mu-tilde - mu||^2, fixed beta", "mean_simple", ["--mean-type", "mean"]),
    ("mu-tilde, L (bound), fixed beta", "mean_kl", ["--mean-type", "mean", "--loss-type", "kl"]),
    ("mu-tilde, L (bound), learned diagonal", "mean_kl_learned",
     ["--mean-type", "mean", "--loss-type", "kl", "--var-type", "learned"]),
    ("x0, ||x0 - x0_theta||^2, fixed beta", "x0_simple", ["--mean-type", "x0"]),
    ("x0, SNR-weighted (= eps-MSE), fixed beta", "x0_snr", ["--mean-type", "x0", "--x0-weight", "snr"]),
    ("eps, L_hybrid, learned range", "eps_hybrid_range", ["--loss-type", "hybrid", "--var-type", "learned-range"]),
    ("eps, L (bound), learned range, importance t", "eps_kl_range_is",
     ["--loss-type", "kl", "--var-type", "learned-range", "--t-sampling", "importance"]),
]


def train(folder, flags):
    """Train one row's run (the digits preset) unless a finished one is there; returns (seconds, error or None)."""
    if find_checkpoint(folder) and read_checkpoint_meta(folder)["step"] >= 2000:
        return None, None
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pyddpm.train", "--out", str(folder), *flags],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    error = done.stderr.strip().splitlines()[-1] if done.returncode else None
    return time.perf_counter() - start, error


def stability(folder):
    """(relative spread of the logged losses over the last quarter of steps, any non-finite loss logged)."""
    records = [json.loads(line) for line in (Path(folder) / "log.jsonl").read_text().splitlines() if line]
    last = max(r["step"] for r in records)
    tail = np.array([r["loss"] for r in records if r["step"] > 0.75 * last])
    return float(np.std(tail) / abs(np.mean(tail))), bool(not np.isfinite(tail).all())


def sample_scores(folder, n, steps, scorer):
    cfg, model, diffusion, meta = load_trained(folder)
    with no_grad():
        x = SAMPLERS["ancestral"](model_fn_arrays(model), diffusion, (n, *meta["image_shape"]), PerSampleNoise(0, 0, n),
                                  steps, progress=False, xp=array_library())
    return scorer.score(to_uint8(np.nan_to_num(to_host(x), nan=0.0)))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.table2", description=__doc__)
    p.add_argument("--runs", default="runs/table2", help="folder for the rows' runs")
    p.add_argument("--out", default="benchmarks/table2_digits.json")
    p.add_argument("--n-bpd", type=int, default=100)
    p.add_argument("--n-samples", type=int, default=256)
    p.add_argument("--sample-steps", type=int, default=250)
    p.add_argument("--only", nargs="*", help="row folders to run (default: all)")
    args = p.parse_args(argv)
    set_backend("auto")
    data_train, data_test = load_data("digits", "train"), load_data("digits", "test")
    scorer = Scorer(load_or_train(data_train, data_test, progress=False)[0], data_test.images)
    out = Path(args.out)
    rows = json.loads(out.read_text())["rows"] if out.exists() else []
    for name, slug, flags in ROWS:
        if args.only and slug not in args.only:
            continue
        folder = Path(args.runs) / slug
        seconds, error = train(folder, flags)
        row = {"row": name, "flags": " ".join(flags), "train_seconds": seconds, "error": error}
        if error is None:
            row["spread"], row["nan"] = stability(folder)
            bound = evaluate(folder, "test", n=args.n_bpd, progress=False)
            row.update({k: v for k, v in bound.items() if k != "terms_bpd"}, first_terms_bpd=bound["terms_bpd"][:5])
            row.update(sample_scores(folder, args.n_samples, args.sample_steps, scorer))
        rows = [r for r in rows if r["row"] != name] + [row]
        atomic_write_json(out, {"n_bpd": args.n_bpd, "n_samples": args.n_samples,
                                "sample_steps": args.sample_steps, "rows": rows})
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
