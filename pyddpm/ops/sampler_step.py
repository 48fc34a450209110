"""The fused step of every sampler: the NumPy reference and the dispatch.

Each sampler in pyddpm.diffusion.samplers (ancestral Alg. 2 of Ho et al. 2020 on any sub-sequence of
timesteps, DDIM, Langevin, Euler-Maruyama on the reverse SDE, the probability-flow ODE) updates x as a
linear combination of three things: x itself, the model's estimate of x_0, and a noise array. Per sample b,
with five float64 coefficients c[b] that the sampler computed for that sample's step, per element:
    x0_hat = c.x0_from_x x + c.x0_from_out model_output       (eps-model: Eq. 15; x0-model: 0 x + 1 out)
    x0_hat = clip(x0_hat, -1, 1)                              clip_denoised
    x_next = c.next_from_x0 x0_hat + c.next_from_x x + c.next_from_noise noise
or, with a learned variance (Nichol & Dhariwal 2021; Ho et al. 2020 Table 2: the network outputs the
per-element log sigma^2 of the reverse step as log_variance),
    x_next = c.next_from_x0 x0_hat + c.next_from_x x + c.next_from_noise exp(0.5 log_variance) noise
with exp(0.5 log_variance) computed in the data's dtype (float32 on the GPU), here as in the kernels.
The noise term is left out (not multiplied by 0) where c.next_from_noise is 0, so a sample without noise at
this step (Alg. 2 at t = 1, a deterministic sampler) gets the same x_next whatever its noise and log_variance
hold, NaN or a log-variance whose exp overflows included; noise may be None when every next_from_noise is 0.
The "noise" array is any array of x's shape: Heun's second stage passes the previous x there.

One pass: three reads (model_output, x, noise), four with log_variance, and one write (x_next), plus one
(x0_hat) on request.

Shapes: model_output, x, noise, log_variance (B, ...) of any rank >= 1, one shape, all float32 (every backend)
or float64 (numpy, cpu). coefs: a StepCoefs of five float64 (B,) arrays (numpy, or cupy on the cuda backend).
Coefficients are read in float64 and rounded once to the data's dtype.
The fused kernels: csrc/kernels/sampler_step.cuh (math), csrc/cpu/sampler_step.cpp, csrc/cuda/sampler_step.cu.
"""

from typing import NamedTuple

import numpy as np

from pyddpm.arrays import array_module, to_host
from pyddpm.ops import checks
from pyddpm.ops.backend import extension
from pyddpm.ops.cuda_args import Arg, empty, launch, to_device
from pyddpm.ops.registry import dispatch, register


class StepCoefs(NamedTuple):
    """The five per-sample coefficients of one sampler step, each a float64 (B,) array, in kernel order."""
    x0_from_x: np.ndarray        # x0_hat = x0_from_x x + x0_from_out model_output
    x0_from_out: np.ndarray
    next_from_x0: np.ndarray     # x_next = next_from_x0 x0_hat + next_from_x x + next_from_noise noise
    next_from_x: np.ndarray
    next_from_noise: np.ndarray


def check_sampler_step(backend, model_output, x, noise, coefs, clip_denoised, return_pred_x0, log_variance=None):
    """sampler_step's arguments, on every backend: model_output, x (and noise, log_variance unless None) float
    (B, ...) of one shape and dtype, C-contiguous on cpu and cuda; coefs five float64 (B,) arrays; the two flags
    bools. Returns the arguments with coefs as a StepCoefs."""
    fn = "sampler_step"
    try:
        coefs = StepCoefs(*coefs)
    except TypeError:  # not a sequence, or not five of them
        raise TypeError(f"{fn}: coefs must be a StepCoefs (five float64 (B,) arrays), got "
                        f"{type(coefs).__name__}") from None
    data = {"x": x, "model_output": model_output}
    if noise is not None:
        data["noise"] = noise
    if log_variance is not None:
        data["log_variance"] = log_variance
    B = checks.matching_batches(fn, backend, data)
    host_or_device = ("numpy", "cupy") if backend in ("cuda", "reference") else None
    for name, c in coefs._asdict().items():
        checks.typed_array(fn, backend, f"coefs.{name}", c, np.float64, host_or_device)
        checks.shape(fn, f"coefs.{name}", c, (B,))
    if backend == "cpu":
        checks.contiguous(fn, backend, coefs._asdict())
    if noise is None and np.any(to_host(coefs.next_from_noise) != 0):
        raise ValueError(f"{fn}: noise is None but coefs.next_from_noise is not 0 for every sample")
    checks.flag(fn, "clip_denoised", clip_denoised)
    checks.flag(fn, "return_pred_x0", return_pred_x0)
    return model_output, x, noise, coefs, clip_denoised, return_pred_x0, log_variance


