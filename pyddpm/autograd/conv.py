"""2-D convolution as an autograd op: im2col + matmul (a BLAS GEMM), or Winograd F(2x2, 3x3) for 3x3 convs.

Forward:  out = w.reshape(C_out, C*k*k) @ cols + bias,   cols = im2col(x)
Backward: dw = dout @ cols^T,  dbias = sum(dout),  dx = col2im(w^T @ dout)
Shapes: x (B, C, H, W), w (C_out, C, k, k), bias (C_out,), out (B, C_out, Ho, Wo).

Four paths, one result (tests/test_autograd.py checks each against the direct sum):
- 1x1, stride 1: x itself is the column matrix; one matmul per sample.
- 3x3, stride 1, padding 1 on a backend with the Winograd kernels (cpu, cuda), with enough tiles (and on
  the three-step path, channels): Winograd F(2x2, 3x3) (pyddpm.ops.winograd), 16 matmuls with 2.25x
  fewer multiplies in all; on cpu in one pass, a block of tiles at a time.
- other stride-1 "same" convolutions (and 3x3 on small images): the whole batch as one matmul over the
  row layout of pyddpm.ops.im2col (im2col_rows), faster than the general path's matmul per sample.
- anything else (the stride-2 downsample): the general im2col, one matmul per sample.
The copies (im2col, col2im and the row-layout moves) run on the run's backend (pyddpm.ops.backend); the
fused kernels take C-contiguous arrays, so x and the incoming gradient are made contiguous once here.
"""

from pyddpm.arrays import array_module
from pyddpm.autograd.tensor import Tensor, as_tensor
from pyddpm.ops.backend import resolve
from pyddpm.ops.batched_matmul import batched_matmul
from pyddpm.ops.im2col import col2im, im2col, output_size
from pyddpm.ops.im2col_rows import col2im_rows, im2col_rows, nchw_to_rows, rows_to_nchw
from pyddpm.ops.winograd import tiles, winograd_weight, winograd_weight_grad
from pyddpm.ops.winograd_conv import one_pass_available, winograd_conv, winograd_conv_backward

# When Winograd pays (per-conv times: benchmarks/RESULTS.md, "Winograd F(2x2, 3x3) and batched_matmul" and
# "In one pass"), in two forms.
# In one pass (cpu only, pyddpm.ops.winograd_conv.one_pass_available): it beat the row layout at every U-Net
# shape tried, 1 or 3 channels in or out included, once there are two blocks of 64 tiles (one for each of
# two threads) and two samples (the backward's units are whole samples).
# As three steps around batched_matmul: it saves GEMM multiplies in proportion to C_in * C_out * P and
# adds transforms that move (C_in + C_out) * P * 16 values, P = B * ceil(H/2) * ceil(W/2) tiles; so it
# needs channels, h = C_in * C_out / (C_in + C_out) (16 channels in and out: h = 8), and enough tiles to
# keep the 16 matmuls busy: from h = 8 and 32 tiles up it beat the row layout.
# Chosen on the CPU only: for cuda these thresholds are a guess (cuBLAS on 16 batched matmuls may want
# more tiles, or fewer), to be measured where a GPU exists.
WINOGRAD_ONE_PASS_MIN_TILES = 128
WINOGRAD_ONE_PASS_MIN_BATCH = 2
WINOGRAD_MIN_TILES = 32
WINOGRAD_MIN_H = 8
WINOGRAD_BACKENDS = ("cpu", "cuda")


def conv2d(x, w, bias=None, stride=1, padding=0, fast=True):
    x, w = as_tensor(x), as_tensor(w)
    if x.ndim != 4 or w.ndim != 4 or w.shape[2] != w.shape[3] or x.shape[1] != w.shape[1]:
        raise ValueError(f"conv2d: x (B, C, H, W) and w (C_out, C, k, k) do not fit: x {x.shape}, w {w.shape}")
    B, C, H, W = x.shape
    C_out, _, k, _ = w.shape
    Ho, Wo = output_size(H, k, stride, padding), output_size(W, k, stride, padding)
    w2 = w.data.reshape(C_out, -1)
    xd = array_module(x.data).ascontiguousarray(x.data)
    bias = None if bias is None else as_tensor(bias)
    path = _winograd_path(xd.shape, C_out, k, stride, padding) if fast else None
    if path:
        return _winograd(x, xd, w, bias, one_pass=path == "one pass")
    if k == 1 and stride == 1 and padding == 0:
        out, backward_xw = _pointwise(xd, w2)
    elif fast and stride == 1 and 2 * padding == k - 1:
        out, backward_xw = _same_rows(xd, w2, k, padding)
    else:
        out, backward_xw = _general(xd, w2, k, stride, padding)
    out = out.reshape(B, C_out, Ho, Wo)
    if bias is not None:
        out += bias.data[:, None, None]
    parents = (x, w) if bias is None else (x, w, bias)

    def backward(g):
        dx, dw = backward_xw(g, x.requires_grad, w.requires_grad)
        dw = None if dw is None else dw.reshape(w.shape)
        return (dx, dw) if bias is None else (dx, dw, g.sum(axis=(0, 2, 3)))
    return Tensor.from_op(out, parents, backward)


