"""Winograd F(2x2, 3x3): the stride-1, padding-1 3x3 convolutions of the U-Net as 16 matrix multiplies
with 2.25x fewer multiplies than im2col's one (Lavin & Gray 2016, Sec. 4; the math and the layouts:
csrc/kernels/winograd.cuh; the kernels: csrc/cpu/winograd.cpp, csrc/cuda/winograd.cu). Per 2x2 output tile,

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A,   so   conv(x, w) = winograd_output(U @ V),
    U = winograd_weight(w) (16, C_out, C),   V = winograd_input(x) (16, C, P),

with P = B * ceil(H/2) * ceil(W/2) tiles and one matmul per tile position (pyddpm.ops.batched_matmul). The backward uses the adjoints:
dM = winograd_output_grad(dy), dx = winograd_input_grad(U^T @ dM), dw = winograd_weight_grad(dM @ V^T).
These are the convolutions of the noise-prediction network eps_theta(x_t, t) (Eq. 14, Ho et al. 2020).

The whole convolution and its gradients, in one pass on cpu or as these steps: pyddpm/ops/winograd_conv.py.

The tile transforms have kernels (backend "cpu": float32 or float64 NumPy arrays; "cuda": float32 CuPy
arrays; "numpy" runs the references below, which state the same maps with whole-array slices); the filter
transforms are small (C_out * C * 16 values) and run in the array library on every backend.
"""

import functools

import numpy as np

from pyddpm.arrays import array_module
from pyddpm.ops import checks
from pyddpm.ops.cuda_args import Arg, empty, launch
from pyddpm.ops.registry import dispatch, register

# Lavin & Gray's F(2x2, 3x3) matrices (rows as in csrc/kernels/winograd.cuh).
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def tiles(n):
    """Tiles of 2 along an axis of n pixels."""
    return (n + 1) // 2


def winograd_input(x, backend=None):
    """x (B, C, H, W) -> V (16, C, P): B^T d B of each 4x4 input tile d (zero padding 1)."""
    return dispatch("winograd_input", backend, x)


def winograd_input_grad(dv, x_shape, backend=None):
    """The adjoint of winograd_input: dV (16, C, P) -> dx of shape x_shape (B, C, H, W)."""
    return dispatch("winograd_input_grad", backend, dv, x_shape)


def winograd_output(m, y_shape, bias=None, backend=None):
    """M (16, K, P) -> y of shape y_shape (B, K, H, W): A^T m A of each tile, plus bias (K,) if given."""
    return dispatch("winograd_output", backend, m, y_shape, bias)


def winograd_output_grad(dy, backend=None):
    """The adjoint of winograd_output: dy (B, K, H, W) -> dM (16, K, P)."""
    return dispatch("winograd_output_grad", backend, dy)


# --- The checks each function above makes first, on every backend ------------------------------------------
# Arrays float32 or float64 (cuda: float32) of one dtype per call, non-empty; image shapes four positive
# integers; C-contiguous on cpu and cuda where a kernel reads the array (numpy takes any strides).

def check_winograd_input(backend, x):
    """x (B, C, H, W)."""
    checks.image("winograd_input", backend, "x", x)
    checks.contiguous("winograd_input", backend, {"x": x})


def check_winograd_input_grad(backend, dv, x_shape):
    """x_shape (B, C, H, W); dv (16, C, P), P = B * ceil(H/2) * ceil(W/2). Returns the arguments, x_shape
    as ints."""
    fn = "winograd_input_grad"
    B, C, H, W = x_shape = checks.image_shape(fn, "x_shape", x_shape)
    checks.float_array(fn, backend, "dv", dv)
    checks.shape(fn, "dv", dv, (16, C, B * tiles(H) * tiles(W)))
    checks.contiguous(fn, backend, {"dv": dv})
    return dv, x_shape


def check_winograd_output(backend, m, y_shape, bias):
    """y_shape (B, K, H, W); m (16, K, P); bias None or (K,) in m's dtype. Returns the arguments, y_shape as
    ints."""
    fn = "winograd_output"
    B, K, H, W = y_shape = checks.image_shape(fn, "y_shape", y_shape)
    checks.float_array(fn, backend, "m", m)
    checks.shape(fn, "m", m, (16, K, B * tiles(H) * tiles(W)))
    checks.contiguous(fn, backend, {"m": m})
    checks.bias(fn, backend, bias, m, "m", K)
    return m, y_shape, bias


def check_winograd_output_grad(backend, dy):
    """dy (B, K, H, W)."""
    checks.image("winograd_output_grad", backend, "dy", dy)
    checks.contiguous("winograd_output_grad", backend, {"dy": dy})


# The filter transform as one matrix on the 9 taps: U[4r + s] = sum_ij G[r, i] G[s, j] g[3i + j].
G2 = np.kron(G, G)  # (16, 9)


@functools.cache
def _g2(xp, dtype):
    """G2 in the array library and dtype of the filters, made once (on cuda: one copy to the device)."""
    return xp.asarray(G2, dtype=dtype)


def winograd_weight(w):
    """w (K, C, 3, 3) -> U (16, K, C), U[4r + s] = (G g G^T)[r, s] for each filter g = w[k, c]."""
    xp = array_module(w)
    K, C = w.shape[:2]
    return (_g2(xp, w.dtype) @ w.reshape(K * C, 9).T).reshape(16, K, C)  # one GEMM


def winograd_weight_grad(du):
    """The adjoint of winograd_weight: dU (16, K, C) -> dw (K, C, 3, 3) = G^T du G per filter."""
    xp = array_module(du)
    K, C = du.shape[1:]
    return (du.reshape(16, K * C).T @ _g2(xp, du.dtype)).reshape(K, C, 3, 3)