def sampler_step(model_output, x, noise, coefs, clip_denoised=True, return_pred_x0=True, log_variance=None,
                 backend=None):
    """One sampler step: returns (x_next, x0_hat), both (B, ...) like x; x0_hat is None when return_pred_x0
    is False (a sampling loop that does not record the trajectory saves its write). log_variance: None, or a
    learned per-element log sigma^2 like x that scales the noise by exp(0.5 log_variance). See the module
    docstring for the math, shapes and dtypes.

    backend: "numpy" | "cpu" | "cuda" | None (the run's default, see pyddpm.ops.backend).
    """
    return dispatch("sampler_step", backend, model_output, x, noise, coefs, clip_denoised, return_pred_x0,
                    log_variance)


def sampler_step_reference(model_output, x, noise, coefs, clip_denoised=True, return_pred_x0=True,
                           log_variance=None):
    """The NumPy reference of sampler_step (float64-capable, numpy or cupy arrays)."""
    coefs = check_sampler_step("reference", model_output, x, noise, coefs, clip_denoised, return_pred_x0,
                               log_variance)[3]
    xp = array_module(x)
    per_sample = (-1,) + (1,) * (x.ndim - 1)
    c = StepCoefs(*(xp.asarray(a).reshape(per_sample).astype(x.dtype) for a in coefs))
    pred_x0 = c.x0_from_x * x + c.x0_from_out * model_output
    if clip_denoised:
        pred_x0 = xp.clip(pred_x0, -1.0, 1.0)
    x_next = c.next_from_x0 * pred_x0 + c.next_from_x * x
    noisy = c.next_from_noise != 0
    if noise is not None and log_variance is None:
        x_next = x_next + xp.where(noisy, c.next_from_noise * noise, 0)
    elif noise is not None:
        # The exp of a noiseless sample's log-variance is never taken, so its overflow cannot warn either.
        sigma = xp.exp(0.5 * xp.where(noisy, log_variance, 0))
        x_next = x_next + xp.where(noisy, c.next_from_noise * sigma * noise, 0)
    return x_next, (pred_x0 if return_pred_x0 else None)


def _sampler_step_cpu(model_output, x, noise, coefs, clip_denoised, return_pred_x0, log_variance):
    return extension("cpu").sampler_step(model_output, x, noise, *coefs, clip_denoised, return_pred_x0,
                                         log_variance)


def _sampler_step_cuda(model_output, x, noise, coefs, clip_denoised, return_pred_x0, log_variance):
    coefs = [to_device(a) for a in coefs]
    B, n = x.shape[0], x.size // x.shape[0]
    x_next = empty(x.shape)
    pred_x0 = empty(x.shape) if return_pred_x0 else None
    launch("sampler_step", Arg("model_output", model_output, x.shape), Arg("x", x, x.shape),
           Arg("noise", noise, x.shape), Arg("log_variance", log_variance, x.shape),
           *(Arg(f"coefs.{name}", a, (B,), np.float64) for name, a in zip(StepCoefs._fields, coefs)),
           x_next.data.ptr, pred_x0.data.ptr if return_pred_x0 else 0, B, n, clip_denoised)
    return x_next, pred_x0


register("sampler_step", check_sampler_step, numpy=sampler_step_reference, cpu=_sampler_step_cpu,
         cuda=_sampler_step_cuda)
