"""GroupNorm + SiLU, the "normalize then swish" that opens every residual block of the DDPM U-Net (Ho et al.
2020, Appendix B), forward and backward (dx, dgamma, dbeta), at shapes of the U-Net's blocks.

    python -m benchmarks.kernels.group_norm [--repeats 20] [--small] [--impls numpy cpu torch]

impls: numpy (the reference, pyddpm/ops/group_norm.py), cpu (the fused kernel, csrc/cpu/group_norm.cpp),
torch (torch.nn.functional.group_norm then silu, recorded for autograd; the backward is autograd's, i.e.
torch.autograd.grad of y with dy, giving dx, dgamma, dbeta). The torch forward is timed with grad enabled
(a training forward, which saves what its backward needs, as the fused forward returns mean and rstd).
"""

import numpy as np

from benchmarks.harness import Case, Traffic, fused_backends, main as harness_main, torch_or_none
from pyddpm.ops.group_norm import EPS, group_norm, group_norm_backward

G = 32  # the DDPM U-Net's GroupNorm always has 32 groups
SHAPES = ((32, 128, 16, 16), (16, 64, 32, 32))
SMALL_SHAPES = ((2, 64, 3, 5),)


def inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) + 3.0).astype(np.float32)  # an offset mean: the variance is two-pass
    C = shape[1]
    gamma, beta = (1.0 + 0.1 * rng.standard_normal(C)).astype(np.float32), rng.standard_normal(C).astype(np.float32)
    return x, gamma, beta, rng.standard_normal(shape).astype(np.float32)


def cases(small=False):
    torch, backends = torch_or_none(), fused_backends()
    for shape in SMALL_SHAPES if small else SHAPES:
        yield from shape_cases(shape, torch, backends)


def shape_cases(shape, torch, backends):
    """The fwd, bwd and fwd+bwd cases at one shape (a function of its own: the closures keep its arrays)."""
    x, gamma, beta, dy = inputs(shape)
    B, C, H, W = shape
    N = x.size
    _, mean, rstd = group_norm(x, gamma, beta, G, silu=True, backend="numpy")  # the saved stats for "bwd"

    def fwd(b):
        return lambda: group_norm(x, gamma, beta, G, silu=True, backend=b)[0]

    def bwd(b):
        return lambda: group_norm_backward(dy, x, gamma, beta, mean, rstd, G, silu=True, backend=b)

    def fwd_bwd(b):
        def run():
            y, m, r = group_norm(x, gamma, beta, G, silu=True, backend=b)
            return (y, *group_norm_backward(dy, x, gamma, beta, m, r, G, silu=True, backend=b))
        return run

    impls = {"fwd": {b: fwd(b) for b in backends}, "bwd": {b: bwd(b) for b in backends},
             "fwd+bwd": {b: fwd_bwd(b) for b in backends}}
    if torch is not None:
        F = torch.nn.functional
        xt, gt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, gamma, beta))
        dyt = torch.from_numpy(dy)

        def torch_fwd():
            return F.silu(F.group_norm(xt, G, gt, bt, eps=EPS))

        def torch_fwd_bwd():
            y = torch_fwd()
            return (y, *torch.autograd.grad(y, (xt, gt, bt), dyt))

        y_saved = torch_fwd()
        impls["fwd"]["torch"] = torch_fwd
        impls["bwd"]["torch"] = lambda: torch.autograd.grad(y_saved, (xt, gt, bt), dyt, retain_graph=True)
        impls["fwd+bwd"]["torch"] = torch_fwd_bwd
    # bytes: x, gamma, beta in, y, mean, rstd out; dy, x, gamma, beta, mean, rstd in, dx, dgamma, dbeta out.
    fwd_bytes, bwd_bytes = 4 * (2 * N + 2 * C + 2 * B * G), 4 * (3 * N + 4 * C + 2 * B * G)
    for step, nbytes in (("fwd", fwd_bytes), ("bwd", bwd_bytes), ("fwd+bwd", fwd_bytes + bwd_bytes)):
        yield Case(f"group_norm+silu {step} {shape}", "group_norm", impls[step], rtol=1e-4, atol=1e-3,
                   bytes_moved=nbytes)


# The NumPy reference's array operations, one launch each when it runs on CuPy arrays; passes in units of x.
REFERENCE_FWD = (("mean", 1), ("x-mean", 2), ("xc*xc", 2), ("mean", 1), ("*rstd", 2), ("*gamma", 2),
                 ("+beta", 2), ("0.5*z", 2), ("tanh", 2), ("1+", 2), ("0.5*", 2), ("z*s", 3))
REFERENCE_BWD = (("x-mean", 2), ("*rstd", 2), ("*gamma", 2), ("+beta", 2), ("0.5*z", 2), ("tanh", 2), ("1+", 2),
                 ("0.5*", 2), ("dy*s", 3), ("1-s", 2), ("z*()", 3), ("1+", 2), ("dy*s*()", 3), ("dz*xhat", 3),
                 ("sum (dgamma)", 1), ("sum (dbeta)", 1), ("dz*gamma", 2), ("mean", 1), ("dxhat*xhat", 3),
                 ("mean", 1), ("xhat*m2", 2), ("dxhat-m1", 2), ("()-()", 3), ("rstd*", 2))


def traffic():
    for shape in SHAPES:
        B, C, H, W = shape
        N = B * C * H * W
        partials = 2 * B * C / N  # the backward's per-(sample, channel) dgamma/dbeta partials, written then read
        yield Traffic(
            f"group_norm+silu {shape}", f"N = {N} floats (x)", 4 * N,
            fused=(("fwd: group_norm_forward_kernel", 2), ("bwd: group_norm_backward_kernel", 3 + partials),
                   ("bwd: sum_over_batch x2", partials)),
            unfused={"reference ops (CuPy)": tuple((f"fwd: {w}", p) for w, p in REFERENCE_FWD)
                     + tuple((f"bwd: {w}", p) for w, p in REFERENCE_BWD),
                     "library GroupNorm, then SiLU": (("fwd: stats", 1), ("fwd: normalize", 2), ("fwd: silu", 2),
                                                      ("bwd: silu'", 3), ("bwd: sums", 2), ("bwd: dx", 3))},
            assumptions=f"a (sample, group) of {C // G * H * W * 4 // 1024} KB stays in L1/L2 between the fused "
                        "kernel's sweeps over it, so x and dy come from DRAM once; gamma, beta, mean, rstd are "
                        "negligible. The library pair (as torch runs it): forward stats (reads x), normalize "
                        "(x -> z), silu (z -> y); backward silu' (dy, z -> dz), per-(sample, channel) sums of "
                        "dz and dz*x (reads dz, x), dx (dz, x -> dx)")


def main():
    harness_main(cases, traffic, __doc__)


if __name__ == "__main__":
    main()
