"""The reverse VP-SDE: Euler-Maruyama, and the predictor-corrector sampler (Song et al. 2021, Sec. 4.2, Alg. 1-2).

In tau = -log abar (pyddpm.diffusion.score), the reverse SDE is dx = [-1/2 x - s(x)] dtau + dw_bar, run from
tau(T-1) down to 0. One Euler-Maruyama step from index i to the next visited index j spans
dtau = log(abar_j / abar_i) > 0:
    x_j = x_i + (1/2 x_i + s(x_i, i)) dtau + sqrt(dtau) z,
with the noise dropped on the last step (to the clean data), as score_sde's noise removal.

Predictor-corrector: at each visited index, ``corrector_steps`` Langevin steps on q(x_i) (the corrector, step
size from the signal-to-noise rule delta = 2 alpha_i (r ||z|| / ||s||)^2, Song et al. 2021, App. G, with
alpha_i = 1 - beta_i and the norms averaged over the batch as score_sde does, so this sampler's images depend
on the batch they are drawn in), then one Euler-Maruyama step (the predictor).
"""

import math

import numpy as np

from pyddpm.arrays import array_module, to_host
from pyddpm.diffusion.samplers.langevin import langevin_coefs
from pyddpm.diffusion.samplers.steps import draw, model_step, strided_indices, walk
from pyddpm.diffusion.score import alpha_bar, score_coefs, x0_coefs


def euler_maruyama_coefs(abar_i, abar_j, last):
    """(next_from_x0, next_from_x, next_from_noise) of one reverse-SDE step from abar_i to abar_j."""
    dtau = math.log(abar_j / abar_i)
    from_x0, from_x = score_coefs(abar_i)
    return dtau * from_x0, 1.0 + 0.5 * dtau + dtau * from_x, 0.0 if last else math.sqrt(dtau)


def _predictor(model_fn, diffusion, x, i, j, rng, clip_denoised, callback):
    last = j < 0
    noise = None if last else draw(rng, x.shape, x.dtype, array_module(x))
    coefs = euler_maruyama_coefs(alpha_bar(diffusion, i), alpha_bar(diffusion, j), last)
    x, x0 = model_step(model_fn, diffusion, x, i, coefs, noise, clip_denoised, callback is not None)
    if callback is not None:
        callback(i, x, x0)
    return x


def euler_maruyama(model_fn, diffusion, shape, rng, steps=None, *, clip_denoised=True, progress=True,
                   dtype=np.float32, xp=np, callback=None):
    """x_0 (``shape``, on ``xp``) by Euler-Maruyama on the reverse VP-SDE over K = ``steps`` (default T) indices.
    rng: x_T first, then one draw per step but the last. callback(i, x_next, pred_x0) after each step."""
    indices = strided_indices(diffusion.num_timesteps, diffusion.num_timesteps if steps is None else steps)
    x = draw(rng, shape, dtype, xp)
    for i, j in walk(indices, progress, "reverse sde"):
        x = _predictor(model_fn, diffusion, x, i, j, rng, clip_denoised, callback)
    return x


def snr_step_size(snr, alpha, noise, score):
    """The Langevin step size 2 alpha (snr ||z|| / ||s||)^2, each norm the batch's mean of the per-sample norms,
    as score_sde does (a float). Per-sample norms would make the step depend on x itself, and ||s|| vanishes
    near a mode in few dimensions: the step would blow up there."""
    xp = array_module(score)
    axes = tuple(range(1, score.ndim))
    noise_norm = xp.sqrt((noise.astype(np.float64) ** 2).sum(axis=axes)).mean()
    score_norm = xp.sqrt((score.astype(np.float64) ** 2).sum(axis=axes)).mean()
    return 2.0 * alpha * (snr * float(to_host(noise_norm / score_norm))) ** 2


def _corrector(model_fn, diffusion, x, i, snr, clip_denoised, noise, callback):
    xp = array_module(x)
    abar = alpha_bar(diffusion, i)
    from_x, from_out = x0_coefs(diffusion, i)
    score_x0, score_x = score_coefs(abar)

    def coefs(out):
        x0 = from_x * x + from_out * out
        score = score_x0 * (xp.clip(x0, -1, 1) if clip_denoised else x0) + score_x * x
        return langevin_coefs(abar, snr_step_size(snr, 1.0 - float(diffusion.betas[i]), noise, score))

    x, x0 = model_step(model_fn, diffusion, x, i, coefs, noise, clip_denoised, callback is not None)
    if callback is not None:
        callback(i, x, x0)
    return x


def predictor_corrector(model_fn, diffusion, shape, rng, steps=None, *, snr=0.16, corrector_steps=1,
                        clip_denoised=True, progress=True, dtype=np.float32, xp=np, callback=None):
    """x_0 (``shape``, on ``xp``) by Alg. 2 of Song et al. 2021 (VP): at each of K = ``steps`` (default T)
    indices, ``corrector_steps`` Langevin corrector steps with signal-to-noise ratio ``snr``, then the
    Euler-Maruyama predictor. (corrector_steps + 1) K model calls."""
    if isinstance(snr, bool) or not isinstance(snr, (int, float)) or not math.isfinite(snr) or snr <= 0:
        raise ValueError(f"--snr must be a number > 0, got {snr!r}")
    if isinstance(corrector_steps, bool) or not isinstance(corrector_steps, int) or corrector_steps < 0:
        raise ValueError(f"--corrector-steps must be an integer >= 0, got {corrector_steps!r}")
    indices = strided_indices(diffusion.num_timesteps, diffusion.num_timesteps if steps is None else steps)
    x = draw(rng, shape, dtype, xp)
    for i, j in walk(indices, progress, "predictor-corrector"):
        for _ in range(corrector_steps):
            x = _corrector(model_fn, diffusion, x, i, snr, clip_denoised, draw(rng, shape, dtype, xp), callback)
        x = _predictor(model_fn, diffusion, x, i, j, rng, clip_denoised, callback)
    return x
