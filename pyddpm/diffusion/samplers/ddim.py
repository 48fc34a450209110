"""DDIM (Song, Meng, Ermon 2021, Eq. 12): the non-Markovian reverse process with the same marginals q(x_t | x_0).

From index i to the next visited index j (abar_j = 1 after the last), with x0_hat the model's estimate and
eps_hat = (x_i - sqrt(abar_i) x0_hat) / sqrt(1 - abar_i) the noise it implies,
    x_j = sqrt(abar_j) x0_hat + sqrt(1 - abar_j - sigma^2) eps_hat + sigma z,
    sigma = eta sqrt((1 - abar_j) / (1 - abar_i)) sqrt(1 - abar_i / abar_j)            (Eq. 16).
eta = 0 is deterministic; eta = 1 on the full sequence is Alg. 2 with sigma_t^2 = beta-tilde_t (fixedsmall).
eps_hat is recomputed from the (possibly clipped) x0_hat, as improved-diffusion does, so the update is linear
in x0_hat and x_i: one fused step.
"""

import math

import numpy as np

from pyddpm.diffusion.samplers.steps import draw, model_step, strided_indices, walk
from pyddpm.diffusion.score import alpha_bar


def ddim_coefs(abar_i, abar_j, eta):
    """(next_from_x0, next_from_x, next_from_noise) of one DDIM step from abar_i to abar_j."""
    sigma = eta * math.sqrt((1.0 - abar_j) / (1.0 - abar_i) * (1.0 - abar_i / abar_j))
    direction = math.sqrt(max(1.0 - abar_j - sigma * sigma, 0.0))
    from_x = direction / math.sqrt(1.0 - abar_i)
    return math.sqrt(abar_j) - from_x * math.sqrt(abar_i), from_x, sigma


def check_eta(eta):
    """eta as a finite float >= 0 (ValueError naming the flag otherwise)."""
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or eta < 0:
        raise ValueError(f"--eta must be a number >= 0, got {eta!r}")
    return float(eta)


def ddim(model_fn, diffusion, shape, rng, steps=None, *, eta=0.0, clip_denoised=True, progress=True,
         dtype=np.float32, xp=np, callback=None):
    """x_0 (``shape``, on ``xp``) by DDIM over K = ``steps`` (default T) evenly spaced indices.

    rng: x_T first, then (eta > 0 only) one draw per step, as the ancestral sampler, so eta = 1 on the full
    sequence takes the same noise as Alg. 2. callback(i, x_next, pred_x0) after each step at index i."""
    eta = check_eta(eta)
    indices = strided_indices(diffusion.num_timesteps, diffusion.num_timesteps if steps is None else steps)
    x = draw(rng, shape, dtype, xp)
    for i, j in walk(indices, progress, f"ddim eta={eta:g}"):
        noise = draw(rng, shape, dtype, xp) if eta > 0 else None
        x, x0 = model_step(model_fn, diffusion, x, i, ddim_coefs(alpha_bar(diffusion, i), alpha_bar(diffusion, j), eta),
                           noise, clip_denoised, callback is not None)
        if callback is not None:
            callback(i, x, x0)
    return x
