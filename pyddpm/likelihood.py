"""Gaussian KL and the discretized Gaussian decoder (Eq. 13, Ho et al. 2020), computed stably.

Below the kernels: numpy, scipy and pyddpm.arrays only (the kernels' references and the layers above
use it). The decoder is evaluated in float64 on
the host with scipy's log_ndtr (log Phi, accurate far into both tails), and log(Phi(b) - Phi(a)) is
formed from log-CDFs without subtracting probabilities, so a bin tens of standard deviations from the
mean, or a scale of e^-9, still gives a finite and accurate log-probability.
"""

import math

import numpy as np
from scipy.special import log_ndtr

from pyddpm.arrays import array_module

# Data are the integers 0..255 scaled to [-1, 1]: the grid spacing is 2/255, so each bin is
# x +- 1/255, and the first and last bins extend to -inf and +inf (Eq. 13).
BIN_HALF_WIDTH = 1.0 / 255.0
# Same thresholds as the official code: strictly inside the first/last grid spacing.
EDGE = 0.999

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))) elementwise, in nats, broadcasting.

    The Gaussian KL behind every L_{t-1} term of Eq. 5 (Ho et al. 2020):
    0.5 (-1 + logvar2 - logvar1 + exp(logvar1 - logvar2) + (mean1 - mean2)^2 exp(-logvar2)).
    Any argument may be an autograd Tensor (a learned reverse variance makes logvar2 one): it meets only
    + - * ** 2 and exp, which a Tensor has as a method.
    """
    # Difference the log-variances first: it is exact for equal variances, so KL(N, N) = 0 exactly.
    return 0.5 * (-1.0 + (logvar2 - logvar1) + _exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * _exp(-logvar2))


def _exp(a):
    """exp of an array, a scalar or an autograd Tensor (whose exp is a method, kept on the tape)."""
    return a.exp() if hasattr(a, "backward") else array_module(a).exp(a)


def _to_host_float64(a):
    xp = array_module(a)
    return np.asarray(a if xp is np else xp.asnumpy(a), dtype=np.float64)


def _log1mexp(d):
    """log(1 - exp(d)) for d <= 0, accurate for d near 0 and for d very negative (Maechler 2012)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > -math.log(2.0), np.log(-np.expm1(d)), np.log1p(-np.exp(d)))


def _standardized_bin(x, means, log_scales):
    """Host float64 bin edges in standard units and edge masks, all broadcast to one shape.

    Returns (lo, hi, left, right, inv_scale, dtype): the bin of x is (lo, hi) in units of the
    standard deviation around the mean, with lo = -inf in the left edge bin and hi = +inf in the right.
    """
    # getattr: np.result_type would try to convert a cupy array, but its dtype is all we need.
    dtype = np.result_type(*(getattr(a, "dtype", a) for a in (x, means, log_scales)), np.float32)
    x, means, log_scales = np.broadcast_arrays(*map(_to_host_float64, (x, means, log_scales)))
    inv_scale = np.exp(-log_scales)
    centered = x - means
    left, right = x < -EDGE, x > EDGE
    lo = np.where(left, -np.inf, (centered - BIN_HALF_WIDTH) * inv_scale)
    hi = np.where(right, np.inf, (centered + BIN_HALF_WIDTH) * inv_scale)
    return lo, hi, left, right, inv_scale, dtype


def _log_bin_mass(lo, hi):
    """log(Phi(hi) - Phi(lo)) for lo < hi (either may be infinite), float64, without cancellation.

    When the whole bin lies right of the mean both CDFs are near 1, so use the mirror image
    Phi(hi) - Phi(lo) = Phi(-lo) - Phi(-hi), which moves the bin into the left tail where log_ndtr
    keeps full relative accuracy. Then log(Phi(b) - Phi(a)) = log Phi(b) + log(1 - exp(log Phi(a) - log Phi(b))).
    """
    flip = lo > 0
    a = np.where(flip, -hi, lo)
    b = np.where(flip, -lo, hi)
    log_b = log_ndtr(b)
    return log_b + _log1mexp(log_ndtr(a) - log_b)


def discretized_gaussian_log_likelihood(x, means, log_scales):
    """log p(x) under a Gaussian integrated over the data bin of x (Eq. 13, Ho et al. 2020), in nats.

    x: data on the 256-level grid in [-1, 1]; means, log_scales (log of the standard deviation):
    arrays broadcasting with x, e.g. x and means (B, C, H, W), log_scales (B, 1, 1, 1).
    Each value is log(Phi((x + 1/255 - mean)/sigma) - Phi((x - 1/255 - mean)/sigma)), with the bin of
    x = -1 open to -inf and the bin of x = +1 open to +inf, so the 256 probabilities sum to 1.
    Computed in float64 on the host; returns the broadcast shape in the inputs' floating dtype
    (float32 in, float32 out) on x's array module.
    """
    xp = array_module(x, means, log_scales)
    lo, hi, _, _, _, dtype = _standardized_bin(x, means, log_scales)
    return xp.asarray(_log_bin_mass(lo, hi).astype(dtype))


def discretized_gaussian_log_likelihood_grad(x, means, log_scales):
    """(d log p / d means, d log p / d log_scales) of discretized_gaussian_log_likelihood, elementwise.

    With P = Phi(b) - Phi(a), a = (x - 1/255 - mean)/sigma, b = (x + 1/255 - mean)/sigma, sigma = exp(log_scale):
      d log P / d mean      = (phi(a) - phi(b)) / (sigma P)
      d log P / d log_scale = (a phi(a) - b phi(b)) / P
    where the open edge bins have phi(-inf) = phi(+inf) = 0 and (+-inf) phi(+-inf) = 0.
    Each ratio phi(z)/P is evaluated as exp(log phi(z) - log P) so it neither overflows nor underflows
    to 0/0 when P is astronomically small (a tiny scale, or a mean far from the bin).
    Returns two arrays of the broadcast shape in the inputs' floating dtype.
    """
    xp = array_module(x, means, log_scales)
    lo, hi, left, right, inv_scale, dtype = _standardized_bin(x, means, log_scales)
    log_p = _log_bin_mass(lo, hi)
    with np.errstate(over="ignore", invalid="ignore"):
        ratio_lo = np.where(left, 0.0, np.exp(-0.5 * lo ** 2 - _LOG_SQRT_2PI - log_p))
        ratio_hi = np.where(right, 0.0, np.exp(-0.5 * hi ** 2 - _LOG_SQRT_2PI - log_p))
        d_mean = (ratio_lo - ratio_hi) * inv_scale
        d_log_scale = np.where(left, 0.0, lo * ratio_lo) - np.where(right, 0.0, hi * ratio_hi)
    return xp.asarray(d_mean.astype(dtype)), xp.asarray(d_log_scale.astype(dtype))


def per_sample_broadcastable(a, like):
    """A 1-D (B,) array meant per sample, reshaped to (B, 1, ..., 1) so NumPy broadcasting agrees."""
    if getattr(a, "ndim", 0) == 1 and getattr(like, "ndim", 0) > 1 and a.shape[0] == like.shape[0]:
        return a.reshape((a.shape[0],) + (1,) * (like.ndim - 1))
    return a


def bits_per_dim(values, sign):
    """sign * mean over each sample / ln 2, shape (B,), averaged in float64 and returned in values' dtype."""
    xp = array_module(values)
    mean = values.reshape(values.shape[0], -1).mean(axis=1, dtype=xp.float64)
    return (sign * mean / math.log(2.0)).astype(values.dtype)
