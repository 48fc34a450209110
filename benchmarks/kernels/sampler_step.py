"""The fused step of every sampler, as ancestral sampling (Alg. 2 of Ho et al. 2020) runs it: eps prediction,
x0_hat clipped to [-1, 1], x_next = the posterior mean (Eq. 7) plus sigma_t z, no x0_hat output; the
coefficients per sample, from the float64 tables at each sample's t (pyddpm.reverse_step.step_coefs).

    python -m benchmarks.kernels.sampler_step [--repeats 20] [--small] [--impls numpy cpu torch] [--baseline numpy]

Shapes: a batch of 128 CIFAR-10 samples (128, 3, 32, 32) and 64 samples at 256x256 (64, 3, 256, 256), whose
four 50 MB arrays do not fit in any private cache.
impls: numpy (the reference, pyddpm/ops/sampler_step.py), cpu (csrc/cpu/sampler_step.cpp), torch (the
reference's expression in torch ops: the float64 coefficients rounded to float32, then the same arithmetic,
no noise term where next_from_noise is 0).
A bandwidth kernel: judge it by "% copy" (the issue's target is 70% of the measured copy bandwidth).
"""

import numpy as np

from benchmarks.harness import Case, Traffic, fused_backends, main as harness_main, torch_or_none
from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule
from pyddpm.ops.sampler_step import StepCoefs, sampler_step
from pyddpm.reverse_step import step_coefs

T = 1000
SHAPES = ((128, 3, 32, 32), (64, 3, 256, 256))
SMALL_SHAPES = ((3, 2, 5, 7),)


def torch_step(torch, out, x, noise, coefs):
    """The reference's step (clip, no x0_hat) in torch ops; coefs: five float64 (B,) tensors."""
    shape = (-1,) + (1,) * (x.dim() - 1)
    c0, c1, c2, c3, c4 = (c.to(x.dtype).view(shape) for c in coefs)
    x0 = (c0 * x + c1 * out).clamp_(-1.0, 1.0)
    return c2 * x0 + c3 * x + torch.where(c4 != 0, c4 * noise, 0.0)


def cases(small=False):
    torch, backends = torch_or_none(), fused_backends()
    for shape in SMALL_SHAPES if small else SHAPES:
        yield shape_case(shape, torch, backends)


def shape_case(shape, torch, backends):
    tables = GaussianDiffusion(make_beta_schedule("linear", T)).step_tables
    rng = np.random.default_rng(0)
    eps, x_t, noise = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    t = rng.integers(0, T, shape[0])
    t[0] = 0  # the last step of the loop: no noise term
    coefs = StepCoefs(*step_coefs(tables, t, "eps"))

    def step(b):
        return lambda: sampler_step(eps, x_t, noise, coefs, return_pred_x0=False, backend=b)[0]

    impls = {b: step(b) for b in backends}
    if torch is not None:
        args = tuple(torch.from_numpy(a) for a in (eps, x_t, noise))
        cs = tuple(torch.from_numpy(np.ascontiguousarray(c)) for c in coefs)
        impls["torch"] = lambda: torch_step(torch, *args, cs)
    return Case(f"sampler_step ancestral eps+clip {shape}", "sampler_step", impls, rtol=1e-5, atol=1e-5,
                bytes_moved=4 * 4 * eps.size + shape[0] * 5 * 8)  # 3 arrays in, x_next out; 5 coefficients


REFERENCE_OPS = (("c0*x", 2), ("c1*eps", 2), ("+ -> x0", 3), ("clip", 2), ("c2*x0", 2), ("c3*x", 2),
                 ("+ -> kept", 3), ("c4*z", 2), ("where(c4 != 0)", 2), ("kept+ -> x_next", 3))


def traffic():
    for shape in SHAPES:
        N = int(np.prod(shape))
        yield Traffic(f"sampler_step ancestral eps+clip {shape}", f"N = {N} floats (x)", 4 * N,
                      fused=(("sampler_step_kernel: eps, x, z -> x_next", 4),),
                      unfused={"reference ops (CuPy)": REFERENCE_OPS},
                      assumptions="the five per-sample coefficients (B values each) are negligible; the mask "
                                  "c4 != 0 is per sample, so it costs no pass")


def main():
    harness_main(cases, traffic, __doc__)


if __name__ == "__main__":
    main()
