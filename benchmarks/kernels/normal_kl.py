"""The Gaussian KL of the bound's L_{t-1} terms (Eq. 5, Ho et al. 2020), reduced to bits/dim per sample as
GaussianDiffusion's bound does: per_sample_bpd=True, one log-variance per sample on each side (the
fixed-variance DDPM: the true posterior's and the model's).

    python -m benchmarks.kernels.normal_kl [--repeats 20] [--small] [--impls numpy cpu torch]

Shapes: a CIFAR-10 batch (128, 3, 32, 32); 16 images of 256x256.
impls: numpy (the reference, pyddpm.likelihood.normal_kl then the per-sample mean), cpu (csrc/cpu/
likelihood.cpp), torch (the reference's expression in torch ops, the per-sample mean in float64).
"""

import math

import numpy as np

from benchmarks.harness import Case, Traffic, fused_backends, main as harness_main, torch_or_none
from pyddpm.ops.normal_kl import normal_kl

SHAPES = ((128, 3, 32, 32), (16, 3, 256, 256))
SMALL_SHAPES = ((3, 2, 5, 7),)


def torch_bpd(torch, mean1, logvar1, mean2, logvar2):
    """mean(KL) / ln 2 per sample; logvar1, logvar2 (B,)."""
    shape = (-1,) + (1,) * (mean1.dim() - 1)
    logvar1, logvar2 = logvar1.view(shape), logvar2.view(shape)
    kl = 0.5 * (-1.0 + (logvar2 - logvar1) + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))
    return (kl.flatten(1).mean(1, dtype=torch.float64) / math.log(2.0)).to(mean1.dtype)


def cases(small=False):
    torch, backends = torch_or_none(), fused_backends()
    for shape in SMALL_SHAPES if small else SHAPES:
        yield shape_case(shape, torch, backends)


def shape_case(shape, torch, backends):
    rng = np.random.default_rng(0)
    mean1 = rng.standard_normal(shape).astype(np.float32)
    mean2 = (mean1 + 0.01 * rng.standard_normal(shape)).astype(np.float32)
    logvar1 = rng.uniform(-9.0, -3.0, shape[0]).astype(np.float32)  # log beta-tilde_t across t
    logvar2 = (logvar1 + 0.1).astype(np.float32)
    args = (mean1, logvar1, mean2, logvar2)
    impls = {b: (lambda b=b: normal_kl(*args, per_sample_bpd=True, backend=b)) for b in backends}
    if torch is not None:
        targs = tuple(torch.from_numpy(a) for a in args)
        impls["torch"] = lambda: torch_bpd(torch, *targs)
    return Case(f"normal_kl, bits/dim {shape}", "normal_kl", impls, rtol=1e-5, atol=1e-6,
                bytes_moved=4 * (2 * mean1.size + 3 * shape[0]))  # means in; 2 logvars, bpd per sample


REFERENCE_OPS = (("mean1-mean2", 3), ("**2", 2), ("*exp(-lv2)", 2), ("(lv2-lv1)+exp()-1 +", 2), ("0.5*", 2),
                 ("mean per sample", 1))


def traffic():
    for shape in SHAPES:
        N = int(np.prod(shape))
        yield Traffic(f"normal_kl, bits/dim {shape}", f"N = {N} floats (mean1)", 4 * N,
                      fused=(("bpd_kernel: mean1, mean2 -> bpd", 2),),
                      unfused={"reference ops (CuPy)": REFERENCE_OPS},
                      assumptions="the log-variance terms are per sample (B values), so they cost no pass")


def main():
    harness_main(cases, traffic, __doc__)


if __name__ == "__main__":
    main()
