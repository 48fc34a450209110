"""Langevin dynamics with the learned score, at one noise level and annealed over the levels.

Langevin dynamics dx = grad log p(x) dt + sqrt(2) dW (seed 003_b3aca02c5cb86363.txt) has p as its stationary
law. Its Euler-Maruyama step with step size delta pairs the drift delta s with the noise sqrt(2 delta):
    x <- x + delta s(x) + sqrt(2 delta) z,
(equivalently x + (eps/2) s + sqrt(eps) z with eps = 2 delta; Welling & Teh 2011; Song & Ermon 2019, Eq. 4).
The seed's discretisation, x + (eps/2) s + sqrt(2 eps) z, pairs half that drift with that noise: for
p = N(0, sigma^2) its stationary variance is 2 sigma^2 as eps -> 0, twice the target
(tests/test_samplers_exact.py shows both). The score is the model's at chain index i (pyddpm.diffusion.score),
so one level samples q(x_i), the noised data at that index.

Annealed Langevin (Song & Ermon 2019, Alg. 1): the levels are K chain indices from T-1 down to i_1 (the
noisiest first), ``inner_steps`` steps at each with delta_i = epsilon sigma_i^2 / sigma_L^2, sigma_i^2 = 1 - abar_i
and sigma_L the last (smallest) level. Both samplers end with one denoising step, x0_hat at the last level
(Tweedie's formula: the posterior mean of x_0, as Alg. 2's last step).
"""

import math

import numpy as np
from tqdm import tqdm

from pyddpm.arrays import array_module
from pyddpm.diffusion.samplers.steps import draw, model_step, strided_indices
from pyddpm.diffusion.score import alpha_bar, score_coefs


def langevin_coefs(abar, step_size):
    """(next_from_x0, next_from_x, next_from_noise) of x + delta s + sqrt(2 delta) z at noise level abar."""
    from_x0, from_x = score_coefs(abar)
    return step_size * from_x0, 1.0 + step_size * from_x, math.sqrt(2.0 * step_size)


DENOISE = (1.0, 0.0, 0.0)  # x_next = x0_hat


def _check_positive(name, value, integer=False):
    kind = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"--{name} must be a {'positive integer' if integer else 'number > 0'}, got {value!r}")
    return value


def _langevin_steps(model_fn, diffusion, x, index, step_size, count, rng, clip_denoised, callback, bar):
    abar = alpha_bar(diffusion, index)
    coefs = langevin_coefs(abar, step_size)
    for _ in range(count):
        noise = draw(rng, x.shape, x.dtype, array_module(x))
        x, x0 = model_step(model_fn, diffusion, x, index, coefs, noise, clip_denoised, callback is not None)
        if callback is not None:
            callback(index, x, x0)
        bar.update()
    return x


def _denoise(model_fn, diffusion, x, index, clip_denoised, callback):
    x, x0 = model_step(model_fn, diffusion, x, index, DENOISE, None, clip_denoised, callback is not None)
    if callback is not None:
        callback(index, x, x0)
    return x


def langevin(model_fn, diffusion, shape, rng, steps=100, *, index=0, step_size=None, denoise=True,
             clip_denoised=True, progress=True, dtype=np.float32, xp=np, callback=None):
    """``steps`` Langevin steps at chain index ``index`` from x ~ N(0, I), then (``denoise``) x0_hat: a sample of
    q(x_i) without it. step_size delta defaults to 0.1 sigma_i^2 (sigma_i^2 = 1 - abar_i). Returns (``shape``)
    on ``xp``."""
    _check_positive("steps", steps, integer=True)
    sigma2 = 1.0 - alpha_bar(diffusion, index)
    step_size = _check_positive("step-size", 0.1 * sigma2 if step_size is None else step_size)
    x = draw(rng, shape, dtype, xp)
    with tqdm(total=steps, desc="langevin", disable=not progress) as bar:
        x = _langevin_steps(model_fn, diffusion, x, index, step_size, steps, rng, clip_denoised, callback, bar)
    if not denoise:
        return x
    return _denoise(model_fn, diffusion, x, index, clip_denoised, callback)


def annealed_langevin(model_fn, diffusion, shape, rng, steps=None, *, inner_steps=5, epsilon=None,
                      clip_denoised=True, progress=True, dtype=np.float32, xp=np, callback=None):
    """Alg. 1 of Song & Ermon 2019 over K = ``steps`` (default T) levels, ``inner_steps`` Langevin steps each with
    delta_i = epsilon sigma_i^2 / sigma_L^2; epsilon defaults to 0.1 sigma_L^2. Then x0_hat at the last level.
    K * inner_steps + 1 model calls. Returns (``shape``) on ``xp``."""
    levels = strided_indices(diffusion.num_timesteps, diffusion.num_timesteps if steps is None else steps)
    _check_positive("inner-steps", inner_steps, integer=True)
    sigma2_last = 1.0 - alpha_bar(diffusion, levels[-1])
    epsilon = _check_positive("epsilon", 0.1 * sigma2_last if epsilon is None else epsilon)
    x = draw(rng, shape, dtype, xp)
    with tqdm(total=len(levels) * inner_steps, desc="annealed langevin", disable=not progress) as bar:
        for i in levels:
            step_size = epsilon * (1.0 - alpha_bar(diffusion, i)) / sigma2_last
            x = _langevin_steps(model_fn, diffusion, x, int(i), step_size, inner_steps, rng, clip_denoised, callback,
                                bar)
    return _denoise(model_fn, diffusion, x, int(levels[-1]), clip_denoised, callback)
