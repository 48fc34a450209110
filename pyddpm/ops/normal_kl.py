"""The Gaussian KL of the bound's L_{t-1} terms (Eq. 5, Ho et al. 2020): dispatch to the kernels.

KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))) elementwise, in nats. The reference (the oracle) is
pyddpm.likelihood.normal_kl; the fused kernels are csrc/kernels/likelihood.cuh, csrc/cpu/likelihood.cpp
and csrc/cuda/likelihood.cu (they fold the -1 into expm1, so near-equal variances do not cancel).

Shapes: mean1, mean2 (B, ...); logvar1, logvar2 each of mean1's shape or one per sample, (B,) or
(B, 1, ..., 1). A 1-D logvar of length B always means one per sample, on every backend. Other
broadcasting shapes (scalars, ...) raise ValueError on every backend; the reference function broadcasts
them as NumPy does. One float dtype for all four arrays: float32 (every backend) or float64 (numpy and
cpu); C-contiguous on cpu and cuda.
With per_sample_bpd=True the result is mean(KL) / ln 2 over each sample, shape (B,), reduced in the same pass.
"""

from pyddpm import likelihood
from pyddpm.ops import checks
from pyddpm.ops.cuda_args import Arg, empty, launch
from pyddpm.ops.registry import dispatch, register

_FN = "normal_kl"


def check_normal_kl(backend, mean1, logvar1, mean2, logvar2, per_sample_bpd):
    """The arguments, on every backend: mean1 float (B, ...) not empty, mean2 like it, each logvar like mean1
    or one per sample, per_sample_bpd a bool; C-contiguous on cpu and cuda. Returns the arguments, with
    (B, 1, ..., 1) logvars as (B,) views."""
    checks.matching_batches(_FN, backend, {"mean1": mean1, "mean2": mean2})
    checks.flag(_FN, "per_sample_bpd", per_sample_bpd)
    logvar1 = checks.per_element_or_sample(_FN, backend, "logvar1", logvar1, mean1, "mean1")[0]
    logvar2 = checks.per_element_or_sample(_FN, backend, "logvar2", logvar2, mean1, "mean1")[0]
    return mean1, logvar1, mean2, logvar2, per_sample_bpd


def normal_kl(mean1, logvar1, mean2, logvar2, per_sample_bpd=False, backend=None):
    """KL in nats, mean1's shape (float32 in, float32 out), or with per_sample_bpd bits/dim of shape (B,).

    backend: "numpy" | "cpu" | "cuda" | None (the run's default, see pyddpm.ops.backend).
    """
    return dispatch(_FN, backend, mean1, logvar1, mean2, logvar2, per_sample_bpd)


def normal_kl_reference(mean1, logvar1, mean2, logvar2, per_sample_bpd=False):
    """The NumPy reference: pyddpm.likelihood.normal_kl, then the per-sample reduction. Unchecked: it
    broadcasts any shapes NumPy broadcasts (a 1-D logvar of length B still means one per sample)."""
    like = mean1 if getattr(mean1, "ndim", 0) else mean2
    logvar1 = likelihood.per_sample_broadcastable(logvar1, like)
    logvar2 = likelihood.per_sample_broadcastable(logvar2, like)
    kl = likelihood.normal_kl(mean1, logvar1, mean2, logvar2)
    return likelihood.bits_per_dim(kl, 1.0) if per_sample_bpd else kl


def _cuda(mean1, logvar1, mean2, logvar2, per_sample_bpd):
    shape, B = mean1.shape, mean1.shape[0]
    per_sample1, per_sample2 = logvar1.shape != shape, logvar2.shape != shape
    out = empty((B,) if per_sample_bpd else shape)
    launch(_FN, Arg("mean1", mean1, shape), Arg("logvar1", logvar1, (B,) if per_sample1 else shape), per_sample1,
           Arg("mean2", mean2, shape), Arg("logvar2", logvar2, (B,) if per_sample2 else shape), per_sample2,
           out.data.ptr, per_sample_bpd, B, mean1.size // B)
    return out


register(_FN, check_normal_kl, numpy=normal_kl_reference, cuda=_cuda)
