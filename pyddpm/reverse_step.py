"""The mean of the reverse step p(x_{t-1} | x_t), written once (Ho, Jain, Abbeel 2020).

The model's estimate of x_0 (Eq. 4 solved for x_0, Eq. 15, for an eps-model; the output itself for an
x0-model), optionally clipped to the data range, is put into the posterior mean of q(x_{t-1} | x_t, x_0)
(Eq. 7). For an eps-model that is Eq. 11, mu_theta = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps),
rearranged; tests/test_diffusion.py (test_eps_form_of_the_posterior_mean) shows the two are one number.
Forming it through x_0 leaves room to clip x_0, as the official code does when sampling.

GaussianDiffusion's p_mean_variance calls reverse_mean; its sampling step (Alg. 2) hands the same formula, as
the per-sample coefficients of step_coefs, to the fused step of every sampler (pyddpm.ops.sampler_step), and
tests/test_kernels_diffusion_steps.py checks that the two give one number.

Coefficients here are the tables' values at each sample's t, already gathered: arrays of shape (B, 1, ..., 1)
that broadcast against the (B, ...) data. The data may be autograd Tensors (only + - * are used), except
where clipping is asked for.
"""

from typing import NamedTuple

import numpy as np

from pyddpm.arrays import array_module


class ReverseStepTables(NamedTuple):
    """The five float64 (T,) tables of the reverse step, in the order the kernels take them (or, gathered,
    their values at each sample's t)."""
    sqrt_recip_alphas_cumprod: np.ndarray    # sqrt(1 / abar_t)
    sqrt_recipm1_alphas_cumprod: np.ndarray  # sqrt(1 / abar_t - 1)
    posterior_mean_coef1: np.ndarray         # beta_t sqrt(abar_{t-1}) / (1 - abar_t)           (Eq. 7)
    posterior_mean_coef2: np.ndarray         # (1 - abar_{t-1}) sqrt(alpha_t) / (1 - abar_t)    (Eq. 7)
    model_log_variance: np.ndarray           # log sigma_t^2 of p(x_{t-1} | x_t) (Sec. 3.2)


def predict_x0_from_eps(x_t, eps, sqrt_recip_alphas_cumprod, sqrt_recipm1_alphas_cumprod):
    """Eq. 4 solved for x_0 (Eq. 15): x_0 = sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps. (B, ...)."""
    return sqrt_recip_alphas_cumprod * x_t - sqrt_recipm1_alphas_cumprod * eps


def posterior_mean(x0, x_t, posterior_mean_coef1, posterior_mean_coef2):
    """Eq. 7: mu-tilde_t(x_t, x_0) = coef1_t x_0 + coef2_t x_t. (B, ...)."""
    return posterior_mean_coef1 * x0 + posterior_mean_coef2 * x_t


def reverse_mean(model_output, x_t, coefs, mean_type, clip_denoised):
    """The reverse step's mean and the model's x_0 estimate, both (B, ...) like x_t.

    model_output: eps for mean_type "eps" (the mean is then Eq. 11), x_0 for "x0", the mean itself for
    "mean" (its x_0 estimate is Eq. 7 solved for x_0). coefs: a ReverseStepTables of gathered values
    (B, 1, ..., 1); its log-variance is not used here. clip_denoised clips the x_0 estimate to [-1, 1] before it
    enters Eq. 7 (arrays only); a "mean" model's mean is its output, never clipped (the official code's xprev).
    """
    if mean_type == "eps":
        pred_x0 = predict_x0_from_eps(x_t, model_output, coefs.sqrt_recip_alphas_cumprod,
                                      coefs.sqrt_recipm1_alphas_cumprod)
    elif mean_type == "x0":
        pred_x0 = model_output
    else:
        pred_x0 = (model_output - coefs.posterior_mean_coef2 * x_t) * (1.0 / coefs.posterior_mean_coef1)
    if clip_denoised:
        pred_x0 = array_module(pred_x0).clip(pred_x0, -1.0, 1.0)
    if mean_type == "mean":
        return model_output, pred_x0
    return posterior_mean(pred_x0, x_t, coefs.posterior_mean_coef1, coefs.posterior_mean_coef2), pred_x0


def x0_coefs(tables, t, mean_type):
    """(from_x, from_out), float64 like the int indices t: the model's x_0 estimate at t is
    from_x x_t + from_out model_output; eps-model (Eq. 15): sqrt(1/abar_t), -sqrt(1/abar_t - 1); x0-model: 0, 1;
    mean-model (Eq. 7 solved for x_0): -coef2_t / coef1_t, 1 / coef1_t."""
    t = np.asarray(t)
    if mean_type == "eps":
        return tables.sqrt_recip_alphas_cumprod[t], -tables.sqrt_recipm1_alphas_cumprod[t]
    if mean_type == "mean":
        return -tables.posterior_mean_coef2[t] / tables.posterior_mean_coef1[t], 1.0 / tables.posterior_mean_coef1[t]
    return np.zeros(t.shape), np.ones(t.shape)


def step_coefs(tables, t, mean_type):
    """One step of Alg. 2 at indices t (int (B,), 0..T-1) as the five per-sample coefficients of the fused
    sampler step, float64 (B,) arrays in the order of pyddpm.ops.sampler_step.StepCoefs (tables: a
    ReverseStepTables of float64 (T,) tables):
        x0_hat  = sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps     eps-model (Eq. 15); x0_coefs for the others
        x_{t-1} = coef1_t x0_hat + coef2_t x_t + sigma_t z         Eq. 7's mean at x0_hat, plus the noise
    with sigma_t = exp(0.5 log sigma_t^2), exactly 0 at index 0 (Alg. 2 line 3: z = 0 at the paper's t = 1).
    """
    t = np.asarray(t)
    from_x, from_out = x0_coefs(tables, t, mean_type)
    sigma = np.where(t == 0, 0.0, np.exp(0.5 * tables.model_log_variance[t]))
    return from_x, from_out, tables.posterior_mean_coef1[t], tables.posterior_mean_coef2[t], sigma
