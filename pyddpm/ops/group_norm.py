"""GroupNorm with an optional fused SiLU: the NumPy reference (the oracle) and the dispatch to the kernels.

Forward, for x of shape (B, C, H, W) split into G groups of C/G channels:
    mean, var  over each (sample, group)            two passes: var = mean((x - mean)^2), never E[x^2]-E[x]^2
    z = (x - mean) * rstd * gamma + beta             rstd = 1 / sqrt(var + eps)
    y = z            (silu=False)
    y = z * sigmoid(z) (silu=True: the "normalize then swish" that opens every DDPM residual block)
Shapes: x (B, C, H, W); gamma, beta (C,); mean, rstd (B, G) are saved for the backward.
The fused kernels: csrc/kernels/group_norm.cuh (math), csrc/cpu/group_norm.cpp, csrc/cuda/group_norm.cu.
"""

import numpy as np

from pyddpm.ops import array_module
from pyddpm.ops.backend import extension, resolve
from pyddpm.ops.cuda_args import device_ptr, stream_ptr

EPS = 1e-6  # tf.contrib.layers.group_norm's epsilon, as in the official DDPM code


def sigmoid(z):
    """Logistic function without overflow for large |z| (tanh saturates instead of exp overflowing)."""
    xp = array_module(z)
    return 0.5 * (1.0 + xp.tanh(0.5 * z))


def _check(x, gamma, beta, num_groups):
    if x.ndim != 4:
        raise ValueError(f"group_norm: x must be (B, C, H, W), got shape {x.shape}")
    C = x.shape[1]
    if num_groups < 1 or C % num_groups:
        raise ValueError(f"group_norm: {C} channels do not split into {num_groups} groups")
    for name, p in (("gamma", gamma), ("beta", beta)):
        if p.shape != (C,):
            raise ValueError(f"group_norm: {name} must have shape ({C},), got {p.shape}")


def group_norm(x, gamma, beta, num_groups, silu=False, eps=EPS, backend=None):
    """Returns (y, mean, rstd): y like x; mean and rstd of shape (B, G) for the backward.

    backend: "numpy" | "cpu" | "cuda" | None (the run's default, see pyddpm.ops.backend).
    """
    backend = resolve(backend)
    if backend == "cpu":
        return extension("cpu").group_norm(x, gamma, beta, num_groups, silu, eps)
    if backend == "cuda":
        return _group_norm_cuda(x, gamma, beta, num_groups, silu, eps)
    return group_norm_reference(x, gamma, beta, num_groups, silu, eps)


def group_norm_backward(dy, x, gamma, beta, mean, rstd, num_groups, silu=False, backend=None):
    """Gradients (dx, dgamma, dbeta) of group_norm's y, given dy (B, C, H, W) and the saved mean, rstd."""
    backend = resolve(backend)
    if backend == "cpu":
        return extension("cpu").group_norm_backward(dy, x, gamma, beta, mean, rstd, num_groups, silu)
    if backend == "cuda":
        return _group_norm_backward_cuda(dy, x, gamma, beta, mean, rstd, num_groups, silu)
    return group_norm_backward_reference(dy, x, gamma, beta, mean, rstd, num_groups, silu)


def group_norm_reference(x, gamma, beta, num_groups, silu=False, eps=EPS):
    """The NumPy reference of group_norm."""
    _check(x, gamma, beta, num_groups)
    B, C = x.shape[:2]
    xg = x.reshape(B, num_groups, -1)
    mean = xg.mean(axis=2)
    xc = xg - mean[:, :, None]
    rstd = 1.0 / (array_module(x).sqrt((xc * xc).mean(axis=2) + eps))
    z = (xc * rstd[:, :, None]).reshape(x.shape) * gamma[:, None, None] + beta[:, None, None]
    y = z * sigmoid(z) if silu else z
    return y, mean, rstd


def group_norm_backward_reference(dy, x, gamma, beta, mean, rstd, num_groups, silu=False):
    """The NumPy reference of group_norm_backward.

    With xhat = (x - mean) * rstd and dxhat = dz * gamma, per (sample, group) of n elements:
        dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    and through the fused SiLU, dz = dy * s * (1 + z (1 - s)) with s = sigmoid(z).
    """
    _check(x, gamma, beta, num_groups)
    B, C = x.shape[:2]
    xhat = ((x.reshape(B, num_groups, -1) - mean[:, :, None]) * rstd[:, :, None]).reshape(x.shape)
    if silu:
        z = xhat * gamma[:, None, None] + beta[:, None, None]
        s = sigmoid(z)
        dz = dy * s * (1.0 + z * (1.0 - s))
    else:
        dz = dy
    dgamma = (dz * xhat).sum(axis=(0, 2, 3))
    dbeta = dz.sum(axis=(0, 2, 3))
    dxhat = (dz * gamma[:, None, None]).reshape(B, num_groups, -1)
    xhat_g = xhat.reshape(B, num_groups, -1)
    dx = rstd[:, :, None] * (dxhat - dxhat.mean(axis=2, keepdims=True)
                             - xhat_g * (dxhat * xhat_g).mean(axis=2, keepdims=True))
    return dx.reshape(x.shape), dgamma, dbeta


def _group_norm_cuda(x, gamma, beta, num_groups, silu, eps):
    import cupy

    fn, f32 = "group_norm", np.float32
    _check(x, gamma, beta, num_groups)
    B, C, H, W = x.shape
    y = cupy.empty_like(x)
    mean, rstd = cupy.empty((B, num_groups), f32), cupy.empty((B, num_groups), f32)
    extension("cuda").group_norm(device_ptr(fn, "x", x, f32, (-1, -1, -1, -1)), device_ptr(fn, "gamma", gamma, f32, (C,)),
                                 device_ptr(fn, "beta", beta, f32, (C,)), y.data.ptr, mean.data.ptr, rstd.data.ptr,
                                 B, C, H * W, num_groups, silu, eps, stream_ptr())
    return y, mean, rstd


def _group_norm_backward_cuda(dy, x, gamma, beta, mean, rstd, num_groups, silu):
    import cupy

    fn, f32 = "group_norm_backward", np.float32
    _check(x, gamma, beta, num_groups)
    B, C, H, W = x.shape
    G = num_groups
    dx = cupy.empty_like(x)
    dgamma, dbeta = cupy.empty(C, f32), cupy.empty(C, f32)
    parts = cupy.empty((2, B, C), f32)
    extension("cuda").group_norm_backward(
        device_ptr(fn, "dy", dy, f32, x.shape), device_ptr(fn, "x", x, f32, (-1, -1, -1, -1)),
        device_ptr(fn, "gamma", gamma, f32, (C,)), device_ptr(fn, "beta", beta, f32, (C,)),
        device_ptr(fn, "mean", mean, f32, (B, G)), device_ptr(fn, "rstd", rstd, f32, (B, G)),
        dx.data.ptr, dgamma.data.ptr, dbeta.data.ptr, parts[0].data.ptr, parts[1].data.ptr, B, C, H * W, G, silu,
        stream_ptr())
    return dx, dgamma, dbeta
