"""The discretized Gaussian decoder (Eq. 13, Ho et al. 2020) as an autograd op.

Gradients flow to ``means`` and, when they are a Tensor, to ``log_scales``: a fixed reverse variance
(sigma_t^2 = beta_t or beta-tilde_t) passes them as an array, a learned one (Nichol & Dhariwal 2021) as the
network's output. Forward and gradients come from pyddpm.likelihood, which computes both in float64 with a
stable log-CDF. Shapes: x, means, log_scales broadcast together; the result has x's shape.
"""

from pyddpm import likelihood
from pyddpm.autograd.arithmetic import unbroadcast
from pyddpm.autograd.tensor import Tensor, as_tensor


def discretized_gaussian_log_likelihood(x, means, log_scales):
    means = as_tensor(means)
    x_data = x.data if isinstance(x, Tensor) else x
    learned = isinstance(log_scales, Tensor)
    s_data = log_scales.data if learned else log_scales
    out = likelihood.discretized_gaussian_log_likelihood(x_data, means.data, s_data)

    def backward(g):
        dmeans, dscales = likelihood.discretized_gaussian_log_likelihood_grad(x_data, means.data, s_data)
        grads = (unbroadcast(g * dmeans.astype(g.dtype, copy=False), means.shape),)
        if learned:
            grads += (unbroadcast(g * dscales.astype(g.dtype, copy=False), log_scales.shape),)
        return grads
    return Tensor.from_op(out, (means, log_scales) if learned else (means,), backward)
