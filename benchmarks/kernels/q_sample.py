"""Fused noising, Eq. 4 of Ho et al. 2020: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t per sample.

    python -m benchmarks.kernels.q_sample [--repeats 20] [--small] [--impls numpy cpu torch]

Shapes: a CIFAR-10 training batch (128, 3, 32, 32) (the paper's batch size) and a 256x256 batch of 64 (the
paper's CelebA-HQ/LSUN models), whose three 50 MB arrays do not fit in any private cache.
impls: numpy (the reference, pyddpm/ops/q_sample.py), cpu (csrc/cpu/q_sample.cpp), torch (the reference's
expression in torch ops: the float64 tables gathered at t, rounded to float32, then a*x0 + b*eps).
A bandwidth kernel: judge it by "% copy" (the issue's target is 70% of the measured copy bandwidth).
"""

import numpy as np

from benchmarks.harness import Case, Traffic, fused_backends, main as harness_main, torch_or_none
from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule
from pyddpm.ops.q_sample import q_sample

T = 1000
SHAPES = ((128, 3, 32, 32), (64, 3, 256, 256))
SMALL_SHAPES = ((3, 2, 5, 7),)


def per_sample(table, t, like):
    """table[t] as (B, 1, ..., 1) in like's dtype: gathered in float64, rounded once (as the reference)."""
    return table[t].to(like.dtype).view((-1,) + (1,) * (like.dim() - 1))


def cases(small=False):
    torch, backends = torch_or_none(), fused_backends()
    for shape in SMALL_SHAPES if small else SHAPES:
        yield shape_case(shape, torch, backends)


def shape_case(shape, torch, backends):
    diffusion = GaussianDiffusion(make_beta_schedule("linear", T))
    tables = (diffusion.sqrt_alphas_cumprod, diffusion.sqrt_one_minus_alphas_cumprod)
    rng = np.random.default_rng(0)
    x0, noise = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    t = rng.integers(0, T, shape[0])
    impls = {b: (lambda b=b: q_sample(x0, t, noise, *tables, backend=b)) for b in backends}
    if torch is not None:
        x0t, noiset, tt = torch.from_numpy(x0), torch.from_numpy(noise), torch.from_numpy(t)
        a, s = (torch.from_numpy(tab) for tab in tables)
        impls["torch"] = lambda: per_sample(a, tt, x0t) * x0t + per_sample(s, tt, x0t) * noiset
    B = shape[0]
    return Case(f"q_sample {shape}", "q_sample", impls, rtol=1e-6, atol=1e-6,
                bytes_moved=4 * 3 * x0.size + B * (8 + 2 * 8))  # x0, noise in, x_t out; t and 2 coefs per sample


def traffic():
    for shape in SHAPES:
        N = int(np.prod(shape))
        yield Traffic(f"q_sample {shape}", f"N = {N} floats (x0)", 4 * N,
                      fused=(("q_sample_kernel: x0, eps -> x_t", 3),),
                      unfused={"reference ops (CuPy)": (("a[t]*x0 -> tmp", 2), ("b[t]*eps -> tmp2", 2),
                                                        ("tmp+tmp2 -> x_t", 3))},
                      assumptions="t and the two gathered coefficients (B values each) are negligible")


def main():
    harness_main(cases, traffic, __doc__)


if __name__ == "__main__":
    main()
