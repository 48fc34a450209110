"""The discretized Gaussian decoder's log-likelihood (Eq. 13, Ho et al. 2020): dispatch to the kernels.

log p(x) = log(Phi((x + 1/255 - mean)/sigma) - Phi((x - 1/255 - mean)/sigma)), sigma = exp(log_scale), with
the bin of x = -1 open to -inf and the bin of x = +1 open to +inf; the L_0 term of the bound (Eq. 5).
The reference (the oracle) is pyddpm.likelihood, float64 with scipy's log_ndtr; the fused kernels are
csrc/kernels/likelihood.cuh (the stable log-CDF math, float32 on the GPU), csrc/cpu/likelihood.cpp and
csrc/cuda/likelihood.cu.

Shapes: x, means (B, ...); log_scales either of x's shape or one per sample: (B,) or (B, 1, ..., 1) (the
fixed-variance DDPM's). A 1-D log_scales of length B always means one per sample, on every backend.
Other broadcasting shapes (a scalar, (1, C, 1, 1), ...) raise ValueError on every backend; the reference
function below broadcasts them as NumPy does. One float dtype for all three arrays: float32 (every
backend) or float64 (numpy and cpu); C-contiguous on cpu and cuda.
With per_sample_bpd=True the result is -mean(log p) / ln 2 over each sample, shape (B,): bits/dim,
reduced in the same pass (in double on the CPU and on the GPU).
"""

from pyddpm import likelihood
from pyddpm.ops import checks
from pyddpm.ops.cuda_args import Arg, empty, launch
from pyddpm.ops.registry import dispatch, register

_FN = "discretized_gaussian_log_likelihood"


def check_discretized_gaussian_log_likelihood(backend, x, means, log_scales, per_sample_bpd):
    """The arguments, on every backend: x float (B, ...) not empty, means like x, log_scales like x or one per
    sample, per_sample_bpd a bool; C-contiguous on cpu and cuda. Returns the arguments, with (B, 1, ..., 1)
    log_scales as a (B,) view."""
    checks.matching_batches(_FN, backend, {"x": x, "means": means})
    checks.flag(_FN, "per_sample_bpd", per_sample_bpd)
    log_scales = checks.per_element_or_sample(_FN, backend, "log_scales", log_scales, x, "x")[0]
    return x, means, log_scales, per_sample_bpd


def discretized_gaussian_log_likelihood(x, means, log_scales, per_sample_bpd=False, backend=None):
    """log p(x) in nats, x's shape (float32 in, float32 out), or with per_sample_bpd bits/dim of shape (B,).

    backend: "numpy" | "cpu" | "cuda" | None (the run's default, see pyddpm.ops.backend).
    """
    return dispatch(_FN, backend, x, means, log_scales, per_sample_bpd)


def discretized_gaussian_log_likelihood_reference(x, means, log_scales, per_sample_bpd=False):
    """The NumPy reference: pyddpm.likelihood's float64 evaluation, then the per-sample reduction. Unchecked:
    it broadcasts any shapes NumPy broadcasts (a 1-D log_scales of length B still means one per sample)."""
    log_scales = likelihood.per_sample_broadcastable(log_scales, x)
    log_p = likelihood.discretized_gaussian_log_likelihood(x, means, log_scales)
    return likelihood.bits_per_dim(log_p, -1.0) if per_sample_bpd else log_p


def _cuda(x, means, log_scales, per_sample_bpd):
    B, per_sample = x.shape[0], log_scales.shape != x.shape
    out = empty((B,) if per_sample_bpd else x.shape)
    launch(_FN, Arg("x", x, x.shape), Arg("means", means, x.shape),
           Arg("log_scales", log_scales, (B,) if per_sample else x.shape), per_sample, out.data.ptr, per_sample_bpd,
           B, x.size // B)
    return out


register(_FN, check_discretized_gaussian_log_likelihood, numpy=discretized_gaussian_log_likelihood_reference,
         cuda=_cuda)
