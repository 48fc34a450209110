"""The probability-flow ODE (Song et al. 2021, Eq. 13) solved with Heun's method.

In tau = -log abar (pyddpm.diffusion.score) the ODE is dx/dtau = -1/2 (x + s(x, tau)). It is stiff as tau -> 0:
s grows like 1/tau, so a Heun stage evaluated at a small tau_j amplifies the error of the Euler stage by about
tau_i / tau_j and a few-step solve blows up. The same ODE in the variables of DDIM (Song, Meng, Ermon 2021,
Eq. 14) and Karras et al. 2022 (Eq. 4 with their sigma(t) = t), sigma = sqrt(1/abar - 1) and x~ = x / sqrt(abar):
    dx~/dsigma = eps_hat(x, sigma) = (x~ - x0_hat) / sigma,
has a right-hand side bounded by the noise itself, so it is solved in those variables (Karras et al. 2022,
Alg. 1). From index i to the next visited index j, h = sigma_j - sigma_i < 0:
    x~' = x~_i + h d_i,              d_i = (x~_i - x0_hat(x_i, i)) / sigma_i          Euler: DDIM with eta = 0
    x~_j = x~_i + h/2 (d_i + d_j),   d_j = (x~' - x0_hat(x', j)) / sigma_j            Heun
The last step (to sigma = 0, where there is no model) is Euler, which lands on x0_hat. 2K - 1 model calls.
Back in x = sqrt(abar) x~, Heun's stage is one fused step on x' with x_i in the kernel's noise slot:
    x_j = 1/2 sqrt(abar_j / abar_i) x_i + (1/2 + h / (2 sigma_j)) x' - h / (2 sigma_j) sqrt(abar_j) x0_hat'.
"""

import math

import numpy as np

from pyddpm.diffusion.samplers.steps import draw, model_step, strided_indices, walk
from pyddpm.diffusion.score import alpha_bar


def sigma_of(abar):
    """sigma = sqrt(1 / abar - 1), the noise-to-signal ratio of x~ = x / sqrt(abar) (0 for the clean data)."""
    return math.sqrt(1.0 / abar - 1.0)


def euler_coefs(abar_i, abar_j):
    """(next_from_x0, next_from_x, next_from_noise) of x~_j = x~_i + (sigma_j - sigma_i) d_i, in x."""
    ratio = sigma_of(abar_j) / sigma_of(abar_i)
    return math.sqrt(abar_j) * (1.0 - ratio), math.sqrt(abar_j / abar_i) * ratio, 0.0


def heun_coefs(abar_i, abar_j):
    """Heun's second stage on x' at level abar_j, with x_i passed in the noise slot (see the module)."""
    sigma_j = sigma_of(abar_j)
    half_step = (sigma_j - sigma_of(abar_i)) / (2.0 * sigma_j)
    return -half_step * math.sqrt(abar_j), 0.5 + half_step, 0.5 * math.sqrt(abar_j / abar_i)


def ode(model_fn, diffusion, shape, rng, steps=None, *, clip_denoised=True, progress=True, dtype=np.float32, xp=np,
        callback=None):
    """x_0 (``shape``, on ``xp``) by Heun's method on the probability-flow ODE over K = ``steps`` (default T)
    indices; rng gives x_T only. callback(i, x_next, pred_x0) after each step."""
    indices = strided_indices(diffusion.num_timesteps, diffusion.num_timesteps if steps is None else steps)
    x = draw(rng, shape, dtype, xp)
    want = callback is not None
    for i, j in walk(indices, progress, "ode"):
        abar_i, abar_j = alpha_bar(diffusion, i), alpha_bar(diffusion, j)
        x_euler, x0 = model_step(model_fn, diffusion, x, i, euler_coefs(abar_i, abar_j), None, clip_denoised, want)
        if j >= 0:
            x_euler, x0 = model_step(model_fn, diffusion, x_euler, j, heun_coefs(abar_i, abar_j), x, clip_denoised,
                                     want)
        x = x_euler
        if want:
            callback(i, x, x0)
    return x
