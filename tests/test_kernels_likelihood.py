"""The bound's per-element terms (Eq. 13 log-likelihood, Gaussian KL): each fused backend against the oracle.

The oracle is pyddpm.likelihood in float64 (scipy's log_ndtr), evaluated on the float32 inputs themselves,
so the comparison measures the kernel's arithmetic alone. float32 tolerance (the issue's): 1e-6 relative
where |log p| > 1, absolute below, i.e. |got - want| <= 1e-6 max(1, |want|). The cpu backend runs on float32
input exactly the float32 math the CUDA kernel runs (csrc/kernels/likelihood.cuh, erfcx included), so
these tests validate the device formula on the host.
"""

import math

import numpy as np
import pytest

from kernels import FAST_BACKENDS, assert_matches, skip_float64_on_cuda, to_backend, to_numpy
from pyddpm import likelihood
from pyddpm.ops.discretized_gaussian_log_likelihood import (discretized_gaussian_log_likelihood,
                                                            discretized_gaussian_log_likelihood_reference)
from pyddpm.ops.normal_kl import normal_kl, normal_kl_reference

GRID = np.arange(256) * (2.0 / 255.0) - 1.0  # the 8-bit data values scaled to [-1, 1]
H = 1.0 / 255.0  # half a bin
F32_TOL = 1e-6
# float64: the oracle itself loses ~1e-13 relative in narrow bins (sigma = e^2), where it subtracts two
# log-CDFs (checked against mpmath while writing the kernel); the kernel's midpoint expansion does not.
F64_TOL = 1e-11
ALL_BACKENDS = ["numpy", *FAST_BACKENDS]


def _regime(name, rng, n=20000):
    """(x, means, log_scales) in float64 for one numerical regime of the decoder."""
    log_scales = rng.uniform(-9.0, 2.0, n)
    s = np.exp(log_scales)
    if name == "near":  # means around the data, every scale
        x = rng.choice(GRID, n)
        return x, x + rng.normal(0, 0.05, n), log_scales
    if name == "spread":  # means anywhere in and around the data range
        x = rng.choice(GRID, n)
        return x, rng.uniform(-1.5, 1.5, n), log_scales
    if name == "far_tails":  # the bin 5 .. 150 standard deviations from the mean, on either side
        x = rng.choice(GRID[1:-1], n)
        k = np.exp(rng.uniform(math.log(5.0), math.log(150.0), n))
        return x, x + rng.choice([-1.0, 1.0], n) * (H + k * s), log_scales
    if name == "edge_bins":  # x = -1 (open to -inf) and x = +1 (open to +inf), mean up to 60 sigma either way
        x = rng.choice([-1.0, 1.0], n)
        return x, x + rng.uniform(-60.0, 60.0, n) * s, log_scales
    if name == "near_bin_edges":  # x - mean within a few sigma of +-1/255: the edge cancels
        x = rng.choice(GRID, n)
        return x, x + rng.choice([-1.0, 1.0], n) * H + rng.normal(0, 1, n) * s, log_scales
    if name == "narrow_wide_switch":  # around the midpoint/wide switch, (w/2)^2 (m^2 + 4) ~ 1
        x = rng.choice(GRID[1:-1], n)
        half_w = H / s
        m = np.where(rng.uniform(size=n) < 0.5, rng.uniform(-2, 2, n),
                     rng.choice([-1.0, 1.0], n) * rng.uniform(0.3, 3.0, n) / half_w)
        return x, x - m * s, log_scales
    if name == "tiny_scales":  # sigma = e^-9 .. e^-6, means within a few bins
        log_scales = rng.uniform(-9.0, -6.0, n)
        x = rng.choice(GRID, n)
        return x, x + rng.normal(0, 0.01, n), log_scales
    raise ValueError(name)


REGIMES = ["near", "spread", "far_tails", "edge_bins", "near_bin_edges", "narrow_wide_switch", "tiny_scales"]


def _oracle(*arrays):
    return likelihood.discretized_gaussian_log_likelihood(*(np.asarray(a, np.float64) for a in arrays))


