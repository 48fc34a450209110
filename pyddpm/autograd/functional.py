"""The small ops the U-Net needs besides convolution, normalisation and attention.

silu (the paper's "swish"), inverted dropout, nearest-neighbour 2x upsampling, and the dense layer.
"""

from pyddpm.autograd.tensor import Tensor, as_tensor
from pyddpm.arrays import sigmoid


def silu(x):
    """x * sigmoid(x); d/dx = s (1 + x (1 - s))."""
    x = as_tensor(x)
    s = sigmoid(x.data)
    return Tensor.from_op(x.data * s, (x,), lambda g: (g * s * (1.0 + x.data * (1.0 - s)),))


def dropout(x, rate, rng):
    """Inverted dropout: zero a fraction ``rate`` of entries and scale the rest by 1/(1-rate).

    ``rng`` is a numpy Generator, so a run (and its resume) draws the same masks.
    """
    x = as_tensor(x)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
    if rate == 0.0:
        return x
    keep = rng.random(x.shape) >= rate
    mask = x.xp.asarray(keep, dtype=x.dtype) * x.dtype.type(1.0 / (1.0 - rate))
    return Tensor.from_op(x.data * mask, (x,), lambda g: (g * mask,))


def upsample_nearest2x(x):
    """(B, C, H, W) -> (B, C, 2H, 2W), each pixel copied into a 2x2 block; the backward sums each block.

    Both directions move whole rows where they can: np.repeat along each axis, and the backward adds the
    block's two rows (contiguous) before its two columns. A reduction over the size-2 axes of a
    (B, C, H, 2, W, 2) view, or a broadcast copy into one, took 3-14x longer (benchmarks/RESULTS.md).
    """
    x = as_tensor(x)
    B, C, H, W = x.shape
    out = x.xp.repeat(x.xp.repeat(x.data, 2, axis=3), 2, axis=2)

    def backward(g):
        rows = g.reshape(B, C, H, 2, 2 * W)
        pairs = (rows[:, :, :, 0] + rows[:, :, :, 1]).reshape(B, C, H, W, 2)
        return (pairs[..., 0] + pairs[..., 1],)
    return Tensor.from_op(out, (x,), backward)


def linear(x, w, bias=None):
    """Dense layer: x (B, in) @ w (in, out) + bias (out,)."""
    x, w = as_tensor(x), as_tensor(w)
    out = x @ w
    return out if bias is None else out + bias
