"""GroupNorm (optionally fused with SiLU) as an autograd op over the ops-layer kernels.

The kernel pair lives in pyddpm.ops.group_norm: the forward returns the per-(sample, group) mean and
rstd, which the backward reuses instead of recomputing the statistics.
Shapes: x (B, C, H, W), gamma and beta (C,).
"""

from pyddpm.autograd.tensor import Tensor, as_tensor
from pyddpm.ops.group_norm import group_norm as _forward
from pyddpm.ops.group_norm import group_norm_backward as _backward


def group_norm(x, gamma, beta, num_groups, silu=False):
    x, gamma, beta = as_tensor(x), as_tensor(gamma), as_tensor(beta)
    y, mean, rstd = _forward(x.data, gamma.data, beta.data, num_groups, silu=silu)

    def backward(g):
        return _backward(g, x.data, gamma.data, beta.data, mean, rstd, num_groups, silu=silu)
    return Tensor.from_op(y, (x, gamma, beta), backward)
