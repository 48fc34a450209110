"""The fused reverse step, one step of Alg. 2 of Ho et al. 2020: the NumPy reference and the dispatch.

Per sample b at index i = t_b (the paper's t = i + 1), per element:
    x0_hat = sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps_hat     mean_type "eps" (Eq. 4 solved for x_0, Eq. 15)
    x0_hat = model_output                                         mean_type "x0"
    x0_hat = clip(x0_hat, -1, 1)                                  clip_denoised
    mean   = coef1_t x0_hat + coef2_t x_t                         the posterior mean at x0_hat (Eq. 7)
    x_prev = mean + exp(0.5 log sigma_t^2) z                      z = noise, and z = 0 at index 0 (Alg. 2 line 3)
The mean is pyddpm.reverse_step.reverse_mean, the diffusion layer's formula; the kernels fuse it with the
noise term. One pass: three reads (model_output, x_t, noise) and one write (x_prev), plus one (pred_x0) on request.

Shapes: model_output, x_t, noise (B, ...) of any rank >= 1, all float32 (every backend) or float64 (numpy,
cpu); t int64 (B,) in 0..T-1. tables: a ReverseStepTables (or any 5-sequence in its order) of float64 (T,)
tables, GaussianDiffusion.step_tables: the log-variance is the model's (it depends on var_type).
Per-sample coefficients are read in float64, rounded once to the data's dtype and applied in it; on the
kernels sigma_t = exp(0.5 log sigma_t^2) is computed in float64 before the rounding (the reference
exponentiates the rounded log: the two differ by at most an ulp of sigma_t in float32).

At index 0 no backend adds a noise term at all, so x_prev is the mean bit for bit whatever the noise holds
(a NaN there does not reach x_prev).
The fused kernels: csrc/kernels/p_sample_step.cuh (math), csrc/cpu/p_sample_step.cpp, csrc/cuda/p_sample_step.cu.
"""

import numpy as np

from pyddpm.arrays import array_module, gather
from pyddpm.ops import checks
from pyddpm.ops.backend import extension
from pyddpm.ops.cuda_args import Arg, empty, launch, to_device
from pyddpm.ops.registry import dispatch, register
from pyddpm.reverse_step import ReverseStepTables, reverse_mean

MEAN_TYPES = ("eps", "x0")


def check_p_sample_step(backend, model_output, x_t, t, noise, tables, mean_type, clip_denoised, return_pred_x0):
    """p_sample_step's arguments, on every backend (see checks.timestep_args): model_output, x_t, noise float
    (B, ...) of one shape and dtype, t int64 (B,) in 0..T-1, tables five float64 (T,) arrays, mean_type one
    of MEAN_TYPES, the two flags bools. Returns the arguments with tables as a ReverseStepTables."""
    fn = "p_sample_step"
    if mean_type not in MEAN_TYPES:
        raise ValueError(f"{fn}: mean_type must be one of {MEAN_TYPES}, got {mean_type!r}")
    try:
        tables = ReverseStepTables(*tables)
    except TypeError:  # not a sequence, or not five of them
        raise TypeError(f"{fn}: tables must be a ReverseStepTables (five float64 (T,) arrays), got "
                        f"{type(tables).__name__}") from None
    checks.timestep_args(fn, backend, t, tables._asdict(), {"x_t": x_t, "model_output": model_output, "noise": noise})
    checks.flag(fn, "clip_denoised", clip_denoised)
    checks.flag(fn, "return_pred_x0", return_pred_x0)
    return model_output, x_t, t, noise, tables, mean_type, clip_denoised, return_pred_x0


def p_sample_step(model_output, x_t, t, noise, tables, mean_type="eps", clip_denoised=True, return_pred_x0=True,
                  backend=None):
    """One reverse step: returns (x_prev, pred_x0), both (B, ...) like x_t; pred_x0 is None when
    return_pred_x0 is False (the sampling loop does not need it, and skipping it saves a fifth of the
    memory traffic). See the module docstring for the math, shapes and dtypes.

    backend: "numpy" | "cpu" | "cuda" | None (the run's default, see pyddpm.ops.backend).
    """
    return dispatch("p_sample_step", backend, model_output, x_t, t, noise, tables, mean_type, clip_denoised,
                    return_pred_x0)


def p_sample_step_reference(model_output, x_t, t, noise, tables, mean_type="eps", clip_denoised=True,
                            return_pred_x0=True):
    """The NumPy reference of p_sample_step: the diffusion layer's reverse mean (pyddpm.reverse_step) plus
    the noise term, which is dropped at index 0 rather than multiplied by 0, as the kernels drop it."""
    tables = check_p_sample_step("reference", model_output, x_t, t, noise, tables, mean_type, clip_denoised,
                                 return_pred_x0)[4]
    xp = array_module(x_t)
    coefs = ReverseStepTables(*(gather(table, t, x_t) for table in tables))
    mean, pred_x0 = reverse_mean(model_output, x_t, coefs, mean_type, clip_denoised)
    last = xp.asarray(t == 0).reshape(coefs.model_log_variance.shape)
    # Alg. 2 line 4, with z = 0 at index 0 whatever the noise holds.
    x_prev = mean + xp.where(last, 0, xp.exp(0.5 * coefs.model_log_variance) * noise)
    return x_prev, (pred_x0 if return_pred_x0 else None)


def _p_sample_step_cpu(model_output, x_t, t, noise, tables, mean_type, clip_denoised, return_pred_x0):
    return extension("cpu").p_sample_step(model_output, x_t, t, noise, *tables, mean_type == "eps", clip_denoised,
                                          return_pred_x0)


def _p_sample_step_cuda(model_output, x_t, t, noise, tables, mean_type, clip_denoised, return_pred_x0):
    t, tables = to_device(t), [to_device(a) for a in tables]
    (B, T), n = t.shape + tables[0].shape, x_t.size // t.shape[0]
    x_prev = empty(x_t.shape)
    pred_x0 = empty(x_t.shape) if return_pred_x0 else None
    launch("p_sample_step", Arg("model_output", model_output, x_t.shape), Arg("x_t", x_t, x_t.shape),
           Arg("t", t, (B,), np.int64), Arg("noise", noise, x_t.shape),
           *(Arg(name, a, (T,), np.float64) for name, a in zip(ReverseStepTables._fields, tables)),
           x_prev.data.ptr, pred_x0.data.ptr if return_pred_x0 else 0, B, n, T, mean_type == "eps", clip_denoised)
    return x_prev, pred_x0


register("p_sample_step", check_p_sample_step, numpy=p_sample_step_reference, cpu=_p_sample_step_cpu,
         cuda=_p_sample_step_cuda)
