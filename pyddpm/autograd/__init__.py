"""Autograd-lite: a Tensor that records a tape, and one forward + one backward function per op.

Every op here is gradient-checked against central finite differences in float64 (tests/test_autograd.py).
"""

from pyddpm.autograd import arithmetic  # noqa: F401  (installs Tensor's operators)
from pyddpm.autograd.arithmetic import concat, unbroadcast
from pyddpm.autograd.attention import attention
from pyddpm.autograd.classification import cross_entropy
from pyddpm.autograd.conv import conv2d
from pyddpm.autograd.functional import dropout, linear, silu, upsample_nearest2x
from pyddpm.autograd.likelihood import discretized_gaussian_log_likelihood
from pyddpm.autograd.norm import group_norm
from pyddpm.autograd.tensor import Tensor, as_tensor, is_grad_enabled, no_grad

__all__ = [
    "Tensor", "as_tensor", "no_grad", "is_grad_enabled", "unbroadcast", "concat", "conv2d", "group_norm",
    "attention", "silu", "dropout", "upsample_nearest2x", "linear", "discretized_gaussian_log_likelihood",
    "cross_entropy",
]