def _beyond_one(want):
    """The tolerance's scale: max(1, |want|), relative where |want| > 1, absolute below."""
    return np.maximum(1.0, np.abs(want))


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("regime", REGIMES)
def test_float32_log_likelihood_within_1e6_of_the_oracle(backend, regime):
    rng = np.random.default_rng(REGIMES.index(regime))
    x, means, log_scales = (a.astype(np.float32) for a in _regime(regime, rng))
    got = discretized_gaussian_log_likelihood(*to_backend(backend, x, means, log_scales), backend=backend)
    assert got.dtype == np.float32 and got.shape == x.shape
    want = _oracle(x, means, log_scales)
    assert_matches(got, want, np.float32, f"log p on {backend}", F32_TOL, terms=_beyond_one(want))


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_256_bin_grid_sums_to_one(backend, dtype):
    """Every data value for 400 (mean, scale) pairs, sigma = e^-9 .. e^2, means in and far outside [-1, 1]."""
    skip_float64_on_cuda(backend, dtype)
    rng = np.random.default_rng(7)
    means = np.concatenate([rng.uniform(-1.2, 1.2, 300), rng.uniform(-40.0, 40.0, 96), [-1.0, 1.0, 0.0, GRID[100]]])
    log_scales = rng.uniform(-9.0, 2.0, means.shape[0])
    x, m, ls = (np.ascontiguousarray(np.broadcast_to(a, (400, 256)), dtype)
                for a in (GRID[None, :], means[:, None], log_scales[:, None]))
    got = to_numpy(discretized_gaussian_log_likelihood(*to_backend(backend, x, m, ls), backend=backend))
    want = _oracle(x, m, ls)
    mass = np.exp(got.astype(np.float64)).sum(axis=1)
    if dtype == np.float32:
        assert_matches(got, want, dtype, f"log p on {backend}", F32_TOL, terms=_beyond_one(want))
        # The float32 grid values are not exactly k*2/255 - 1: bins overlap or gap by ~1e-8, which at
        # sigma = e^-9 moves the total by ~1e-5 in the oracle too. Compare totals with the oracle's.
        np.testing.assert_allclose(mass, np.exp(want).sum(axis=1), rtol=0, atol=1e-6)
        np.testing.assert_allclose(mass, 1.0, rtol=0, atol=1e-4)
    else:
        assert_matches(got, want, dtype, f"log p on {backend}", F64_TOL, terms=_beyond_one(want))
        np.testing.assert_allclose(mass, 1.0, rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("regime", ["spread", "far_tails", "edge_bins", "narrow_wide_switch"])
def test_float64_log_likelihood_matches_the_oracle(backend, regime):
    if backend == "cuda":
        pytest.skip("the CUDA kernels are float32 only")
    x, means, log_scales = _regime(regime, np.random.default_rng(11))
    got = discretized_gaussian_log_likelihood(x, means, log_scales, backend=backend)
    assert got.dtype == np.float64
    want = _oracle(x, means, log_scales)
    assert_matches(got, want, np.float64, f"log p on {backend}", F64_TOL, terms=_beyond_one(want))


# (shape, log_scales per sample?): batch 1, odd sizes, sizes not a multiple of a block, a 1-D batch.
SHAPES = [((1, 3, 5, 7), True), ((2, 3, 8, 8), False), ((3, 1, 1, 1), True), ((5,), False), ((4, 300), True),
          ((2, 3, 17, 19), False)]


def _inputs(shape, per_sample, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.choice(GRID, shape)
    means = x + rng.normal(0, 0.1, shape)
    log_scales = rng.uniform(-6.0, 0.0, shape[:1] if per_sample else shape)
    return tuple(a.astype(dtype) for a in (x, means, log_scales))


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("shape,per_sample", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_and_per_sample_bits_per_dim(backend, shape, per_sample, dtype):
    skip_float64_on_cuda(backend, dtype)
    x, means, log_scales = _inputs(shape, per_sample, dtype, sum(shape))
    ls_b = log_scales.reshape((-1,) + (1,) * (len(shape) - 1)) if per_sample else log_scales
    want = _oracle(x, means, ls_b)
    want_bpd = -want.reshape(shape[0], -1).mean(axis=1) / math.log(2.0)
    tol = F32_TOL if dtype == np.float32 else F64_TOL
    args = to_backend(backend, x, means, log_scales)
    got = discretized_gaussian_log_likelihood(*args, backend=backend)
    bpd = discretized_gaussian_log_likelihood(*args, per_sample_bpd=True, backend=backend)
    assert got.shape == shape and got.dtype == dtype and bpd.shape == shape[:1] and bpd.dtype == dtype
    assert_matches(got, want, dtype, f"per element on {backend}", tol, terms=_beyond_one(want))
    assert_matches(bpd, want_bpd, dtype, f"bits/dim on {backend}", tol, terms=_beyond_one(want_bpd))
    if per_sample and len(shape) > 1:  # (B, 1, ..., 1) is the same as (B,)
        again = discretized_gaussian_log_likelihood(*to_backend(backend, x, means, ls_b), backend=backend)
        np.testing.assert_array_equal(to_numpy(again), to_numpy(got))


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_infinite_means_give_the_oracles_limits(backend, dtype):
    """A mean at +-inf where the oracle has a number: the open edge bin on that side holds all the mass
    (log p = 0 for x = -1 with mean -inf and x = +1 with mean +inf). The bin edges' exact sum x - mean
    (TwoSum) must not turn its inf - inf into a NaN there. Elsewhere the oracle's bin masses are
    inf - inf, NaN, and so is a NaN mean: NaN on every backend alike."""
    skip_float64_on_cuda(backend, dtype)
    x = np.array([-1.0, 1.0, -1.0, 1.0, 0.0, 0.0, -1.0, 1.0, 0.0], dtype)
    means = np.array([-np.inf, np.inf, np.inf, -np.inf, np.inf, -np.inf, np.nan, np.nan, np.nan], dtype)
    log_scales = np.full(x.shape, -3.0, dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = _oracle(x, means, log_scales)
    np.testing.assert_array_equal(want, [0.0, 0.0] + [np.nan] * 7)
    got = to_numpy(discretized_gaussian_log_likelihood(*to_backend(backend, x, means, log_scales), backend=backend))
    np.testing.assert_array_equal(got, want.astype(dtype))


def _kl_inputs(shape, per_sample, dtype, seed):
    rng = np.random.default_rng(seed)
    mean1, mean2 = rng.normal(0, 1, (2, *shape))
    lv_shape = shape[:1] if per_sample else shape
    logvar1 = rng.uniform(-10.0, 1.0, lv_shape)
    # Equal variances for some samples/elements (the fixed-variance DDPM's case), near-equal for others.
    logvar2 = np.where(rng.uniform(size=lv_shape) < 0.3, logvar1, logvar1 + rng.normal(0, 0.5, lv_shape))
    return tuple(a.astype(dtype) for a in (mean1, logvar1, mean2, logvar2))


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("shape,per_sample", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_kl_matches_the_oracle(backend, shape, per_sample, dtype):
    skip_float64_on_cuda(backend, dtype)
    mean1, logvar1, mean2, logvar2 = _kl_inputs(shape, per_sample, dtype, sum(shape) + 1)
    bshape = (-1,) + (1,) * (len(shape) - 1)
    lv1, lv2 = (lv.reshape(bshape) for lv in (logvar1, logvar2)) if per_sample else (logvar1, logvar2)
    want = likelihood.normal_kl(*(a.astype(np.float64) for a in (mean1, lv1, mean2, lv2)))
    want_bpd = want.reshape(shape[0], -1).mean(axis=1) / math.log(2.0)
    tol = F32_TOL if dtype == np.float32 else 1e-13
    args = to_backend(backend, mean1, logvar1, mean2, logvar2)
    got = normal_kl(*args, backend=backend)
    bpd = normal_kl(*args, per_sample_bpd=True, backend=backend)
    assert got.shape == shape and got.dtype == dtype and bpd.shape == shape[:1] and bpd.dtype == dtype
    assert_matches(got, want, dtype, f"per element on {backend}", tol, terms=_beyond_one(want))
    assert_matches(bpd, want_bpd, dtype, f"bits/dim on {backend}", tol, terms=_beyond_one(want_bpd))


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_normal_kl_of_a_distribution_with_itself_is_zero(backend):
    rng = np.random.default_rng(3)
    mean, logvar = rng.normal(0, 1, (2, 4, 3, 5, 5)).astype(np.float32)
    got = to_numpy(normal_kl(*to_backend(backend, mean, logvar, mean, logvar), backend=backend))
    np.testing.assert_array_equal(got, 0.0)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_every_backend_refuses_other_broadcasting_shapes_and_the_references_broadcast_them(backend):
    """Only per-element and per-sample shapes reach a kernel, on numpy as on cpu and cuda (numpy broadcast
    the rest before, the others refused them); the reference functions still broadcast as NumPy does."""
    rng = np.random.default_rng(4)
    x, means, _ = _inputs((2, 3, 4, 4), False, np.float32, 0)
    per_channel = rng.uniform(-5, 0, (1, 3, 1, 1)).astype(np.float32)
    got = discretized_gaussian_log_likelihood_reference(x, means, per_channel)
    want = _oracle(x, means, per_channel)
    assert_matches(got, want, np.float32, "per channel", F32_TOL, terms=_beyond_one(want))
    assert normal_kl_reference(means, per_channel, 0.0, 0.0).shape == x.shape
    x, means, per_channel = to_backend(backend, x, means, per_channel)
    with pytest.raises(ValueError, match="log_scales must have shape"):
        discretized_gaussian_log_likelihood(x, means, per_channel, backend=backend)
    with pytest.raises(ValueError, match="logvar1 must have shape"):
        normal_kl(means, per_channel, means, per_channel[0, :, 0, 0], backend=backend)
    with pytest.raises(TypeError, match="normal_kl: mean2 must be a"):  # a Python scalar is not an array
        normal_kl(means, means, 0.0, means, backend=backend)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_bad_input_raises(backend):
    x, means, log_scales = to_backend(backend, *_inputs((2, 3, 4, 4), True, np.float32, 5))
    f, kl = discretized_gaussian_log_likelihood, normal_kl
    with pytest.raises(ValueError, match="means"):
        f(x, means[:1], log_scales, backend=backend)
    with pytest.raises(ValueError, match="log_scales"):
        f(x, means, log_scales[:1], backend=backend)
    with pytest.raises(TypeError, match="float32"):
        f(x, means.astype(np.float64), log_scales, backend=backend)
    with pytest.raises(TypeError, match="float32"):
        f(x, means, log_scales.astype(np.float64), backend=backend)
    with pytest.raises(TypeError, match="contiguous"):
        f(x[:, :, :, ::-1], means, log_scales, backend=backend)
    with pytest.raises(TypeError, match="contiguous"):
        f(x, means, x[:, 0, 0, 0], backend=backend)  # a strided (B,) view
    with pytest.raises(ValueError, match="non-empty"):
        f(x[:0], means[:0], log_scales[:0], backend=backend)
    with pytest.raises(ValueError, match="non-empty"):
        f(x[0, 0, 0, 0], means[0, 0, 0, 0], log_scales[0], backend=backend)
    with pytest.raises(ValueError, match="mean2"):
        kl(means, log_scales, means[:1], log_scales, backend=backend)
    with pytest.raises(ValueError, match="logvar2"):
        kl(means, log_scales, means, log_scales[:1], backend=backend)
    with pytest.raises(TypeError, match="float32"):
        kl(means, log_scales, means.astype(np.float64), log_scales, backend=backend)
    if backend == "cpu":
        with pytest.raises(TypeError, match="float32 or float64"):
            f(x.astype(np.float16), means, log_scales, backend=backend)
