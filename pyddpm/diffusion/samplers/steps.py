"""What every sampler shares: which chain indices it visits, the noise it draws, and one model step.

A sampler visits K chain indices T-1 = i_K > ... > i_1 >= 0 (evenly spaced, as Nichol & Dhariwal 2021's
respacing) and ends at the clean data (abar = 1). One model step calls the network once at index i and
updates x with the fused kernel pyddpm.ops.sampler_step:
    x0_hat = from_x x + from_out model_output          (pyddpm.diffusion.score.x0_coefs)
    x_next = next_from_x0 x0_hat + next_from_x x + next_from_noise noise
where each sampler supplies the last three coefficients (floats, or (B,) arrays when they differ per sample).
"""

import numpy as np
from tqdm import tqdm

from pyddpm.arrays import array_module
from pyddpm.diffusion.gaussian_diffusion import GaussianDiffusion
from pyddpm.diffusion.score import x0_coefs
from pyddpm.ops.sampler_step import StepCoefs, sampler_step


def check_steps(steps, num_timesteps, flag="--steps"):
    """K as an int in 1..T (ValueError naming the flag otherwise)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= num_timesteps:
        raise ValueError(f"{flag} must be an integer in 1..{num_timesteps} (the run's T), got {steps!r}")
    return int(steps)


def strided_indices(num_timesteps, steps):
    """K = ``steps`` chain indices from T-1 down to 0, evenly spaced and rounded (K = 1: T-1 only; K = T: all),
    as an int64 array in descending order."""
    steps = check_steps(steps, num_timesteps)
    if steps == 1:
        return np.array([num_timesteps - 1], dtype=np.int64)
    return np.round(np.linspace(num_timesteps - 1, 0, steps)).astype(np.int64)


def respaced(diffusion, indices, mean_type=None):
    """The K-step chain over ``indices`` (descending) of ``diffusion``: the same abar at each visited index, the
    betas recomputed as beta'_k = 1 - abar_{i_k} / abar_{i_{k-1}} (Nichol & Dhariwal 2021, App. B), so its
    posterior and its fixed variances are those of a valid K-step chain. Where two visited indices are
    neighbours the original beta is kept as it is, so the full sequence gives back the same tables exactly.
    mean_type: the chain's, if not the diffusion's (a mean-model sampled through its x_0 estimate)."""
    ascending = np.asarray(indices)[::-1]
    abar = diffusion.alphas_cumprod
    betas = np.empty(len(ascending))
    previous = -1
    for k, i in enumerate(ascending):
        betas[k] = diffusion.betas[i] if i == previous + 1 else 1.0 - abar[i] / (abar[previous] if previous >= 0
                                                                                 else 1.0)
        previous = i
    return GaussianDiffusion(betas, mean_type or diffusion.mean_type, diffusion.var_type, diffusion.loss_type,
                             "unweighted", diffusion.hybrid_lambda)


def draw(rng, shape, dtype, xp):
    """A standard normal array of ``shape`` from the numpy Generator (or PerSampleNoise) ``rng``, drawn in float64
    and cast, so a seed gives the same sample in float32 and float64, moved to ``xp``."""
    return xp.asarray(rng.standard_normal(shape).astype(dtype))


def model_step(model_fn, diffusion, x, index, next_coefs, noise, clip_denoised, want_pred_x0):
    """Call the model at chain index ``index`` on x (B, ...) and apply one fused update.

    next_coefs: (next_from_x0, next_from_x, next_from_noise), floats or float64 (B,) arrays, or a function of
    the model output giving them (a step size that depends on the score); noise: an array like x, or None when
    next_from_noise is 0. Returns (x_next, x0_hat or None)."""
    B = x.shape[0]
    # A learned variance's channels are Alg. 2's alone (ancestral); every other step uses the mean part only.
    out = diffusion.split_output(model_fn(x, np.full(B, index, dtype=np.int64)), x)[0]
    out = array_module(x).ascontiguousarray(out, dtype=x.dtype)
    if callable(next_coefs):
        next_coefs = next_coefs(out)
    coefs = StepCoefs(*(np.broadcast_to(np.asarray(c, dtype=np.float64), (B,)).copy()
                        for c in (*x0_coefs(diffusion, index), *next_coefs)))
    return sampler_step(out, x, noise, coefs, clip_denoised, want_pred_x0)


def walk(indices, progress, desc):
    """(i, j) for each step of a sampler over ``indices`` (descending): from index i to the next visited index
    j, and from the last one to the clean data, j = -1. With a progress bar unless ``progress`` is False."""
    nexts = list(indices[1:]) + [-1]
    return tqdm(list(zip((int(i) for i in indices), (int(j) for j in nexts))), desc=desc, disable=not progress)
