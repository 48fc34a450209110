"""Fused noising, Eq. 4 of Ho et al. 2020: the NumPy reference (the oracle) and the dispatch to the kernels.

    x_t = sqrt(abar[t_b]) x_0 + sqrt(1 - abar[t_b]) eps        per sample b, one read of each input

Shapes: x0, noise (B, ...) of any rank >= 1 (images (B, C, H, W), vectors (B, D), scalars (B,)), float32
(every backend) or float64 (numpy and cpu); t int64 (B,) of indices 0..T-1 (index i is the paper's
t = i + 1); the coefficient tables float64 (T,) (GaussianDiffusion.sqrt_alphas_cumprod and
.sqrt_one_minus_alphas_cumprod). The coefficients are gathered in float64 and rounded once to the data's
dtype, then applied in that dtype: the same numbers as GaussianDiffusion's former expression.
The fused kernels: csrc/kernels/q_sample.cuh (math), csrc/cpu/q_sample.cpp, csrc/cuda/q_sample.cu.
"""

import numpy as np

from pyddpm.arrays import gather
from pyddpm.ops import checks
from pyddpm.ops.backend import extension
from pyddpm.ops.cuda_args import device_ptr, stream_ptr
from pyddpm.ops.registry import dispatch, extension_call, register


def check_q_sample(backend, x0, t, noise, sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod):
    """q_sample's arguments, on every backend (see checks.timestep_args): x0 and noise float (B, ...) of one
    shape and dtype, t int64 (B,) in 0..T-1, the tables float64 (T,)."""
    checks.timestep_args("q_sample", backend, t,
                         {"sqrt_alphas_cumprod": sqrt_alphas_cumprod,
                          "sqrt_one_minus_alphas_cumprod": sqrt_one_minus_alphas_cumprod},
                         {"x0": x0, "noise": noise})


def q_sample(x0, t, noise, sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod, backend=None):
    """Eq. 4: x_t (B, ...) like x0. See the module docstring for shapes and dtypes.

    backend: "numpy" | "cpu" | "cuda" | None (the run's default, see pyddpm.ops.backend).
    """
    return dispatch("q_sample", backend, x0, t, noise, sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod)


def q_sample_reference(x0, t, noise, sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod):
    """The NumPy reference of q_sample (also runs on CuPy arrays)."""
    check_q_sample("reference", x0, t, noise, sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod)
    return gather(sqrt_alphas_cumprod, t, x0) * x0 + gather(sqrt_one_minus_alphas_cumprod, t, x0) * noise


def _q_sample_cuda(x0, t, noise, sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod):
    import cupy

    fn, f32, f64 = "q_sample", np.float32, np.float64
    tables = tuple(cupy.asarray(a) for a in (sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod))
    t = cupy.asarray(t)
    (B, T), n = t.shape + tables[0].shape, x0.size // t.shape[0]
    xt = cupy.empty_like(x0)
    extension("cuda").q_sample(device_ptr(fn, "x0", x0, f32, x0.shape), device_ptr(fn, "t", t, np.int64, (B,)),
                               device_ptr(fn, "noise", noise, f32, x0.shape),
                               device_ptr(fn, "sqrt_alphas_cumprod", tables[0], f64, (T,)),
                               device_ptr(fn, "sqrt_one_minus_alphas_cumprod", tables[1], f64, (T,)),
                               xt.data.ptr, B, n, T, stream_ptr())
    return xt


register("q_sample", check_q_sample, numpy=q_sample_reference, cpu=extension_call("q_sample"), cuda=_q_sample_cuda)
