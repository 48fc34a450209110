"""The discretized Gaussian decoder (Eq. 13, Ho et al. 2020) as an autograd op.

Gradients flow to ``means`` only: in this package the reverse-process variances are fixed
(sigma_t^2 = beta_t or beta-tilde_t), so log_scales are constants. Forward and gradient come from
pyddpm.likelihood, which computes both in float64 with a stable log-CDF.
Shapes: x, means, log_scales broadcast together; the result has x's shape.
"""

from pyddpm import likelihood
from pyddpm.autograd.arithmetic import unbroadcast
from pyddpm.autograd.tensor import Tensor, as_tensor


def discretized_gaussian_log_likelihood(x, means, log_scales):
    means = as_tensor(means)
    x_data = x.data if isinstance(x, Tensor) else x
    s_data = log_scales.data if isinstance(log_scales, Tensor) else log_scales
    out = likelihood.discretized_gaussian_log_likelihood(x_data, means.data, s_data)

    def backward(g):
        dmeans, _ = likelihood.discretized_gaussian_log_likelihood_grad(x_data, means.data, s_data)
        return (unbroadcast(g * dmeans.astype(g.dtype, copy=False), means.shape),)
    return Tensor.from_op(out, (means,), backward)
