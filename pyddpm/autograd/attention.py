"""Scaled dot-product attention as an autograd op over the ops-layer kernels (pyddpm.ops.attention).

The forward keeps the softmax probabilities P for the backward. Shapes: q, k, v (B, heads, N, d).
"""

from pyddpm.autograd.tensor import Tensor, as_tensor
from pyddpm.ops.attention import attention as _forward
from pyddpm.ops.attention import attention_backward as _backward


def attention(q, k, v, scale=None):
    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    out, p = _forward(q.data, k.data, v.data, scale)
    return Tensor.from_op(out, (q, k, v), lambda g: _backward(g, q.data, k.data, v.data, p, scale))
