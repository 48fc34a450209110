"""Single-head self-attention at the 16x16 resolution of the DDPM U-Net (Ho et al. 2020, Appendix B: 256
positions; the block's channels are the head dimension d), forward and backward (dq, dk, dv).

    python -m benchmarks.kernels.attention [--repeats 20] [--small] [--impls numpy cpu torch torch-math]

What pyddpm computes (pyddpm/ops/attention.py; pyddpm/autograd/attention.py is its autograd op):
    q, k, v (B, 1, N, d);  out = softmax(d**-0.5 * q k^T) v   along the last axis
and the forward also returns P = softmax(...) (B, 1, N, N), which the backward takes.
impls: numpy (the reference), cpu (the fused kernels, csrc/cpu/attention.cpp: one (batch, head) per
thread, its matmuls on pyddpm's own micro-kernel), torch (F.scaled_dot_product_attention(q, k, v): the
same math, default scale 1/sqrt(d), its backward by autograd), torch-math (torch's own matmul, softmax,
matmul with autograd: the unfused algorithm of pyddpm's cuda path, on torch's BLAS). The torch forwards
are timed with grad enabled.
"""

import numpy as np

from benchmarks.harness import Case, Traffic, fused_backends, main as harness_main, torch_or_none
from pyddpm.ops.attention import attention, attention_backward

SHAPES = ((16, 256, 128), (16, 256, 256))  # (B, N = 16*16 positions, d = channels)
SMALL_SHAPES = ((2, 7, 5),)


def cases(small=False):
    torch, backends = torch_or_none(), fused_backends()
    for B, N, d in SMALL_SHAPES if small else SHAPES:
        yield from shape_cases(B, N, d, torch, backends)


def shape_cases(B, N, d, torch, backends):
    """The fwd, bwd and fwd+bwd cases at one shape (a function of its own: the closures keep its arrays)."""
    rng = np.random.default_rng(0)
    q, k, v, dout = (rng.standard_normal((B, 1, N, d)).astype(np.float32) for _ in range(4))
    _, p = attention(q, k, v, backend="numpy")  # the saved P for "bwd"

    def fwd(b):
        return lambda: attention(q, k, v, backend=b)[0]

    def bwd(b):
        return lambda: attention_backward(dout, q, k, v, p, backend=b)

    def fwd_bwd(b):
        def run():
            out, pb = attention(q, k, v, backend=b)
            return (out, *attention_backward(dout, q, k, v, pb, backend=b))
        return run

    impls = {"fwd": {b: fwd(b) for b in backends}, "bwd": {b: bwd(b) for b in backends},
             "fwd+bwd": {b: fwd_bwd(b) for b in backends}}
    if torch is not None:
        qt, kt, vt = (torch.from_numpy(a).requires_grad_() for a in (q, k, v))
        dt = torch.from_numpy(dout)
        sdpa = torch.nn.functional.scaled_dot_product_attention

        def math(qt, kt, vt):
            return torch.softmax(qt @ kt.transpose(-1, -2) * d**-0.5, dim=-1) @ vt

        for name, f in (("torch", sdpa), ("torch-math", math)):
            out_saved = f(qt, kt, vt)
            impls["fwd"][name] = lambda f=f: f(qt, kt, vt)
            impls["bwd"][name] = lambda o=out_saved: torch.autograd.grad(o, (qt, kt, vt), dt, retain_graph=True)

            def torch_fwd_bwd(f=f):
                out = f(qt, kt, vt)
                return (out, *torch.autograd.grad(out, (qt, kt, vt), dt))
            impls["fwd+bwd"][name] = torch_fwd_bwd
    # bytes: q, k, v in, out and P out; dout, q, k, v, P in, dq, dk, dv out. flops: 2 and 4 matmuls.
    nd, nn = B * N * d, B * N * N
    fwd_bytes, bwd_bytes = 4 * (4 * nd + nn), 4 * (7 * nd + nn)
    fwd_flops, bwd_flops = 4 * nn * d, 8 * nn * d
    for step, nbytes, flops in (("fwd", fwd_bytes, fwd_flops), ("bwd", bwd_bytes, bwd_flops),
                                ("fwd+bwd", fwd_bytes + bwd_bytes, fwd_flops + bwd_flops)):
        yield Case(f"attention {step} B={B} N={N} d={d}", "attention", impls[step], rtol=1e-4, atol=1e-4,
                   bytes_moved=nbytes, flops=flops)


def traffic():
    for B, N, d in SHAPES:
        r = d / N  # one (B, 1, N, d) array in units of one score matrix
        mm = {"S = q k^T": 2 * r + 1, "out = P v": 1 + 2 * r, "dv = P^T dout": 1 + 2 * r, "dP = dout v^T": 2 * r + 1,
              "dq = dS k": 1 + 2 * r, "dk = dS^T q": 1 + 2 * r}
        fwd_mm = (("fwd: S = q k^T", mm["S = q k^T"]),)
        out_mm = (("fwd: out = P v", mm["out = P v"]),)
        bwd_mm = tuple((f"bwd: {w}", mm[w]) for w in ("dv = P^T dout", "dP = dout v^T"))
        grad_mm = tuple((f"bwd: {w}", mm[w]) for w in ("dq = dS k", "dk = dS^T q"))
        yield Traffic(
            f"attention B={B} N={N} d={d}", f"one score matrix, B*N*N = {B * N * N} floats", 4 * B * N * N,
            fused=fwd_mm + (("fwd: softmax_rows", 2),) + out_mm + bwd_mm + (("bwd: softmax_backward_rows", 3),)
            + grad_mm,
            unfused={
                "reference softmax ops (CuPy), same matmuls": fwd_mm + (
                    ("fwd: scale*S", 2), ("fwd: max", 1), ("fwd: -=max", 2), ("fwd: exp", 2), ("fwd: sum", 1),
                    ("fwd: /=sum", 2)) + out_mm + bwd_mm + (
                    ("bwd: scale*P", 2), ("bwd: dP*P", 3), ("bwd: sum", 1), ("bwd: dP-sum", 2), ("bwd: ()*()", 3))
                + grad_mm,
                "for scale: a flash-attention kernel (S, P never in DRAM)": (
                    ("fwd: q, k, v -> out", 4 * r), ("bwd: q, k, v, out, dout -> dq, dk, dv", 8 * r))},
            assumptions="the matmuls are cuBLAS calls reading their operands and writing their product once; "
                        "a row of S (N floats) stays in cache inside the fused row kernels; the flash line "
                        "recomputes S and P on chip (it keeps no P, so its backward re-reads q, k, v and out)")


def main():
    harness_main(cases, traffic, __doc__)


if __name__ == "__main__":
    main()
