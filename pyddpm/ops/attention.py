"""Scaled dot-product self-attention: the NumPy reference (the oracle for the fused kernels).

Forward, per (batch, head) over N positions with head dimension d:
    S = q k^T * scale,  P = softmax(S) row-wise,  out = P v
Backward, given dout:
    dv = P^T dout,  dP = dout v^T,  dS = P * (dP - rowsum(dP * P)),  dq = dS k * scale,  dk = dS^T q * scale
Shapes: q, k, v, out (B, heads, N, d); P (B, heads, N, N) is saved for the backward (at N = 256 it is
small enough to keep, and recomputing it would cost another matmul).
"""

from pyddpm.ops import array_module


def _check(q, k, v):
    if q.ndim != 4 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f"attention: q, k, v must share one (B, heads, N, d) shape, got "
                         f"{q.shape}, {k.shape}, {v.shape}")


def attention(q, k, v, scale=None):
    """Returns (out, P). scale defaults to d ** -0.5 (the official DDPM attention block's int(C) ** -0.5)."""
    _check(q, k, v)
    xp = array_module(q)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = (q @ k.swapaxes(-1, -2)) * scale
    s -= s.max(axis=-1, keepdims=True)  # softmax is shift-invariant; this keeps exp from overflowing
    p = xp.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    return p @ v, p


def attention_backward(dout, q, k, v, p, scale=None):
    """Gradients (dq, dk, dv) of attention's out, given dout and the saved probabilities P."""
    _check(q, k, v)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    dv = p.swapaxes(-1, -2) @ dout
    dp = dout @ v.swapaxes(-1, -2)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    dq = (ds @ k) * scale
    dk = (ds.swapaxes(-1, -2) @ q) * scale
    return dq, dk, dv