def _winograd_path(shape, C_out, k, stride, padding):
    """"one pass", "steps" (Winograd either way) or None (im2col), by the rule above."""
    B, C, H, W = shape
    backend = resolve(None)
    if not (k == 3 and stride == 1 and padding == 1 and backend in WINOGRAD_BACKENDS):
        return None
    P = B * tiles(H) * tiles(W)
    if one_pass_available(backend, W) and P >= WINOGRAD_ONE_PASS_MIN_TILES and B >= WINOGRAD_ONE_PASS_MIN_BATCH:
        return "one pass"
    if P >= WINOGRAD_MIN_TILES and C * C_out >= WINOGRAD_MIN_H * (C + C_out):
        return "steps"
    return None


def _winograd(x, xd, w, bias, one_pass):
    """conv(x, w) + bias by Winograd (pyddpm/ops/winograd.py), in one pass or as three steps. The backward
    recomputes the transformed input from x, which the graph keeps anyway."""
    u = winograd_weight(w.data)
    out = winograd_conv(xd, u, None if bias is None else bias.data, one_pass=one_pass)
    parents = (x, w) if bias is None else (x, w, bias)

    def backward(g):
        g = array_module(g).ascontiguousarray(g)
        dx, du, db = winograd_conv_backward(xd, u, g, x.requires_grad, w.requires_grad, bias is not None,
                                            one_pass=one_pass)
        dw = None if du is None else winograd_weight_grad(du)
        return (dx, dw) if bias is None else (dx, dw, db)
    return Tensor.from_op(out, parents, backward)


def _pointwise(x, w2):
    """One matmul per sample, through batched_matmul (the weights broadcast over the batch: a zero stride)."""
    B, C = x.shape[:2]
    cols = x.reshape(B, C, -1)
    xp = array_module(x)

    def backward(g, need_x, need_w):
        g = g.reshape(B, w2.shape[0], -1)
        dx = batched_matmul(xp.broadcast_to(w2.T, (B, *w2.T.shape)), g).reshape(x.shape) if need_x else None
        dw = batched_matmul(g, cols.swapaxes(1, 2)).sum(axis=0) if need_w else None
        return dx, dw
    return batched_matmul(xp.broadcast_to(w2, (B, *w2.shape)), cols), backward


def _same_rows(x, w2, k, padding):
    B, C, H, W = x.shape
    cols = im2col_rows(x, k, padding)

    def backward(g, need_x, need_w):
        g_rows = nchw_to_rows(array_module(g).ascontiguousarray(g), padding)
        dx = col2im_rows(w2.T @ g_rows, x.shape, k, padding) if need_x else None
        dw = _weight_grad(g_rows, cols) if need_w else None
        return dx, dw
    return rows_to_nchw(w2 @ cols, B, H, W, padding), backward


def _weight_grad(g_rows, cols):
    """dW = g_rows (C_out, N) @ cols^T (N, K). When the pixel axis N is much longer than K, BLAS runs the
    transposed product (cols @ g_rows^T)^T faster, and slower when it is not (benchmarks/RESULTS.md,
    "End-to-end vs PyTorch"), so the product is taken the way round that suits it."""
    K, N = cols.shape
    return (cols @ g_rows.T).T if N > 2 * K else g_rows @ cols.T


def _general(x, w2, k, stride, padding):
    B = x.shape[0]
    cols = im2col(x, k, stride, padding)

    def backward(g, need_x, need_w):
        g = g.reshape(B, w2.shape[0], -1)
        dx = col2im(w2.T @ g, x.shape, k, stride, padding) if need_x else None
        dw = (g @ cols.swapaxes(1, 2)).sum(axis=0) if need_w else None
        return dx, dw
    return w2 @ cols, backward
