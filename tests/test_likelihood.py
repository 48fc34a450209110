"""pyddpm.likelihood: the Gaussian KL and the discretized Gaussian decoder (Eq. 13) against references.

References: scipy.stats.norm where plain CDF differences are accurate, and in the far tails an
independent asymptotic series for log Q(z) = log(1 - Phi(z)) (no scipy log_ndtr involved).
"""

import math

import numpy as np
import pytest
from scipy.stats import norm

from pyddpm.likelihood import (discretized_gaussian_log_likelihood, discretized_gaussian_log_likelihood_grad,
                               normal_kl)

GRID = np.arange(256) * (2.0 / 255.0) - 1.0  # the 8-bit data values scaled to [-1, 1]
H = 1.0 / 255.0  # half the bin width


def _log_q_asymptotic(z):
    """log Q(z) for z >= 20 from Q(z) = phi(z)/z (1 - 1/z^2 + 3/z^4 - 15/z^6 + ...), truncated after
    the z^-12 term: the next term is 135135/z^14 <= 1e-13 relative at z = 20."""
    z = np.asarray(z, dtype=np.float64)
    assert np.all(z >= 20)
    series, term = np.ones_like(z), np.ones_like(z)
    for n in range(1, 7):
        term = term * -(2 * n - 1) / z ** 2
        series = series + term
    return -0.5 * z ** 2 - 0.5 * math.log(2 * math.pi) - np.log(z) + np.log(series)


def _log_q_difference(a, b):
    """log(Q(a) - Q(b)) for 20 <= a < b, from the asymptotic series."""
    la, lb = _log_q_asymptotic(a), _log_q_asymptotic(b)
    return la + np.log(-np.expm1(lb - la))


def test_matches_scipy_where_plain_cdfs_are_accurate():
    rng = np.random.default_rng(0)
    n = 20000
    x = rng.choice(GRID, size=n)
    x[:50], x[50:100] = -1.0, 1.0  # make sure both open edge bins are exercised
    means = rng.uniform(-1.5, 1.5, n)
    log_scales = rng.uniform(-5.0, 1.0, n)
    got = discretized_gaussian_log_likelihood(x, means, log_scales)

    s = np.exp(log_scales)
    a, b = (x - H - means) / s, (x + H - means) / s
    # Right of the mean subtract survival functions, left of it CDFs: both keep full relative accuracy.
    p = np.where(a > 0, norm.sf(a) - norm.sf(b), norm.cdf(b) - norm.cdf(a))
    p = np.where(x < -0.999, norm.cdf(b), np.where(x > 0.999, norm.sf(a), p))
    ok = p > 1e-6  # where the difference of two doubles still has >= 10 correct digits
    assert ok.sum() > n // 3
    np.testing.assert_allclose(got[ok], np.log(p[ok]), rtol=1e-9, atol=1e-9)
    assert got.shape == x.shape and got.dtype == np.float64
    assert np.all(np.isfinite(got)) and np.all(got <= 0)


