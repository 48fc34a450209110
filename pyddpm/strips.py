"""The two strips of python -m pyddpm.sample: a sampler's trajectory and interpolation through x_t.

trajectory_strip: for each image, two rows: x_t and the model's estimate of x_0 (Eq. 15, Ho et al. 2020;
their Fig. 6 shows the latter) at ``columns`` evenly spaced model calls of any sampler, the last being the
sample itself. interpolation_strip: for each pair of test images, one row: x_a, the decodings of
(1 - lam) x_t^a + lam x_t^b for lam = 0, 1/8, ..., 1, and x_b (Fig. 8).
"""

import numpy as np

from pyddpm.arrays import to_host
from pyddpm.autograd import no_grad
from pyddpm.data import DataError, load_data, to_model_range, to_uint8
from pyddpm.diffusion.samplers import interpolate
from pyddpm.diffusion.samplers.steps import check_steps
from pyddpm.ops.backend import array_library
from pyddpm.sampling import sample_batches
from pyddpm.train.builders import load_trained, model_fn_arrays

LAMBDAS = np.linspace(0.0, 1.0, 9)


def trajectory_strip(ckpt, n, seed=0, batch_size=64, weights="ema", progress=True, sampler="ancestral", steps=None,
                     eta=None, columns=10):
    """(images uint8 (2 n columns, C, H, W), columns): rows x_t, x0_hat for each of the n images, row-major."""
    records = {}

    def callback(start):
        records[start] = []
        return lambda i, x, x0: records[start].append((to_host(x), to_host(x0)))

    rows = []
    for start, x in sample_batches(ckpt, n, seed, batch_size, weights, progress, sampler, steps, eta, callback):
        calls = records.pop(start)
        picks = np.unique(np.round(np.linspace(0, len(calls) - 1, columns)).astype(int))
        xt = np.stack([calls[k][0] for k in picks], axis=1)   # (count, columns, C, H, W)
        x0 = np.stack([calls[k][1] for k in picks], axis=1)
        xt[:, -1] = x  # the last column: the sample as returned
        rows.append(np.stack([xt, x0], axis=1).reshape(-1, *x.shape[1:]))
    return to_uint8(np.clip(np.concatenate(rows), -1, 1)), len(picks)


def interpolation_strip(ckpt, pairs, index, seed=0, weights="ema", progress=True, steps=None):
    """(images uint8 (pairs (len(LAMBDAS) + 2), C, H, W), len(LAMBDAS) + 2): for each pair of test images (drawn
    with ``seed``), x_a, its interpolations with x_b through x_t at chain index ``index`` and x_b."""
    cfg, model, diffusion, meta = load_trained(ckpt, weights)
    T = diffusion.num_timesteps
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < T:
        raise ValueError(f"--interpolate must be a timestep index in 0..{T - 1}, got {index!r}")
    if steps is not None:
        check_steps(steps, index + 1)
    try:
        test = load_data(cfg.data, "test")
    except DataError as e:
        raise DataError(f"--interpolate needs the run's test images ({cfg.data}): {e}") from None
    if len(test.images) < 2 * pairs:
        raise ValueError(f"--interpolate: {pairs} pairs need {2 * pairs} test images, the run's data has "
                         f"{len(test.images)}")
    chosen = np.random.default_rng(seed).choice(len(test.images), 2 * pairs, replace=False)
    rows = []
    with no_grad():
        for p in range(pairs):
            a, b = (to_model_range(test.images[k]) for k in chosen[2 * p:2 * p + 2])
            decoded = interpolate(model_fn_arrays(model), diffusion, a, b, index, LAMBDAS,
                                  np.random.default_rng([seed, p]), progress=progress, xp=array_library(), steps=steps)
            rows.append(np.concatenate([a[None], to_host(decoded), b[None]]))
    return to_uint8(np.clip(np.concatenate(rows), -1, 1)), len(LAMBDAS) + 2
