"""GroupNorm (+ SiLU): the exact CUDA kernels of csrc/cuda/group_norm.cu, run under the CPU emulation of
CUDA, against the NumPy oracle (pyddpm/ops/group_norm.py).

Shapes: one partial block (n < 256), several blocks, a strided loop (n > 256), group size 1, H*W = 1,
one element per group.
C > 256, where the dgamma/dbeta pass (sum_over_batch_kernel) runs several blocks, is opt-in
(PYDDPM_EMU_SLOW=1): its backward takes 2C block reductions, about 10 s emulated. Float32 kernels against
the float64 reference: forward to 2e-5, backward to 1e-4 (relative to the data's scale).

A group of one element (H*W = 1, C/G = 1): variance 0 and rstd = 1/sqrt(eps) = 1000, so terms of size
|x|*1000 must cancel exactly; dx is then exactly 0 (the tolerance, relative to max |dx_ref| = 0, demands it),
which takes mul_rn (csrc/kernels/common.cuh: __fmul_rn, emulated in csrc/emu/cuda_emu.h).
"""

import os

import numpy as np
import pytest

from emulation import covers, nan_like
from pyddpm.ops.group_norm import group_norm_backward_reference, group_norm_reference

SHAPES = [  # (B, C, H, W, G)
    (1, 4, 3, 5, 2),     # n = 30: one partial block per group
    (2, 6, 7, 9, 3),     # 6 blocks
    (2, 3, 10, 30, 3),   # group size 1, n = 300 > 256: the strided loops wrap
    (3, 4, 1, 1, 1),     # H*W = 1, one group per sample
    (2, 4, 1, 1, 4),     # one element per group
]
WIDE = (1, 264, 1, 1, 132)  # C > 256: the parameter-gradient pass runs 2 blocks


def inputs(shape, seed):
    B, C, H, W, G = shape
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((B, C, H, W)) * 2 + 1.5).astype(np.float32)
    gamma = (rng.standard_normal(C) + 1).astype(np.float32)
    beta = rng.standard_normal(C).astype(np.float32)
    return x, gamma, beta


def forward(emu, x, gamma, beta, G, silu, eps=1e-6):
    B, C, H, W = x.shape
    y, mean, rstd = nan_like(x.shape), nan_like((B, G)), nan_like((B, G))
    emu.group_norm_forward_cuda(x, gamma, beta, y, mean, rstd, B, C, H * W, G, silu, eps, None)
    return y, mean, rstd


def f64(*arrays):
    return [a.astype(np.float64) for a in arrays]


@covers("group_norm_forward_kernel")
@pytest.mark.parametrize("silu", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_reference(emu, order, shape, silu):
    x, gamma, beta = inputs(shape, 0)
    G = shape[4]
    y, mean, rstd = forward(emu, x, gamma, beta, G, silu)
    y_ref, mean_ref, rstd_ref = group_norm_reference(*f64(x, gamma, beta), G, silu, 1e-6)
    np.testing.assert_allclose(mean, mean_ref, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(rstd, rstd_ref, rtol=2e-5)
    np.testing.assert_allclose(y, y_ref, rtol=2e-5, atol=2e-5)


@covers("group_norm_backward_kernel", "sum_over_batch_kernel")
@pytest.mark.parametrize("silu", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_reference(emu, order, shape, silu):
    check_backward(emu, shape, silu)


@covers("group_norm_backward_kernel", "sum_over_batch_kernel")
@pytest.mark.skipif(not os.environ.get("PYDDPM_EMU_SLOW"), reason="C > 256 takes ~10 s emulated: PYDDPM_EMU_SLOW=1")
def test_backward_with_several_parameter_blocks(emu):
    check_backward(emu, WIDE, True)


def check_backward(emu, shape, silu):
    x, gamma, beta = inputs(shape, 1)
    B, C, H, W, G = shape
    dy = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    _, mean, rstd = forward(emu, x, gamma, beta, G, silu)
    dx, dgamma, dbeta = nan_like(x.shape), nan_like(C), nan_like(C)
    emu.group_norm_backward_cuda(dy, x, gamma, beta, mean, rstd, dx, dgamma, dbeta, nan_like((B, C)),
                                 nan_like((B, C)), B, C, H * W, G, silu, None)
    dx_ref, dgamma_ref, dbeta_ref = group_norm_backward_reference(*f64(dy, x, gamma, beta, mean, rstd), G, silu)
    scale = np.abs(dx_ref).max()
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(dgamma, dgamma_ref, rtol=1e-4, atol=1e-4 * np.abs(dgamma_ref).max())
    np.testing.assert_allclose(dbeta, dbeta_ref, rtol=1e-4, atol=1e-4 * np.abs(dbeta_ref).max())
