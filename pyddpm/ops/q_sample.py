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
from pyddpm.ops.cuda_args import Arg, empty, launch, to_device
from pyddpm.ops.registry import dispatch, register


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
    t, sqrt_ac, sqrt_1m_ac = (to_device(a) for a in (t, sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod))
    (B, T), n = t.shape + sqrt_ac.shape, x0.size // t.shape[0]
    xt = empty(x0.shape)
    launch("q_sample", Arg("x0", x0, x0.shape), Arg("t", t, (B,), np.int64), Arg("noise", noise, x0.shape),
           Arg("sqrt_alphas_cumprod", sqrt_ac, (T,), np.float64),
           Arg("sqrt_one_minus_alphas_cumprod", sqrt_1m_ac, (T,), np.float64), xt.data.ptr, B, n, T)
    return xt


register("q_sample", check_q_sample, numpy=q_sample_reference, cuda=_q_sample_cuda)
