"""The probability-flow ODE (Song et al. 2021, Eq. 13) solved with Heun's method.

In tau = -log abar (pyddpm.diffusion.score) the ODE is dx/dtau = -1/2 (x + s(x, tau)), deterministic, with
the marginals of the chain. Run backwards from index i to the next visited index j, dtau = log(abar_j / abar_i):
    x' = x_i + dtau/2 (x_i + s(x_i, i))                         Euler
    x_j = x_i + dtau/4 (x_i + s(x_i, i) + x' + s(x', j))       Heun = 1/2 x_i + 1/2 x' + dtau/4 (x' + s(x', j))
The last step (to the clean data, where there is no score) is Euler. 2K - 1 model calls for K indices.
The second stage is one fused step on x' with x_i in the kernel's noise slot (coefficient 1/2).
"""

import math

import numpy as np

from pyddpm.diffusion.samplers.steps import draw, model_step, strided_indices, walk
from pyddpm.diffusion.score import alpha_bar, score_coefs


def euler_coefs(abar_i, dtau):
    """(next_from_x0, next_from_x, next_from_noise) of x + dtau/2 (x + s(x)) at noise level abar_i."""
    from_x0, from_x = score_coefs(abar_i)
    return 0.5 * dtau * from_x0, 1.0 + 0.5 * dtau + 0.5 * dtau * from_x, 0.0


def heun_coefs(abar_j, dtau):
    """Heun's second stage on x' at level abar_j, with x_i passed in the noise slot: 1/2 x_i + 1/2 x' +
    dtau/4 (x' + s(x'))."""
    from_x0, from_x = score_coefs(abar_j)
    return 0.25 * dtau * from_x0, 0.5 + 0.25 * dtau + 0.25 * dtau * from_x, 0.5


def ode(model_fn, diffusion, shape, rng, steps=None, *, clip_denoised=True, progress=True, dtype=np.float32, xp=np,
        callback=None):
    """x_0 (``shape``, on ``xp``) by Heun's method on the probability-flow ODE over K = ``steps`` (default T)
    indices; rng gives x_T only. callback(i, x_next, pred_x0) after each step."""
    indices = strided_indices(diffusion.num_timesteps, diffusion.num_timesteps if steps is None else steps)
    x = draw(rng, shape, dtype, xp)
    want = callback is not None
    for i, j in walk(indices, progress, "ode"):
        abar_i, abar_j = alpha_bar(diffusion, i), alpha_bar(diffusion, j)
        dtau = math.log(abar_j / abar_i)
        x_euler, x0 = model_step(model_fn, diffusion, x, i, euler_coefs(abar_i, dtau), None, clip_denoised, want)
        if j >= 0:
            x_euler, x0 = model_step(model_fn, diffusion, x_euler, j, heun_coefs(abar_j, dtau), x, clip_denoised, want)
        x = x_euler
        if want:
            callback(i, x, x0)
    return x