def _along(t, m, axis):
    """Apply the matrix m (out, in) of 0 and +-1 entries along `axis` of t: t'[.., i, ..] = sum_j m[i, j]
    t[.., j, ..], adding the terms of the nonzero m[i, j] only, left to right, as the kernels spell the
    transforms out. So a NaN or inf in t reaches only the outputs whose formula reads it, on every backend
    (a dense product would spread it to the whole tile through 0 * NaN = NaN)."""
    xp = array_module(t)
    rows = []
    for i in range(m.shape[0]):
        acc = None
        for j in np.flatnonzero(m[i]):
            term = xp.take(t, j, axis=axis)
            if acc is None:
                acc = term if m[i, j] > 0 else -term
            else:
                acc = acc + term if m[i, j] > 0 else acc - term
        rows.append(acc)
    return xp.stack(rows, axis=axis)


def winograd_input_reference(x):
    """The NumPy reference of winograd_input."""
    xp = array_module(x)
    B, C, H, W = x.shape
    TH, TW = tiles(H), tiles(W)
    xpad = xp.pad(x, ((0, 0), (0, 0), (1, 2 * TH + 1 - H), (1, 2 * TW + 1 - W)))
    d = xp.empty((4, 4, C, B, TH, TW), dtype=x.dtype)  # d[i, j, c, b, ty, tx] = xpad[b, c, 2ty + i, 2tx + j]
    for i in range(4):
        for j in range(4):
            d[i, j] = xpad[:, :, i:i + 2 * TH:2, j:j + 2 * TW:2].transpose(1, 0, 2, 3)
    v = _along(_along(d, BT, 0), BT, 1)
    return v.reshape(16, C, B * TH * TW)


def winograd_input_grad_reference(dv, x_shape):
    """The NumPy reference of winograd_input_grad: B dv B^T per tile, summed into the padded image."""
    xp = array_module(dv)
    B, C, H, W = x_shape
    TH, TW = tiles(H), tiles(W)
    dd = _along(_along(dv.reshape(4, 4, C, B, TH, TW), BT.T, 0), BT.T, 1)
    acc = xp.zeros((B, C, 2 * TH + 2, 2 * TW + 2), dtype=dv.dtype)
    for i in range(4):
        for j in range(4):
            acc[:, :, i:i + 2 * TH:2, j:j + 2 * TW:2] += dd[i, j].transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(acc[:, :, 1:1 + H, 1:1 + W])


def winograd_output_reference(m, y_shape, bias=None):
    """The NumPy reference of winograd_output."""
    xp = array_module(m)
    B, K, H, W = y_shape
    TH, TW = tiles(H), tiles(W)
    o = _along(_along(m.reshape(4, 4, K, B, TH, TW), AT, 0), AT, 1)  # (2, 2, K, B, TH, TW)
    full = o.transpose(3, 2, 4, 0, 5, 1).reshape(B, K, 2 * TH, 2 * TW)  # [b, k, 2ty + i, 2tx + j]
    y = xp.ascontiguousarray(full[:, :, :H, :W])
    if bias is not None:
        y += bias.reshape(1, K, 1, 1)
    return y


def winograd_output_grad_reference(dy):
    """The NumPy reference of winograd_output_grad: A dy A^T per tile, zeros past an odd edge."""
    xp = array_module(dy)
    B, K, H, W = dy.shape
    TH, TW = tiles(H), tiles(W)
    full = xp.pad(dy, ((0, 0), (0, 0), (0, 2 * TH - H), (0, 2 * TW - W)))
    g = full.reshape(B, K, TH, 2, TW, 2).transpose(3, 5, 1, 0, 2, 4)  # (2, 2, K, B, TH, TW)
    return _along(_along(g, AT.T, 0), AT.T, 1).reshape(16, K, B * TH * TW)


# --- The cuda backend: float32 CuPy arrays, checked by cuda_args.launch, outputs allocated here ----------

def _winograd_input_cuda(x):
    B, C, H, W = x.shape
    v = empty((16, C, B * tiles(H) * tiles(W)))
    launch("winograd_input", Arg("x", x, x.shape), v.data.ptr, B, C, H, W)
    return v


def _winograd_input_grad_cuda(dv, x_shape):
    B, C, H, W = x_shape
    dx = empty((B, C, H, W))
    launch("winograd_input_grad", Arg("dv", dv, (16, C, B * tiles(H) * tiles(W))), dx.data.ptr, B, C, H, W)
    return dx


def _winograd_output_cuda(m, y_shape, bias):
    B, K, H, W = y_shape
    y = empty((B, K, H, W))
    launch("winograd_output", Arg("m", m, (16, K, B * tiles(H) * tiles(W))), Arg("bias", bias, (K,)), y.data.ptr,
           B, K, H, W)
    return y


def _winograd_output_grad_cuda(dy):
    B, K, H, W = dy.shape
    dm = empty((16, K, B * tiles(H) * tiles(W)))
    launch("winograd_output_grad", Arg("dy", dy, dy.shape), dm.data.ptr, B, K, H, W)
    return dm


register("winograd_input", check_winograd_input, numpy=winograd_input_reference, cuda=_winograd_input_cuda)
register("winograd_input_grad", check_winograd_input_grad, numpy=winograd_input_grad_reference,
         cuda=_winograd_input_grad_cuda)
register("winograd_output", check_winograd_output, numpy=winograd_output_reference, cuda=_winograd_output_cuda)
register("winograd_output_grad", check_winograd_output_grad, numpy=winograd_output_grad_reference,
         cuda=_winograd_output_grad_cuda)
