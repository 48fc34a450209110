"""The score view of the discrete chain: s(x_t, t), and the VP-SDE of which the chain is a discretisation.

Score. q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) (Eq. 4, Ho et al. 2020) has the score
    grad log q(x_t | x_0) = -(x_t - sqrt(abar_t) x_0) / (1 - abar_t) = -eps / sqrt(1 - abar_t),
and a network trained to predict eps (or x_0) from x_t gives the score of the noised data q(x_t),
    s_theta(x_t, t) = -eps_theta(x_t, t) / sqrt(1 - abar_t)                         (an eps-model)
                    = (sqrt(abar_t) x0_theta(x_t, t) - x_t) / (1 - abar_t)           (an x0-model)
(seed 003_b3aca02c5cb86363.txt, "Relationship": s = -eps / sqrt(1 - abar_t); Song et al. 2021, Eq. 3 and 4).
Written through x0_hat, the second form holds for both: with Eq. 15's x0_hat = (x_t - sqrt(1 - abar_t) eps) /
sqrt(abar_t) it is the first. The samplers use it in that form, so one fused kernel (pyddpm.ops.sampler_step)
serves every model type: s = score_from_x0 x0_hat + score_from_x x_t.

The VP-SDE (Song et al. 2021, Eq. 5, 6, 11, 13). The chain x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) z is
Euler-Maruyama with step 1/T of the variance-preserving SDE on t in [0, 1],
    dx = -1/2 beta(t) x dt + sqrt(beta(t)) dw,        beta(i / T) ~= T beta_i,
whose marginals are q(x_t | x_0) = N(sqrt(abar(t)) x_0, (1 - abar(t)) I) with abar(t) = exp(-int_0^t beta).
Its reverse-time SDE and its probability-flow ODE share those marginals:
    dx = [-1/2 beta(t) x - beta(t) s(x, t)] dt + sqrt(beta(t)) dw_bar           (reverse SDE, dt < 0)
    dx = [-1/2 beta(t) x - 1/2 beta(t) s(x, t)] dt                              (probability-flow ODE)
Only beta(t) dt enters, so the samplers step in tau = int_0^t beta = -log abar(t), where the SDE is the
Ornstein-Uhlenbeck process dx = -1/2 x dtau + dw. A step between chain indices i and j spans exactly
    dtau = log(abar_j / abar_i),
so any checkpoint's own schedule (linear, cosine) defines its SDE, with no beta_min/beta_max to choose, and
abar = 1 (tau = 0) is the clean data. See pyddpm/diffusion/samplers/ for the steps built on this; the
probability-flow ODE, stiff in tau near 8-bit data, is solved in sigma = sqrt(1/abar - 1) instead
(samplers/ode.py, ode_likelihood.py).
"""

import math

import numpy as np

from pyddpm import reverse_step
from pyddpm.arrays import gather
from pyddpm.autograd import Tensor


def alpha_bar(diffusion, index):
    """abar at chain index ``index`` (0..T-1), or 1.0 (the clean data, tau = 0) for index -1. A float."""
    return 1.0 if index < 0 else float(diffusion.alphas_cumprod[index])


def x0_coefs(diffusion, index):
    """(from_x, from_out): the model's x_0 estimate at ``index`` is from_x x_t + from_out model_output.
    eps-model: Eq. 15, (sqrt(1 / abar), -sqrt(1 / abar - 1)); x0-model: (0, 1); mean-model: Eq. 7 solved for x_0."""
    from_x, from_out = reverse_step.x0_coefs(diffusion.step_tables, index, diffusion.mean_type)
    return float(from_x), float(from_out)


def score_coefs(abar):
    """(from_x0, from_x): the score at noise level abar (< 1) is from_x0 x0_hat + from_x x_t."""
    return math.sqrt(abar) / (1.0 - abar), -1.0 / (1.0 - abar)


def score(diffusion, model_output, x_t, t):
    """s_theta(x_t, t) (B, ...) from the model output's mean part (B, ...) at int indices t (B,): -eps /
    sqrt(1 - abar_t) for an eps-model; (sqrt(abar_t) x0_hat - x_t) / (1 - abar_t) with the x_0 estimate of
    x0_coefs for an x0- or mean-model. Arrays or autograd Tensors (only + - * are used on the data)."""
    like = x_t.data if isinstance(x_t, Tensor) else x_t
    if diffusion.mean_type == "eps":
        return model_output * gather(-1.0 / diffusion.sqrt_one_minus_alphas_cumprod, t, like)
    T = diffusion.num_timesteps
    from_x, from_out = reverse_step.x0_coefs(diffusion.step_tables, np.arange(T), diffusion.mean_type)
    abar = diffusion.alphas_cumprod
    from_x0 = np.sqrt(abar) / (1.0 - abar)
    return model_output * gather(from_x0 * from_out, t, like) + x_t * gather(from_x0 * from_x - 1.0 / (1.0 - abar),
                                                                             t, like)
