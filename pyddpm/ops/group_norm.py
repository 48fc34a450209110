"""GroupNorm with an optional fused SiLU: the NumPy reference (the oracle) and the dispatch to the kernels.

Forward, for x of shape (B, C, H, W) split into G groups of C/G channels:
    mean, var  over each (sample, group)            two passes: var = mean((x - mean)^2), never E[x^2]-E[x]^2
    z = (x - mean) * rstd * gamma + beta             rstd = 1 / sqrt(var + eps)
    y = z            (silu=False)
    y = z * sigmoid(z) (silu=True: the "normalize then swish" that opens every DDPM residual block)
Shapes: x (B, C, H, W); gamma, beta (C,); mean, rstd (B, G) are saved for the backward. Every array of a call
in one dtype: float32 (every backend) or float64 (numpy and cpu); C-contiguous on cpu and cuda. num_groups
>= 1 divides C; eps is finite and >= 0. The dispatch functions check all of it first, on every backend.
The fused kernels: csrc/kernels/group_norm.cuh (math), csrc/cpu/group_norm.cpp, csrc/cuda/group_norm.cu.
"""


from pyddpm.arrays import array_module, sigmoid
from pyddpm.ops import checks
from pyddpm.ops.cuda_args import Arg, empty, launch
from pyddpm.ops.registry import dispatch, register

EPS = 1e-6  # tf.contrib.layers.group_norm's epsilon, as in the official DDPM code


def check_group_norm(backend, x, gamma, beta, num_groups, silu, eps):
    """group_norm's arguments, on every backend: x float (B, C, H, W) of positive sizes; gamma, beta (C,) in
    x's dtype; num_groups >= 1 dividing C; silu a bool; eps finite and >= 0; C-contiguous on cpu and cuda.
    Returns the arguments with num_groups as an int."""
    G = _check_layer("group_norm", backend, x, gamma, beta, num_groups, silu)
    if checks.finite("group_norm", "eps", eps) < 0:
        raise ValueError(f"group_norm: eps must be >= 0, got {eps}")
    return x, gamma, beta, G, silu, eps


def check_group_norm_backward(backend, dy, x, gamma, beta, mean, rstd, num_groups, silu):
    """group_norm_backward's arguments: group_norm's (but eps), dy of x's shape, mean and rstd (B, G), all in
    x's dtype; C-contiguous on cpu and cuda. Returns the arguments with num_groups as an int."""
    fn = "group_norm_backward"
    G = _check_layer(fn, backend, x, gamma, beta, num_groups, silu)
    checks.float_array(fn, backend, "dy", dy, x, "x")
    checks.shape(fn, "dy", dy, x.shape)
    for name, a in (("mean", mean), ("rstd", rstd)):
        checks.float_array(fn, backend, name, a, x, "x")
        checks.shape(fn, name, a, (x.shape[0], G))
    checks.contiguous(fn, backend, {"dy": dy, "mean": mean, "rstd": rstd})
    return dy, x, gamma, beta, mean, rstd, G, silu


def _check_layer(fn, backend, x, gamma, beta, num_groups, silu):
    """x, gamma, beta, num_groups and silu, as both directions take them; returns num_groups as an int."""
    C = checks.image(fn, backend, "x", x)[1]
    for name, p in (("gamma", gamma), ("beta", beta)):
        checks.float_array(fn, backend, name, p, x, "x")
        checks.shape(fn, name, p, (C,))
    G = checks.integer(fn, "num_groups", num_groups, 1)
    if C % G:
        raise ValueError(f"{fn}: {C} channels do not split into {G} groups")
    checks.flag(fn, "silu", silu)
    checks.contiguous(fn, backend, {"x": x, "gamma": gamma, "beta": beta})
    return G


def group_norm(x, gamma, beta, num_groups, silu=False, eps=EPS, backend=None):
    """Returns (y, mean, rstd): y like x; mean and rstd of shape (B, G) for the backward.

    backend: "numpy" | "cpu" | "cuda" | None (the run's default, see pyddpm.ops.backend).
    """
    return dispatch("group_norm", backend, x, gamma, beta, num_groups, silu, eps)


def group_norm_backward(dy, x, gamma, beta, mean, rstd, num_groups, silu=False, backend=None):
    """Gradients (dx, dgamma, dbeta) of group_norm's y, given dy (B, C, H, W) and the saved mean, rstd."""
    return dispatch("group_norm_backward", backend, dy, x, gamma, beta, mean, rstd, num_groups, silu)


def group_norm_reference(x, gamma, beta, num_groups, silu=False, eps=EPS):
    """The NumPy reference of group_norm (also runs on CuPy arrays)."""
    num_groups = check_group_norm("reference", x, gamma, beta, num_groups, silu, eps)[3]
    eps = float(eps)  # a Python float: NumPy rounds it to x's dtype (a NumPy float64 would lift float32 math)
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
    num_groups = check_group_norm_backward("reference", dy, x, gamma, beta, mean, rstd, num_groups, silu)[6]
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
    B, C, H, W = x.shape
    y, mean, rstd = empty(x.shape), empty((B, num_groups)), empty((B, num_groups))
    launch("group_norm", Arg("x", x, x.shape), Arg("gamma", gamma, (C,)), Arg("beta", beta, (C,)), y.data.ptr,
           mean.data.ptr, rstd.data.ptr, B, C, H * W, num_groups, silu, eps)
    return y, mean, rstd


def _group_norm_backward_cuda(dy, x, gamma, beta, mean, rstd, num_groups, silu):
    B, C, H, W = x.shape
    G = num_groups
    dx, dgamma, dbeta = empty(x.shape), empty(C), empty(C)
    dgamma_part, dbeta_part = empty((B, C)), empty((B, C))  # per-sample partial sums, reduced by the kernel
    launch("group_norm_backward", Arg("dy", dy, x.shape), Arg("x", x, x.shape), Arg("gamma", gamma, (C,)),
           Arg("beta", beta, (C,)), Arg("mean", mean, (B, G)), Arg("rstd", rstd, (B, G)), dx.data.ptr,
           dgamma.data.ptr, dbeta.data.ptr, dgamma_part.data.ptr, dbeta_part.data.ptr, B, C, H * W, G, silu)
    return dx, dgamma, dbeta


register("group_norm", check_group_norm, numpy=group_norm_reference, cuda=_group_norm_cuda)
register("group_norm_backward", check_group_norm_backward, numpy=group_norm_backward_reference,
         cuda=_group_norm_backward_cuda)
