"""The training objectives of a GaussianDiffusion: every row of Table 2 (Ho et al. 2020) and the hybrid of
Nichol & Dhariwal 2021.

For data x0 and noise (B, ...), indices t (B,), x_t = q_sample(x0, t, noise) (Eq. 4) and the model output at
(x_t, t), split into its mean part and, for a learned variance, its variance part
(pyddpm.diffusion.learned_variance). Per-sample losses (B,), nats or squared errors averaged over the data's
dimensions, bits for the bound:
  simple   ||target - mean part||^2 with target eps (Eq. 14), x_0, or the posterior mean mu-tilde (Eq. 7) as the
           model predicts; an x0-model may take the SNR weight abar_t / (1 - abar_t) under which its MSE is the
           eps-MSE (Eq. 2.10 of seed 004_bee577580d65d81f.txt)
  kl       the bound's term at t (Eq. 5): L_{t-1}, or L_0 at index 0, in bits/dim; it trains a learned variance
  hybrid   L_simple + lambda L_vlb (Nichol & Dhariwal Sec. 3.1), with L_vlb = T L_t the one-sample estimate
           of the whole bound, its gradient stopped at the mean: the mean learns from L_simple only, the
           variance from the bound only
  dsm      denoising score matching (seed 003_b3aca02c5cb86363.txt; Vincent 2011): 1/2 ||s_theta - grad log q||^2
The bound's two kinds of term, kl_bpd and decoder_nll_bpd, run as fused kernels on arrays and through the
autograd on Tensors.
"""

import math

from pyddpm import autograd, likelihood
from pyddpm.arrays import array_module, gather, to_host
from pyddpm.autograd import Tensor
from pyddpm.diffusion.score import score
from pyddpm.ops.discretized_gaussian_log_likelihood import discretized_gaussian_log_likelihood as ops_dgll
from pyddpm.ops.normal_kl import normal_kl as ops_normal_kl


def mean_flat(v):
    """Mean over every axis but the batch axis: (B, ...) -> (B,)."""
    return v.mean(axis=tuple(range(1, len(v.shape))))


def kl_bpd(mean1, logvar1, mean2, logvar2):
    """Per-sample KL(N1 || N2) in bits/dim (B,). Arrays: the fused kernel reduces in the same pass; a Tensor
    mean2 or logvar2 (training on the bound): the autograd-friendly arithmetic of likelihood.normal_kl."""
    if isinstance(mean2, Tensor) or isinstance(logvar2, Tensor):
        return mean_flat(likelihood.normal_kl(mean1, logvar1, mean2, logvar2)) / math.log(2.0)
    return ops_normal_kl(mean1, logvar1, mean2, logvar2, per_sample_bpd=True).astype(mean1.dtype)


def decoder_nll_bpd(x, means, log_scales):
    """Per-sample -log p(x) of the discretized Gaussian decoder (Eq. 13) in bits/dim (B,): the fused kernel
    for arrays, the autograd op for Tensor ``means`` or ``log_scales``."""
    if isinstance(means, Tensor) or isinstance(log_scales, Tensor):
        return -mean_flat(autograd.discretized_gaussian_log_likelihood(x, means, log_scales)) / math.log(2.0)
    return ops_dgll(x, means, log_scales, per_sample_bpd=True).astype(x.dtype)


def mean_target(diffusion, x0, xt, t, noise):
    """What the mean part of the output predicts (B, ...): eps, x_0, or mu-tilde_t(x_t, x_0) (Eq. 7)."""
    if diffusion.mean_type == "eps":
        return noise
    if diffusion.mean_type == "x0":
        return x0
    return diffusion.q_posterior_mean_variance(x0, xt, t)[0]


def simple_loss(diffusion, mean_out, x0, xt, t, noise):
    """L_simple's per-sample term (B,): the unweighted MSE of the mean part, or for an x0-model with x0_weight
    "snr", abar_t / (1 - abar_t) times it, which is the eps-MSE of the same prediction (Eq. 2.10, seed 004)."""
    mse = mean_flat((mean_target(diffusion, x0, xt, t, noise) - mean_out) ** 2)
    if diffusion.x0_weight == "snr":
        abar = diffusion.alphas_cumprod
        snr = array_module(x0).asarray((abar / (1.0 - abar))[to_host(t)].astype(x0.dtype))
        mse = mse * snr
    return mse


def training_losses(diffusion, model_fn, x0, t, noise):
    """The per-sample loss of diffusion.loss_type at indices t (B,); see the module docstring. x0, noise are
    arrays; model_fn(x_t, t) returns an array or a Tensor. Returns dict: loss (B,), and mse, vb or dsm (B,)."""
    xt = diffusion.q_sample(x0, t, noise)
    model_output = model_fn(xt, t)
    mean_out, var_out = diffusion.split_output(model_output, xt)
    if diffusion.loss_type == "simple":
        mse = simple_loss(diffusion, mean_out, x0, xt, t, noise)
        return {"loss": mse, "mse": mse}
    if diffusion.loss_type == "dsm":
        target = noise * gather(-1.0 / diffusion.sqrt_one_minus_alphas_cumprod, t, xt)
        dsm = mean_flat(0.5 * (score(diffusion, mean_out, xt, t) - target) ** 2)
        return {"loss": dsm, "dsm": dsm}
    if diffusion.loss_type == "kl":
        vb = diffusion.vb_terms_from_parts(mean_out, var_out, x0, xt, t, clip_denoised=False)["output"]
        return {"loss": vb, "vb": vb}
    mse = simple_loss(diffusion, mean_out, x0, xt, t, noise)
    frozen = Tensor(mean_out.data) if isinstance(mean_out, Tensor) else mean_out  # the stop-gradient
    vb = diffusion.vb_terms_from_parts(frozen, var_out, x0, xt, t, clip_denoised=False)["output"]
    # The official code's vb term in bits/dim per t, scaled to the whole bound, T L_t, times lambda.
    return {"loss": mse + vb * (diffusion.hybrid_lambda * diffusion.num_timesteps), "mse": mse, "vb": vb}
