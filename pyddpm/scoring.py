"""The sample half of ``python -m pyddpm.evaluate``: score a run's samples with pyddpm's own metrics.

Takes N samples drawn from the run (or a .npz of them, key "images", uint8 (N, C, H, W) as
``python -m pyddpm.sample --npz`` writes), the feature classifier of the run's data set (trained once and
cached, pyddpm.metrics.cache), and returns the scores with the floor ("real train") and ceiling
("gaussian noise") rows at the same N.
"""

import zipfile

import numpy as np

from pyddpm.data import load_data
from pyddpm.metrics import METRICS, Scorer, check_samples, load_or_train, reference_rows
from pyddpm.sampling import sample


def load_samples_npz(path):
    """The uint8 images stored under "images" in the .npz at ``path``; ValueError naming the problem."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not hasattr(loaded, "files"):  # a .npy file: one array, not an archive
            raise ValueError("a .npy array, not an .npz archive")
        with loaded as f:
            arrays = {name: f[name] for name in f.files if name == "images"}
            names = f.files
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:  # numpy says "pickled data" for non-npz
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    if "images" not in arrays:
        raise ValueError(f"{path}: no array named 'images' in the npz (it has: {', '.join(names) or 'none'})")
    return arrays["images"]


def score_samples(ckpt, data_spec, n=None, samples_npz=None, seed=0, batch_size=64, cache_dir=None,
                  progress=True):
    """The sample metrics of the run in ``ckpt`` on data set ``data_spec``; returns (result dict, samples,
    the test split's images).

    Either n samples are drawn (seed, batch_size as in pyddpm.sample) or the .npz ``samples_npz`` is read.
    """
    train, test = load_data(data_spec, "train"), load_data(data_spec, "test")
    if samples_npz is not None:
        samples = check_samples(load_samples_npz(samples_npz), test.images, samples_npz)
    else:
        if n < 2:
            raise ValueError(f"--samples must be at least 2 (a covariance needs two images), got {n}")
        samples = sample(ckpt, n, seed=seed, batch_size=batch_size, progress=progress)
        samples = check_samples(samples, test.images, ckpt)
    net, info = load_or_train(train, test, cache_dir=cache_dir, progress=progress)
    scorer = Scorer(net, test.images)
    rows = {"samples": scorer.score(samples), **reference_rows(scorer, train.images, len(samples), seed)}
    classifier = {"test_accuracy": info["test_accuracy"], "cache": info["folder"], "data": train.name}
    return {"n_samples": len(samples), "test_images": len(test.images), "classifier": classifier,
            "rows": rows}, samples, test.images


def format_table(bpd, scores):
    """The report as text: bits/dim with its breakdown (if ``bpd``), then the sample metrics' rows."""
    lines = []
    if bpd is not None:
        lines += [f"bits/dim on {bpd['n']} {bpd['split']} images: {bpd['total_bpd']:.4f} (prior "
                  f"{bpd['prior_bpd']:.5f}, decoder {bpd['decoder_bpd']:.4f}, sum of KL {bpd['kl_bpd']:.4f})"]
        if "ode_bpd" in bpd:
            lines.append(f"bits/dim through the probability-flow ODE ({bpd['ode_steps']} Heun steps, Hutchinson "
                         f"trace, dequantised): {bpd['ode_bpd']:.4f} +- {bpd['ode_bpd_se']:.4f}")
    if scores is not None:
        c = scores["classifier"]
        lines += ["", f"sample metrics, N = {scores['n_samples']} against {scores['test_images']} test images, "
                      f"in the features of pyddpm's classifier (test accuracy {100 * c['test_accuracy']:.1f}%):",
                  f"{'':16}" + "".join(f"{m:>14}" for m in METRICS)]
        for name, row in scores["rows"].items():
            lines.append(f"{name:16}" + "".join(f"{row[m]:14.4f}" for m in METRICS))
        inception = scores["rows"]["samples"]
        if "inception_fid" in inception:
            lines.append(f"through torch-fidelity: FID {inception['inception_fid']:.3f}, Inception Score "
                         f"{inception['inception_score']:.3f} +- {inception['inception_score_std']:.3f}")
        lines.append("fd: lower is better (the 'real train' row is the floor at this N, 'gaussian noise' the "
                     "ceiling); precision, recall, confidence: higher; class_entropy: log2 K for balanced classes")
    return "\n".join(lines)
