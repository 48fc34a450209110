"""Fused Adam step + EMA of the weights: the NumPy reference (the oracle) and the dispatch to the kernels.

Adam (Kingma & Ba 2015, Alg. 1) with both bias corrections folded into two scalars (the end of their
Sec. 2), then the EMA of the weights of App. B of Ho et al. 2020, in place, per element:

    m   <- b1 m + (1 - b1) g
    v   <- b2 v + (1 - b2) g^2
    p   <- p - step_size m / (sqrt(v) + eps_hat)     step_size = lr sqrt(1 - b2^t) / (1 - b1^t)
                                                     eps_hat   = eps sqrt(1 - b2^t)
    ema <- d ema + (1 - d) p                         (the new p)

Shapes: p, g, m, v, ema one shape (any), one dtype: float32 (every backend) or float64 (numpy and cpu);
C-contiguous on cpu and cuda. p, m, v and ema are updated in place (writeable); g is only read; no two of
the five may share memory (every backend refuses, rather than give an order-dependent answer). The scalars are taken
as Python floats, rounded once to the data's dtype, as the plain path of pyddpm/nn/optim.py (Adam.step then
EMA.update) rounds them; the reference takes the same steps in the same order, so the fused kernels
(csrc/kernels/adam_ema.cuh, csrc/cpu/adam_ema.cpp, csrc/cuda/adam_ema.cu) give its numbers bit for bit.
The fused pass reads 5 and writes 4 numbers per parameter; the plain path moves about 30.
"""

import math

from pyddpm.arrays import array_module
from pyddpm.ops import aliasing, checks
from pyddpm.ops.backend import extension
from pyddpm.ops.cuda_args import Arg, launch
from pyddpm.ops.registry import dispatch, register

_ARRAYS = ("p", "g", "m", "v", "ema")


def check_adam_ema(backend, p, g, m, v, ema, step_size, eps_hat, beta1, beta2, ema_decay):
    """adam_ema's arguments, on every backend: p, g, m, v, ema of one float dtype and one shape (TypeError,
    ValueError naming the argument), C-contiguous on cpu and cuda; p, m, v, ema writeable; no two of the five
    sharing memory (each is read and written once per element, so an alias would see another's update);
    finite real scalars with 0 <= beta < 1 and 0 <= ema_decay <= 1 (ValueError)."""
    fn = "adam_ema"
    if aliasing.plainly_disjoint(backend, (p, g, m, v, ema), (0, 2, 3, 4)) and _plain_scalars(
            step_size, eps_hat, beta1, beta2, ema_decay):
        return
    arrays = dict(zip(_ARRAYS, (p, g, m, v, ema)))
    checks.float_array(fn, backend, "p", p)
    for name in _ARRAYS[1:]:
        checks.float_array(fn, backend, name, arrays[name], p, "p")
        checks.same_shape(fn, name, arrays[name], p, "p")
    checks.contiguous(fn, backend, arrays)
    aliasing.writeable(fn, {name: arrays[name] for name in ("p", "m", "v", "ema")})
    aliasing.disjoint(fn, arrays)
    for name, value in (("beta1", beta1), ("beta2", beta2), ("ema_decay", ema_decay)):
        checks.real(fn, name, value)
    checks.finite(fn, "step_size", step_size)
    checks.finite(fn, "eps_hat", eps_hat)
    for name, value in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{fn}: {name} must lie in [0, 1), got {value}")
    if not 0.0 <= ema_decay <= 1.0:
        raise ValueError(f"{fn}: ema_decay must lie in [0, 1], got {ema_decay}")


def _plain_scalars(step_size, eps_hat, beta1, beta2, ema_decay):
    """True when the scalars are Python floats in range (the optimiser's own values); False says nothing."""
    if not all(type(x) is float for x in (step_size, eps_hat, beta1, beta2, ema_decay)):
        return False
    return (math.isfinite(step_size) and math.isfinite(eps_hat) and 0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0
            and 0.0 <= ema_decay <= 1.0)


def adam_ema(p, g, m, v, ema, step_size, eps_hat, beta1, beta2, ema_decay, backend=None):
    """One Adam step on p (with its moments m, v) from the gradient g, then ema <- d ema + (1 - d) p; in place
    on p, m, v, ema. See the module docstring for the math, shapes and dtypes.

    backend: "numpy" | "cpu" | "cuda" | None (the run's default, see pyddpm.ops.backend).
    """
    dispatch("adam_ema", backend, p, g, m, v, ema, step_size, eps_hat, beta1, beta2, ema_decay)


def adam_ema_reference(p, g, m, v, ema, step_size, eps_hat, beta1, beta2, ema_decay):
    """The NumPy reference of adam_ema (also runs on CuPy arrays): in place, the plain path's operations."""
    check_adam_ema("reference", p, g, m, v, ema, step_size, eps_hat, beta1, beta2, ema_decay)
    # Python floats, so NumPy rounds them to p's dtype (a NumPy float64 scalar would lift the math to float64).
    step_size, eps_hat, beta1, beta2, ema_decay = map(float, (step_size, eps_hat, beta1, beta2, ema_decay))
    xp = array_module(p)
    m *= beta1
    m += (1.0 - beta1) * g
    v *= beta2
    v += (1.0 - beta2) * (g * g)
    p -= step_size * m / (xp.sqrt(v) + eps_hat)
    ema *= ema_decay
    ema += (1.0 - ema_decay) * p


def _adam_ema_cpu(p, g, m, v, ema, *scalars):
    extension("cpu").adam_ema(p, g, m, v, ema, *map(float, scalars))


def _adam_ema_cuda(p, g, m, v, ema, *scalars):
    launch("adam_ema", *(Arg(name, a, p.shape) for name, a in zip(_ARRAYS, (p, g, m, v, ema))), p.size,
           *map(float, scalars))


register("adam_ema", check_adam_ema, numpy=adam_ema_reference, cpu=_adam_ema_cpu, cuda=_adam_ema_cuda)