@pytest.mark.parametrize("log_scale_range", [(-9.0, -6.0), (-6.0, 0.0), (0.0, 2.0)])
def test_the_256_bins_sum_to_one(log_scale_range):
    rng = np.random.default_rng(1)
    n = 400
    means = np.concatenate([rng.uniform(-1.2, 1.2, n // 2),  # inside the data range
                            rng.uniform(-40.0, 40.0, n // 2 - 6),  # far outside it
                            [-1.0, 1.0, 0.0, GRID[100], GRID[100] + H, -1000.0]])  # grid points, a bin edge
    log_scales = rng.uniform(*log_scale_range, means.shape[0])
    logp = discretized_gaussian_log_likelihood(GRID[None, :], means[:, None], log_scales[:, None])
    assert logp.shape == (means.shape[0], 256)
    assert np.all(np.isfinite(logp))
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=0, atol=1e-10)


@pytest.mark.parametrize("log_scale", [-9.0, -12.0, -5.0, 2.0])
@pytest.mark.parametrize("k", [20.0, 35.0, 60.0, 300.0])
def test_far_tails_match_asymptotic_series(log_scale, k):
    """The data bin k standard deviations from the mean, on either side, and the two open edge bins."""
    s = math.exp(log_scale)
    x = GRID[150]
    # Mean below the bin: the bin is (k, k + 2h/s) in standard units. Mean above: (-k - 2h/s, -k).
    expected = _log_q_difference(k, k + 2 * H / s)
    below = discretized_gaussian_log_likelihood(np.array([x]), np.array([x - H - k * s]), np.array([log_scale]))
    above = discretized_gaussian_log_likelihood(np.array([x]), np.array([x + H + k * s]), np.array([log_scale]))
    np.testing.assert_allclose(below, expected, rtol=1e-12)
    np.testing.assert_allclose(above, expected, rtol=1e-12)

    # Edge bins: x = -1 holds (-inf, -1 + h], x = +1 holds [1 - h, inf); put the mean k sigmas away.
    edges = discretized_gaussian_log_likelihood(np.array([-1.0, 1.0]), np.array([-1.0 + H + k * s, 1.0 - H - k * s]),
                                                np.full(2, log_scale))
    np.testing.assert_allclose(edges, _log_q_asymptotic(np.full(2, k)), rtol=1e-12)


def test_tiny_scale_mean_inside_the_bin_keeps_the_tiny_missing_mass():
    """sigma = e^-9 and the mean 1e-5 off a grid value: the bin edges are ~32 sigma away, so
    log P = log(1 - Q(-a) - Q(b)) ~ -(Q(-a) + Q(b)) ~ -1e-220, which must not round to an exact 0 via 1 - P."""
    x = GRID[[0, 77, 255]]
    means, log_scales = x + 1e-5, np.full(3, -9.0)
    s = np.exp(log_scales)
    q_left = np.exp(_log_q_asymptotic((H + 1e-5) / s))  # mass below the bin (none for the open bin at -1)
    q_right = np.exp(_log_q_asymptotic((H - 1e-5) / s))  # mass above the bin (none for the open bin at +1)
    expected = -np.array([q_right[0], q_left[1] + q_right[1], q_left[2]])
    got = discretized_gaussian_log_likelihood(x, means, log_scales)
    assert np.all(expected < 0) and np.all(expected > -1e-200)
    # rtol: x + 1e-5 - x is off by ~1e-16 in double, which moves z ~ 32 by ~1e-12 and Q by ~z * 1e-12.
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_float32_in_float32_out():
    rng = np.random.default_rng(2)
    x = rng.choice(GRID, size=(4, 3, 8, 8)).astype(np.float32)
    means = (x + rng.normal(0, 0.05, x.shape)).astype(np.float32)
    log_scales = np.full((4, 1, 1, 1), -3.5, dtype=np.float32)
    got = discretized_gaussian_log_likelihood(x, means, log_scales)
    assert got.dtype == np.float32 and got.shape == x.shape
    ref = discretized_gaussian_log_likelihood(x.astype(np.float64), means.astype(np.float64),
                                              log_scales.astype(np.float64))
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    for g in discretized_gaussian_log_likelihood_grad(x, means, log_scales):
        assert g.dtype == np.float32 and g.shape == x.shape


def _central_differences(x, means, log_scales, step_mean, step_log_scale):
    f = discretized_gaussian_log_likelihood
    d_mean = (f(x, means + step_mean, log_scales) - f(x, means - step_mean, log_scales)) / (2 * step_mean)
    d_log_scale = (f(x, means, log_scales + step_log_scale)
                   - f(x, means, log_scales - step_log_scale)) / (2 * step_log_scale)
    return d_mean, d_log_scale


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.choice(GRID, size=n)
    x[:40], x[40:80] = -1.0, 1.0
    means = x + rng.normal(0, 0.3, n)
    log_scales = rng.uniform(-5.0, 1.0, n)
    d_mean, d_log_scale = discretized_gaussian_log_likelihood_grad(x, means, log_scales)
    fd_mean, fd_log_scale = _central_differences(x, means, log_scales, 1e-6 * np.exp(log_scales), 1e-6)
    np.testing.assert_allclose(d_mean, fd_mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d_log_scale, fd_log_scale, rtol=1e-6, atol=1e-6)


def test_gradient_in_the_far_tails_and_edge_bins():
    """Tiny scales and means tens of sigmas from the bin: the gradient stays finite and correct."""
    log_scales = np.array([-9.0, -9.0, -9.0, -9.0, -7.0, 2.0, -9.0, -9.0])
    s = np.exp(log_scales)
    x = np.array([GRID[30], GRID[30], -1.0, 1.0, GRID[200], GRID[10], -1.0, 1.0])
    k = np.array([25.0, 60.0, 40.0, 40.0, 30.0, 25.0, -40.0, -40.0])  # negative: mean inside the open bin
    means = np.array([x[0] - H - k[0] * s[0], x[1] + H + k[1] * s[1], -1 + H + k[2] * s[2],
                      1 - H - k[3] * s[3], x[4] - H - k[4] * s[4], x[5] + H + k[5] * s[5],
                      -1 + H + k[6] * s[6], 1 - H - k[7] * s[7]])
    d_mean, d_log_scale = discretized_gaussian_log_likelihood_grad(x, means, log_scales)
    assert np.all(np.isfinite(d_mean)) and np.all(np.isfinite(d_log_scale))
    fd_mean, fd_log_scale = _central_differences(x, means, log_scales, 1e-5 * s, 1e-7)
    np.testing.assert_allclose(d_mean, fd_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d_log_scale, fd_log_scale, rtol=1e-5, atol=1e-6)
    # Mills ratio: d log Q(z)/dz ~ -z, so the pull on the mean is about k / sigma toward the bin.
    np.testing.assert_allclose(np.abs(d_mean[:6]), k[:6] / s[:6], rtol=0.01)


def test_log1mexp_keeps_precision_at_both_ends():
    """log(1 - e^d): near d = 0 it is ~log(-d) (1 - e^d cancels), for d << 0 it is ~-e^d (log(1 - tiny))."""
    from pyddpm.likelihood import _log1mexp

    d = np.array([-1e-20, -1e-9, -50.0, -700.0])
    expected = np.array([math.log(1e-20), math.log(1e-9) - 0.5e-9, -math.exp(-50.0), -math.exp(-700.0)])
    np.testing.assert_allclose(_log1mexp(d), expected, rtol=1e-12)
    # Either side of the switch at d = -ln 2, against the plain formula where it is accurate.
    d = np.array([-0.69, -0.7, -3.0])
    np.testing.assert_allclose(_log1mexp(d), np.log(1 - np.exp(d)), rtol=1e-14)


def test_normal_kl_closed_form():
    rng = np.random.default_rng(4)
    m1, m2 = rng.normal(size=(2, 5, 7))
    s1, s2 = rng.uniform(0.1, 3.0, size=(2, 5, 7))
    expected = np.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
    got = normal_kl(m1, 2 * np.log(s1), m2, 2 * np.log(s2))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(normal_kl(0.0, 0.0, 1.0, math.log(4.0)), math.log(2.0) - 0.25, rtol=1e-14)


def test_normal_kl_is_zero_between_equal_gaussians_and_broadcasts():
    rng = np.random.default_rng(5)
    m = rng.normal(size=(3, 2, 4, 4))
    logvar = rng.normal(size=(3, 1, 1, 1))
    np.testing.assert_array_equal(normal_kl(m, logvar, m, logvar), 0.0)
    kl = normal_kl(m, logvar, 0.0, 0.0)
    assert kl.shape == m.shape and np.all(kl > 0)
