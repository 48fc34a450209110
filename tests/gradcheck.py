"""One helper that checks any autograd op's gradients against central finite differences (float64).

The op's output is reduced with fixed random weights, L = sum(R * f(x)), so every output element's
gradient is tested, not only their sum. Each input's analytic gradient is compared to
(L(x + h e_i) - L(x - h e_i)) / 2h over every element (inputs here are small).
"""

import numpy as np

from pyddpm.autograd import Tensor


def check_grads(fn, *inputs, h=1e-6, rtol=1e-5, atol=1e-7, wrt=None, seed=0):
    inputs = [np.asarray(x, dtype=np.float64) for x in inputs]
    wrt = range(len(inputs)) if wrt is None else wrt
    tensors = [Tensor(x.copy(), requires_grad=i in wrt) for i, x in enumerate(inputs)]
    out = fn(*tensors)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    (out * weights).sum().backward()

    def loss(arrays):
        return float((fn(*[Tensor(a) for a in arrays]).data * weights).sum())

    for i in wrt:
        numeric = np.zeros_like(inputs[i])
        for idx in np.ndindex(inputs[i].shape):
            plus = [a.copy() for a in inputs]
            minus = [a.copy() for a in inputs]
            plus[i][idx] += h
            minus[i][idx] -= h
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * h)
        analytic = tensors[i].grad
        assert analytic is not None, f"input {i} got no gradient"
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")
