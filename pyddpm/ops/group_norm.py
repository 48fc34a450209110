"""GroupNorm with an optional fused SiLU: the NumPy reference (the oracle for the fused kernels).

Forward, for x of shape (B, C, H, W) split into G groups of C/G channels:
    mean, var  over each (sample, group)            two passes: var = mean((x - mean)^2), never E[x^2]-E[x]^2
    z = (x - mean) * rstd * gamma + beta             rstd = 1 / sqrt(var + eps)
    y = z            (silu=False)
    y = z * sigmoid(z) (silu=True: the "normalize then swish" that opens every DDPM residual block)
Shapes: x (B, C, H, W); gamma, beta (C,); mean, rstd (B, G) are saved for the backward.
"""

from pyddpm.ops import array_module

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


def group_norm(x, gamma, beta, num_groups, silu=False, eps=EPS):
    """Returns (y, mean, rstd): y like x; mean and rstd of shape (B, G) for the backward."""
    _check(x, gamma, beta, num_groups)
    B, C = x.shape[:2]
    xg = x.reshape(B, num_groups, -1)
    mean = xg.mean(axis=2)
    xc = xg - mean[:, :, None]
    rstd = 1.0 / (array_module(x).sqrt((xc * xc).mean(axis=2) + eps))
    z = (xc * rstd[:, :, None]).reshape(x.shape) * gamma[:, None, None] + beta[:, None, None]
    y = z * sigmoid(z) if silu else z
    return y, mean, rstd


def group_norm_backward(dy, x, gamma, beta, mean, rstd, num_groups, silu=False):
    """Gradients (dx, dgamma, dbeta) of group_norm's y, given dy (B, C, H, W) and the saved mean, rstd.

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
