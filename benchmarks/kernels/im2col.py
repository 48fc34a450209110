"""The copies behind the U-Net's convolutions (pyddpm/autograd/conv.py): im2col_rows / col2im_rows and the
two row-layout moves for the 3x3 "same" convolutions, the general im2col / col2im for the stride-2 3x3
Downsample. Layouts: pyddpm/ops/im2col.py.

    python -m benchmarks.kernels.im2col [--repeats 20] [--small] [--impls numpy cpu torch]

Shapes: the paper's CIFAR-10 U-Net at 32x32 (128 channels) and 16x16 (256 channels), batch 8 (the
cols of one such conv are then 40 and 21 MB); the Downsample from 32x32 to 16x16 at 128 channels.
impls: numpy (the references), cpu (csrc/cpu/im2col.cpp), torch: for the general layout
torch.nn.functional.unfold / fold (exactly this layout); for the row layout, which torch has no op for, the
reference's copies in torch ops (pad, one slice copy per tap; zeros, one slice add per tap, a crop).
All of these only move memory: judge them by "% copy".
"""

import numpy as np

from benchmarks.harness import Case, Traffic, fused_backends, main as harness_main, torch_or_none
from pyddpm.ops.im2col import col2im, im2col
from pyddpm.ops.im2col_rows import col2im_rows, im2col_rows, nchw_to_rows, rows_to_nchw

K, P = 3, 1
SAME_SHAPES = ((8, 128, 32, 32), (8, 256, 16, 16))  # (B, C, H, W) of a stride-1 3x3 conv's input
DOWN_SHAPES = ((8, 128, 32, 32),)                    # the stride-2 Downsample's input
SMALL_SAME, SMALL_DOWN = ((2, 3, 5, 4),), ((2, 3, 5, 4),)


def torch_im2col_rows(torch, x, k, p):
    B, C, H, W = x.shape
    Wp, L = W + 2 * p, H * (W + 2 * p)
    flat = torch.nn.functional.pad(x, (p, p, p, p + 1)).reshape(B, C, -1).transpose(0, 1)
    cols = x.new_empty((C, k * k, B, L))
    for tap in range(k * k):
        o = tap // k * Wp + tap % k
        cols[:, tap] = flat[:, :, o:o + L]
    return cols.reshape(C * k * k, B * L)


def torch_col2im_rows(torch, dcols, x_shape, k, p):
    B, C, H, W = x_shape
    Wp, L = W + 2 * p, H * (W + 2 * p)
    dcols = dcols.view(C, k * k, B, L)
    flat = dcols.new_zeros((C, B, (H + 2 * p + 1) * Wp))
    for tap in range(k * k):
        o = tap // k * Wp + tap % k
        flat[:, :, o:o + L] += dcols[:, tap]
    return flat.view(C, B, -1, Wp)[:, :, p:p + H, p:p + W].transpose(0, 1).contiguous()


def cases(small=False):
    torch, backends = torch_or_none(), fused_backends()
    for shape in SMALL_SAME if small else SAME_SHAPES:
        yield from same_conv_cases(shape, torch, backends)
    for shape in SMALL_DOWN if small else DOWN_SHAPES:
        yield from downsample_cases(shape, torch, backends)


def same_conv_cases(shape, torch, backends):
    """The row-layout copies of a stride-1 3x3 conv at one shape (a function: the closures keep its arrays)."""
    F = torch.nn.functional if torch is not None else None
    rng = np.random.default_rng(0)
    B, C, H, W = shape
    x = rng.standard_normal(shape).astype(np.float32)
    N, rows_n = x.size, C * B * H * (W + 2 * P)  # the row layout's C*B*H*Wp: junk columns included
    dcols = im2col_rows(rng.standard_normal(shape).astype(np.float32), K, P, backend="numpy")  # zero junk
    y = rng.standard_normal((C, B * H * (W + 2 * P))).astype(np.float32)
    xt, dcolst, yt = (torch.from_numpy(a) for a in (x, dcols, y)) if torch is not None else (None,) * 3
    for name, impl, torch_impl, tol, nbytes in (
            ("im2col_rows", lambda b: im2col_rows(x, K, P, backend=b),
             lambda: torch_im2col_rows(torch, xt, K, P), 0.0, N + K * K * rows_n),
            ("col2im_rows", lambda b: col2im_rows(dcols, shape, K, P, backend=b),
             lambda: torch_col2im_rows(torch, dcolst, shape, K, P), 1e-5, K * K * rows_n + N),
            ("rows_to_nchw", lambda b: rows_to_nchw(y, B, H, W, P, backend=b),
             lambda: yt.view(C, B, H, -1)[..., :W].transpose(0, 1).contiguous(), 0.0, 2 * N),
            ("nchw_to_rows", lambda b: nchw_to_rows(x, P, backend=b),
             lambda: F.pad(xt.transpose(0, 1), (0, 2 * P)).reshape(C, -1), 0.0, N + rows_n)):
        impls = {b: (lambda impl=impl, b=b: impl(b)) for b in backends}
        if torch is not None:
            impls["torch"] = torch_impl
        yield Case(f"{name} {K}x{K} {shape}", "im2col", impls, rtol=tol, atol=tol, bytes_moved=4 * nbytes)


