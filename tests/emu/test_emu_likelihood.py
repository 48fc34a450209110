"""The bound's per-element terms: the exact CUDA kernels of csrc/cuda/likelihood.cu (the discretized Gaussian
log-likelihood of Eq. 13 and the Gaussian KL of Eq. 5, Ho et al. 2020), run under the CPU emulation of CUDA,
against the NumPy oracles (pyddpm/ops/discretized_gaussian_log_likelihood.py, pyddpm/ops/normal_kl.py,
both pyddpm.likelihood in float64).

Each term runs two ways: elementwise_kernel (a grid-stride loop writing (B, n)) and bpd_kernel (one block
per sample, a strided share per thread summed in double, one block_sum). Shapes: B*n < 256 (one partial
block), B*n = 900 (four blocks), n = 300 > 256 (the bits/dim loop wraps), n = 1 (255 idle threads in each
bits/dim block). Log-scales (log-variances) per element and per sample, each one independently for the KL.
Data on the 256-level grid with both edge bins (x = -1, +1) in every sample, sigma = e^-9 .. e^2 (the
midpoint and wide routes). Tolerance as in tests/test_kernels_likelihood.py: |got - want| <= 1e-6 max(1, |want|).

Not tested here: the grid-stride loop's second pass, which needs more than 4096 * 256 elements (~1M
emulated threads).
"""

import math

import numpy as np
import pytest

from emulation import covers, nan_like
from pyddpm.ops.discretized_gaussian_log_likelihood import discretized_gaussian_log_likelihood_reference
from pyddpm.ops.normal_kl import normal_kl_reference

GRID = np.arange(256) * (2.0 / 255.0) - 1.0
SHAPES = [(2, 3, 5, 7), (3, 300), (5,)]
TOL = 1e-6


def max_error(got, want):
    assert np.isfinite(got).all()
    return float(np.max(np.abs(got.astype(np.float64) - want) / np.maximum(1.0, np.abs(want))))


def f64(*arrays):
    return [a.astype(np.float64) for a in arrays]


def decoder_inputs(shape, per_sample, seed):
    rng = np.random.default_rng(seed)
    B = shape[0]
    x = rng.choice(GRID, shape).reshape(B, -1)
    x[:, 0] = -1.0  # the edge bins, open to -inf and +inf (with n = 1: one or the other)
    x[::2, -1] = 1.0
    x = x.reshape(shape)
    means = x + np.where(rng.uniform(size=shape) < 0.5, rng.normal(0, 0.05, shape), rng.uniform(-1.5, 1.5, shape))
    log_scales = rng.uniform(-9.0, 2.0, (B,) if per_sample else shape)
    return [a.astype(np.float32) for a in (x, means, log_scales)]


def kl_inputs(shape, per_sample1, per_sample2, seed):
    rng = np.random.default_rng(seed)
    B = shape[0]
    mean1, mean2 = rng.normal(0, 1, (2, *shape))
    logvar1 = rng.uniform(-10.0, 1.0, (B,) if per_sample1 else shape)
    logvar2 = rng.uniform(-10.0, 1.0, (B,) if per_sample2 else shape)
    if per_sample1 == per_sample2:  # equal variances for some (the fixed-variance DDPM's case)
        logvar2 = np.where(rng.uniform(size=logvar2.shape) < 0.3, logvar1, logvar1 + rng.normal(0, 0.5, logvar2.shape))
    return [a.astype(np.float32) for a in (mean1, logvar1, mean2, logvar2)]


@covers("elementwise_kernel", "bpd_kernel")
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_log_likelihood_matches_reference(emu, order, shape, per_sample):
    x, means, log_scales = decoder_inputs(shape, per_sample, len(shape) + per_sample)
    B, n = shape[0], x.size // shape[0]
    out, bpd = nan_like(shape), nan_like(B)
    emu.discretized_gaussian_log_likelihood_cuda(x, means, log_scales, per_sample, out, None, B, n, None)
    emu.discretized_gaussian_log_likelihood_cuda(x, means, log_scales, per_sample, None, bpd, B, n, None)
    want = discretized_gaussian_log_likelihood_reference(*f64(x, means, log_scales))
    want_bpd = discretized_gaussian_log_likelihood_reference(*f64(x, means, log_scales), per_sample_bpd=True)
    assert max_error(out, want) <= TOL
    assert max_error(bpd, want_bpd) <= TOL
    np.testing.assert_allclose(want_bpd, -want.reshape(B, -1).mean(axis=1) / math.log(2.0), rtol=1e-12)


KL_CASES = [  # (shape, logvar1 per sample, logvar2 per sample)
    ((2, 3, 5, 7), False, False),
    ((3, 300), True, True),
    ((3, 300), False, True),
    ((2, 3, 5, 7), True, False),
    ((5,), False, False),
]


@covers("elementwise_kernel", "bpd_kernel")
@pytest.mark.parametrize("shape,per_sample1,per_sample2", KL_CASES)
def test_normal_kl_matches_reference(emu, order, shape, per_sample1, per_sample2):
    mean1, logvar1, mean2, logvar2 = kl_inputs(shape, per_sample1, per_sample2, len(shape))
    B, n = shape[0], mean1.size // shape[0]
    out, bpd = nan_like(shape), nan_like(B)
    emu.normal_kl_cuda(mean1, logvar1, per_sample1, mean2, logvar2, per_sample2, out, None, B, n, None)
    emu.normal_kl_cuda(mean1, logvar1, per_sample1, mean2, logvar2, per_sample2, None, bpd, B, n, None)
    args = f64(mean1, logvar1, mean2, logvar2)
    assert max_error(out, normal_kl_reference(*args)) <= TOL
    assert max_error(bpd, normal_kl_reference(*args, per_sample_bpd=True)) <= TOL
