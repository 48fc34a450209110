"""The whole Winograd F(2x2, 3x3) convolution and its gradients (pyddpm/ops/winograd.py for the transforms).

    winograd_conv(x, U, bias) = winograd_output(U @ winograd_input(x)) + bias,   U = winograd_weight(w)

On cpu in one pass where one_pass_available says so and the caller asks for it (csrc/cpu/winograd_fused.cpp:
the three steps a block of 64 tiles at a time, V and M in cache, never in memory); otherwise the three steps
of pyddpm.ops.winograd around pyddpm.ops.batched_matmul, on any backend (the numpy backend's steps are the
references). Both directions recompute V from x in the backward rather than keeping it (it is 4x the
input's size). These are the 3x3 convolutions of the noise-prediction network eps_theta(x_t, t) (Eq. 14,
Ho et al. 2020).
"""

import functools

from pyddpm.ops import checks
from pyddpm.ops.backend import extension
from pyddpm.ops.batched_matmul import batched_matmul
from pyddpm.ops.registry import dispatch, register
from pyddpm.ops.winograd import winograd_input, winograd_input_grad, winograd_output, winograd_output_grad


def winograd_conv(x, u, bias=None, backend=None, one_pass=True):
    """conv3x3(x, w) + bias, stride 1, padding 1: x (B, C, H, W), U = winograd_weight(w) (16, K, C), bias (K,)
    or None -> y (B, K, H, W) = winograd_output(U @ winograd_input(x)) + bias. one_pass: take the one-pass
    kernel where there is one (one_pass_available)."""
    return dispatch("winograd_conv", backend, x, u, bias, one_pass)


def winograd_conv_backward(x, u, dy, need_dx=True, need_du=True, need_db=False, backend=None, one_pass=True):
    """winograd_conv's gradients from dy (B, K, H, W): (dx (B, C, H, W), dU (16, K, C), db (K,)), None where not
    needed. dM = winograd_output_grad(dy); dx = winograd_input_grad(U^T @ dM); dU = dM @ V^T, V from x;
    db = dy's sum over samples and pixels (in one pass, taken as dy goes by)."""
    return dispatch("winograd_conv_backward", backend, x, u, dy, need_dx, need_du, need_db, one_pass)


def _conv_steps(x, u, bias, one_pass, backend):
    """winograd_conv as its three steps on ``backend`` (one_pass is not for this path)."""
    B, _, H, W = x.shape
    v = winograd_input(x, backend)
    return winograd_output(batched_matmul(u, v, backend), (B, u.shape[1], H, W), bias, backend)


def _conv_backward_steps(x, u, dy, need_dx, need_du, need_db, one_pass, backend):
    dm = winograd_output_grad(dy, backend)
    dx = winograd_input_grad(batched_matmul(u.swapaxes(1, 2), dm, backend), x.shape, backend) if need_dx else None
    du = batched_matmul(dm, winograd_input(x, backend).swapaxes(1, 2), backend) if need_du else None
    return dx, du, dy.sum(axis=(0, 2, 3)) if need_db else None


def _conv_cpu(x, u, bias, one_pass):
    if one_pass and one_pass_available("cpu", x.shape[3]):
        return extension("cpu").winograd_conv(x, u, bias)
    return _conv_steps(x, u, bias, one_pass, "cpu")


def _conv_backward_cpu(x, u, dy, need_dx, need_du, need_db, one_pass):
    if one_pass and one_pass_available("cpu", x.shape[3]):
        return tuple(extension("cpu").winograd_conv_backward(x, u, dy, need_dx, need_du, need_db))
    return _conv_backward_steps(x, u, dy, need_dx, need_du, need_db, one_pass, "cpu")


def check_winograd_conv(backend, x, u, bias, one_pass):
    """x (B, C, H, W); u (16, K, C) with K >= 1 in x's dtype; bias None or (K,); one_pass a bool. On cpu
    x, u and bias C-contiguous (the one-pass kernel reads all three); on cuda x and bias."""
    fn = "winograd_conv"
    K = _check_conv(fn, backend, x, u)
    checks.bias(fn, backend, bias, x, "x", K)
    checks.flag(fn, "one_pass", one_pass)


def check_winograd_conv_backward(backend, x, u, dy, need_dx, need_du, need_db, one_pass):
    """x and u as winograd_conv's; dy (B, K, H, W) in x's dtype, C-contiguous on cpu and cuda; the flags
    bools."""
    fn = "winograd_conv_backward"
    K = _check_conv(fn, backend, x, u)
    B, _, H, W = x.shape
    checks.float_array(fn, backend, "dy", dy, x, "x")
    checks.shape(fn, "dy", dy, (B, K, H, W))
    checks.contiguous(fn, backend, {"dy": dy})
    for name, value in (("need_dx", need_dx), ("need_du", need_du), ("need_db", need_db), ("one_pass", one_pass)):
        checks.flag(fn, name, value)


def _check_conv(fn, backend, x, u):
    """x (B, C, H, W) and u (16, K, C), K >= 1, of one dtype; returns K."""
    C = checks.image(fn, backend, "x", x)[1]
    checks.float_array(fn, backend, "u", u, x, "x")
    checks.shape(fn, "u", u, (16, -1, C))
    if u.shape[1] < 1:
        raise ValueError(f"{fn}: u must have shape (16, K, {C}) with K >= 1, got {checks.format_shape(u.shape)}")
    checks.contiguous(fn, backend, {"x": x, "u": u} if backend == "cpu" else {"x": x})
    return u.shape[1]


def one_pass_available(backend, width):
    """Whether `backend` has the one-pass kernel for images `width` pixels wide: the cpu backend, built with
    the micro-kernel's SIMD tile (without it the 16 products are faster in BLAS), a tile row fitting one of
    its panels (width <= 128 in AVX-512)."""
    if backend != "cpu":
        return False
    ext = extension("cpu")
    return ext.gemm_simd and width <= ext.winograd_conv_max_width


register("winograd_conv", check_winograd_conv, numpy=functools.partial(_conv_steps, backend="numpy"),
         cpu=_conv_cpu, cuda=functools.partial(_conv_steps, backend="cuda"))
register("winograd_conv_backward", check_winograd_conv_backward,
         numpy=functools.partial(_conv_backward_steps, backend="numpy"), cpu=_conv_backward_cpu,
         cuda=functools.partial(_conv_backward_steps, backend="cuda"))