def downsample_cases(shape, torch, backends):
    """The general im2col / col2im of the stride-2 Downsample at one shape."""
    F = torch.nn.functional if torch is not None else None
    rng = np.random.default_rng(1)
    B, C, H, W = shape
    x = rng.standard_normal(shape).astype(np.float32)
    cols = im2col(rng.standard_normal(shape).astype(np.float32), K, 2, P, backend="numpy")
    xt, colst = (torch.from_numpy(a) for a in (x, cols)) if torch is not None else (None, None)
    nbytes = 4 * (x.size + cols.size)
    for name, impl, torch_impl, tol in (
            ("im2col", lambda b: im2col(x, K, 2, P, backend=b),
             lambda: F.unfold(xt, K, padding=P, stride=2), 0.0),
            ("col2im", lambda b: col2im(cols, shape, K, 2, P, backend=b),
             lambda: F.fold(colst, (H, W), K, padding=P, stride=2), 1e-5)):
        impls = {b: (lambda impl=impl, b=b: impl(b)) for b in backends}
        if torch is not None:
            impls["torch"] = torch_impl
        yield Case(f"{name} {K}x{K} stride 2 {shape}", "im2col", impls, rtol=tol, atol=tol, bytes_moved=nbytes)


def traffic():
    taps = K * K
    for B, C, H, W in SAME_SHAPES:
        w = (W + 2 * P) / W  # the row layout's width, junk columns included, in units of x's width
        padded = (H + 2 * P + 1) * (W + 2 * P) / (H * W)
        yield Traffic(f"im2col_rows / col2im_rows {K}x{K} {(B, C, H, W)}", f"N = {B * C * H * W} floats (x)",
                      4 * B * C * H * W,
                      fused=(("im2col_rows_kernel: x -> cols", 1 + taps * w),
                             ("col2im_rows_kernel: dcols -> dx", taps * w + 1)),
                      unfused={"reference ops (CuPy)": (
                          ("pad", 1 + padded), *((f"tap {t} copy", 2 * w) for t in range(taps)),
                          ("zeros", padded), *((f"tap {t} +=", 3 * w) for t in range(taps)), ("crop copy", 2))},
                      assumptions="the fused kernels' k*k re-reads of x (or of a pixel's k*k taps in cols) hit L2; "
                                  "rows_to_nchw and nchw_to_rows are one copy on both paths (not modelled)")
    for B, C, H, W in DOWN_SHAPES:
        out = taps * (H // 2) * (W // 2) / (H * W)  # cols in units of x: k*k taps at a quarter of the positions
        tap = out / taps
        padded = (H + 2 * P) * (W + 2 * P) / (H * W)
        yield Traffic(f"im2col / col2im {K}x{K} stride 2 {(B, C, H, W)}", f"N = {B * C * H * W} floats (x)",
                      4 * B * C * H * W,
                      fused=(("im2col_kernel: x -> cols", 1 + out), ("col2im_kernel: cols -> dx", out + 1)),
                      unfused={"reference ops (CuPy)": (
                          ("pad", 1 + padded), *((f"tap {t} copy", 2 * tap) for t in range(taps)),
                          ("zeros", padded), *((f"tap {t} +=", 3 * tap) for t in range(taps)), ("crop copy", 2))},
                      assumptions="a strided tap copy reads only the elements it uses (no cache-line waste)")


def main():
    harness_main(cases, traffic, __doc__)


if __name__ == "__main__":
    main()
