"""The discretized Gaussian decoder's log-likelihood (Eq. 13, Ho et al. 2020), reduced to bits/dim per
sample as the bound's L_0 term is (GaussianDiffusion, pyddpm.evaluate): per_sample_bpd=True.

    python -m benchmarks.kernels.discretized_gaussian_log_likelihood [--repeats 20] [--small]

Inputs as at t = 1: x on the 256-level grid in [-1, 1], means = x + 0.01 z, one log-scale per sample
(log 0.01, the size of sqrt(beta_1)). Shapes: a CIFAR-10 batch (128, 3, 32, 32); 16 images of 256x256.
impls: numpy (the reference: pyddpm.likelihood in float64 with scipy's log_ndtr), cpu (float32, the stable
log-CDF of csrc/kernels/likelihood.cuh, reduced in double: csrc/cpu/likelihood.cpp), torch (the same
stable float32 math in torch ops: torch.special.log_ndtr, the left-tail mirror, log1mexp, edge bins open,
then the per-sample mean in float64).
"""

import math

import numpy as np

from benchmarks.harness import Case, Traffic, fused_backends, main as harness_main, torch_or_none
from pyddpm.likelihood import BIN_HALF_WIDTH, EDGE
from pyddpm.ops.discretized_gaussian_log_likelihood import discretized_gaussian_log_likelihood

SHAPES = ((128, 3, 32, 32), (16, 3, 256, 256))
SMALL_SHAPES = ((3, 2, 5, 7),)


def torch_bpd(torch, x, means, log_scales):
    """-mean(log p) / ln 2 per sample, float32 math; log_scales (B,)."""
    inv_scale = torch.exp(-log_scales).view((-1,) + (1,) * (x.dim() - 1))
    centered = x - means
    lo = torch.where(x < -EDGE, -math.inf, (centered - BIN_HALF_WIDTH) * inv_scale)
    hi = torch.where(x > EDGE, math.inf, (centered + BIN_HALF_WIDTH) * inv_scale)
    flip = lo > 0  # a bin right of the mean: mirror it into the left tail, where log_ndtr is accurate
    a, b = torch.where(flip, -hi, lo), torch.where(flip, -lo, hi)
    log_b = torch.special.log_ndtr(b)
    d = torch.special.log_ndtr(a) - log_b
    log_p = log_b + torch.where(d > -math.log(2.0), torch.log(-torch.expm1(d)), torch.log1p(-torch.exp(d)))
    return (-log_p.flatten(1).mean(1, dtype=torch.float64) / math.log(2.0)).to(x.dtype)


def inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 256, shape) / 127.5 - 1.0).astype(np.float32)
    means = (x + 0.01 * rng.standard_normal(shape)).astype(np.float32)
    return x, means, np.full(shape[0], math.log(0.01), np.float32)


def cases(small=False):
    torch, backends = torch_or_none(), fused_backends()
    for shape in SMALL_SHAPES if small else SHAPES:
        yield shape_case(shape, torch, backends)


def shape_case(shape, torch, backends):
    x, means, log_scales = inputs(shape)
    impls = {b: (lambda b=b: discretized_gaussian_log_likelihood(x, means, log_scales, per_sample_bpd=True,
                                                                 backend=b)) for b in backends}
    if torch is not None:
        args = tuple(torch.from_numpy(a) for a in (x, means, log_scales))
        impls["torch"] = lambda: torch_bpd(torch, *args)
    return Case(f"dg log-likelihood, bits/dim {shape}", "discretized_gaussian_log_likelihood", impls,
                rtol=1e-5, atol=1e-5, bytes_moved=4 * (2 * x.size + 2 * shape[0]))  # x, means, scales in; bpd out


# torch_bpd above, one launch per op (bool masks are 1 byte: 0.25 of a float32 array).
UNFUSED_OPS = (("x-means", 3), ("x<-EDGE", 1.25), ("c-h", 2), ("*inv", 2), ("where", 2.25), ("x>EDGE", 1.25),
               ("c+h", 2), ("*inv", 2), ("where", 2.25), ("lo>0", 1.25), ("-hi", 2), ("where", 3.25), ("-lo", 2),
               ("where", 3.25), ("log_ndtr(b)", 2), ("log_ndtr(a)", 2), ("-", 3), ("d>-ln2", 1.25), ("expm1", 2),
               ("neg", 2), ("log", 2), ("exp", 2), ("neg", 2), ("log1p", 2), ("where", 3.25), ("log_b+", 3),
               ("mean per sample", 1))


def traffic():
    for shape in SHAPES:
        N = int(np.prod(shape))
        yield Traffic(f"dg log-likelihood, bits/dim {shape}", f"N = {N} floats (x)", 4 * N,
                      fused=(("bpd_kernel: x, means -> bpd", 2),),
                      unfused={"the torch impl's ops (float32 array ops, as CuPy would run them)": UNFUSED_OPS},
                      assumptions="log_scales and the result are per sample (negligible); the NumPy reference "
                                  "itself runs in float64 on the host, so it has no GPU sequence to model")


def main():
    harness_main(cases, traffic, __doc__)


if __name__ == "__main__":
    main()
