"""The U-Net's 3x3 stride-1 convolution (padding 1, bias) four ways: Winograd F(2x2, 3x3) in one pass
(csrc/cpu/winograd_fused.cpp) and as three steps (pyddpm/ops/winograd.py: the tile-transform kernels around
16 matmuls), im2col in the row layout (pyddpm/ops/im2col.py: one BLAS matmul), and PyTorch's conv2d
(oneDNN), forward and forward + backward.

    python -m benchmarks.kernels.winograd [--repeats 20] [--small] [--impls numpy cpu cpu-steps cpu-rows torch]

Shapes (B, C_in, C_out, H = W): the paper's CIFAR-10 U-Net at 32x32 (128 channels) and 16x16 (256),
batch 8; config B's 32x32 at 64 channels, batch 16; config A's 16x16 at 32 channels, batch 32, and its
output conv (32 -> 1 channel) (benchmarks/e2e/configs.py).
impls: numpy (the reference: Winograd's NumPy references, the truth the others are checked against),
cpu (Winograd on the cpu backend as conv2d runs it at these sizes: in one pass), cpu-steps (the three
steps: tile transforms, the 16 matmuls by batched_matmul; what conv2d ran before the one-pass kernel, and
still runs below 128 tiles), cpu-rows (im2col_rows + GEMM + rows_to_nchw on the cpu backend: what conv2d
ran before Winograd), torch (F.conv2d; its backward by autograd).
Backward outputs: dx, dw, dbias from a fixed random output gradient. GFLOP/s counts a direct convolution's
multiply-adds (2 * B * C_out * C_in * 9 * H * W forward, 3x that forward + backward), so an algorithm
with fewer multiplies can show more than the machine's matmul rate.
"""

import numpy as np

from benchmarks.harness import Case, Traffic, fused_backends, main as harness_main, torch_or_none
from pyddpm.ops import winograd as wg
from pyddpm.ops import winograd_conv as wgc
from pyddpm.ops.im2col_rows import col2im_rows, im2col_rows, nchw_to_rows, rows_to_nchw

SHAPES = ((8, 128, 128, 32), (8, 256, 256, 16), (16, 64, 64, 32), (32, 32, 32, 16), (32, 32, 1, 16))
SMALL_SHAPES = ((2, 3, 4, 5),)


def winograd_fwd(x, w, bias, backend, one_pass=True):
    return wgc.winograd_conv(x, wg.winograd_weight(w), bias, backend=backend, one_pass=one_pass)


def winograd_fwd_bwd(x, w, bias, dy, backend, one_pass=True):
    """As conv2d runs it: the filter transform, the forward, then the backward from x (V recomputed)."""
    u = wg.winograd_weight(w)
    y = wgc.winograd_conv(x, u, bias, backend=backend, one_pass=one_pass)
    dx, du, db = wgc.winograd_conv_backward(x, u, dy, need_db=True, backend=backend, one_pass=one_pass)
    return y, dx, wg.winograd_weight_grad(du), db


def rows_fwd(x, w, bias):
    B, _, H, W = x.shape
    cols = im2col_rows(x, 3, 1, backend="cpu")
    y = rows_to_nchw(w.reshape(w.shape[0], -1) @ cols, B, H, W, 1, backend="cpu")
    y += bias[:, None, None]
    return y, cols


def rows_fwd_bwd(x, w, bias, dy):
    y, cols = rows_fwd(x, w, bias)
    g = nchw_to_rows(dy, 1, backend="cpu")
    w2 = w.reshape(w.shape[0], -1)
    dx = col2im_rows(w2.T @ g, x.shape, 3, 1, backend="cpu")
    return y, dx, (cols @ g.T).T.reshape(w.shape), dy.sum(axis=(0, 2, 3))


def cases(small=False):
    torch, backends = torch_or_none(), fused_backends()
    for shape in SMALL_SHAPES if small else SHAPES:
        yield from shape_cases(shape, torch, backends)


def shape_cases(shape, torch, backends):
    B, C, K, H = shape
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((B, C, H, H)).astype(np.float32), rng.standard_normal((B, K, H, H)).astype(np.float32)
    w = (rng.standard_normal((K, C, 3, 3)) / np.sqrt(9 * C)).astype(np.float32)
    bias = rng.standard_normal(K).astype(np.float32)
    fwd = {b: (lambda b=b: winograd_fwd(x, w, bias, b)) for b in backends}
    fwd_bwd = {b: (lambda b=b: winograd_fwd_bwd(x, w, bias, dy, b)) for b in backends}
    if "cpu" in backends:
        fwd["cpu-steps"] = lambda: winograd_fwd(x, w, bias, "cpu", one_pass=False)
        fwd_bwd["cpu-steps"] = lambda: winograd_fwd_bwd(x, w, bias, dy, "cpu", one_pass=False)
        fwd["cpu-rows"] = lambda: rows_fwd(x, w, bias)[0]
        fwd_bwd["cpu-rows"] = lambda: rows_fwd_bwd(x, w, bias, dy)
    if torch is not None:
        xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, bias))
        dyt = torch.from_numpy(dy)
        conv = torch.nn.functional.conv2d
        fwd["torch"] = lambda: conv(xt, wt, bt, padding=1)

        def torch_fwd_bwd():
            y = conv(xt, wt, bt, padding=1)
            return (y, *torch.autograd.grad(y, (xt, wt, bt), dyt))
        fwd_bwd["torch"] = torch_fwd_bwd
    flops = 2 * B * K * C * 9 * H * H
    tiles = B * wg.tiles(H) ** 2
    # x, V, U, M, y: the three steps' traffic (in one pass V and M stay in cache: x, U and y)
    fwd_bytes = 4 * (x.size + 16 * C * tiles + 16 * K * C + 16 * K * tiles + B * K * H * H)
    # float32 sums in different orders: y of 9 * C terms, dw of B * H * W (8192 here: dw ~ 90 in size, and
    # the row layout's dw differs from Winograd's by up to 4e-4 where an entry is near 0).
    tol = dict(rtol=1e-4, atol=2e-3)
    yield Case(f"conv3x3 fwd {shape}", "winograd", fwd, bytes_moved=fwd_bytes, flops=flops, **tol)
    yield Case(f"conv3x3 fwd+bwd {shape}", "winograd", fwd_bwd, bytes_moved=3 * fwd_bytes, flops=3 * flops, **tol)


def traffic():
    for B, C, K, H in SHAPES:
        N = B * C * H * H
        yield Traffic(f"conv3x3 fwd {(B, C, K, H)}", f"N = {N} floats (x)", 4 * N,
                      fused=(("winograd_input: x -> V (16 values per 4 pixels)", 1 + 4),
                             (f"16 cuBLAS matmuls: V -> M ({K}/{C} of V's size)", 4 + 4 * K / C),
                             ("winograd_output: M -> y", 4 * K / C + K / C)),
                      unfused={"im2col_rows + one matmul + rows_to_nchw": (
                          ("im2col_rows: x -> cols", 1 + 9 * (H + 2) / H),
                          ("matmul: cols -> y_rows", 9 * (H + 2) / H + K / C * (H + 2) / H),
                          ("rows_to_nchw: y_rows -> y", 2 * K / C * (H + 2) / H))},
                      assumptions="filters (9 or 16 floats per filter) and the bias are negligible; each matmul "
                                  "reads its large operand once and writes its output once")


def main():
    harness_main(cases, traffic, __doc__)


if __name__ == "__main__":
    main()
