"""The cross-entropy of a classifier's logits against integer labels, as one autograd op.

-log softmax(z)_y = logsumexp(z) - z_y per sample; its gradient with respect to z is softmax(z) - onehot(y).
The log-sum-exp subtracts each row's maximum first, so no exp overflows.
"""

import numpy as np

from pyddpm.arrays import array_module
from pyddpm.autograd.tensor import Tensor, as_tensor


def log_softmax(z):
    """log softmax over the last axis of the array z (B, K), computed stably; an array like z."""
    xp = array_module(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def cross_entropy(logits, labels):
    """Per-sample -log p(y | x) (B,) from logits (B, K) (a Tensor or array) and int labels (B,) in 0..K-1."""
    logits = as_tensor(logits)
    labels = np.asarray(labels)
    if logits.data.ndim != 2 or labels.shape != logits.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"cross_entropy: logits (B, K) and int labels (B,), got {logits.shape} and "
                         f"{labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"cross_entropy: labels must be in 0..{logits.shape[1] - 1}, got {labels.min()}.."
                         f"{labels.max()}")
    xp = logits.xp
    rows, cols = xp.arange(labels.shape[0]), xp.asarray(labels)
    log_p = log_softmax(logits.data)

    def backward(g):
        d = xp.exp(log_p)
        d[rows, cols] -= 1.0
        return (g[:, None] * d,)
    return Tensor.from_op(-log_p[rows, cols], (logits,), backward)
