"""Fused Adam step + EMA of the weights: the NumPy reference (the oracle) and the dispatch to the kernels.

Adam (Kingma & Ba 2015, Alg. 1) with both bias corrections folded into two scalars (the end of their
Sec. 2), then the EMA of the weights of App. B of Ho et al. 2020, in place, per element:

    m   <- b1 m + (1 - b1) g
    v   <- b2 v + (1 - b2) g^2
    p   <- p - step_size m / (sqrt(v) + eps_hat)     step_size = lr sqrt(1 - b2^t) / (1 - b1^t)
                                                     eps_hat   = eps sqrt(1 - b2^t)
    ema <- d ema + (1 - d) p                         (the new p)

Shapes: p, g, m, v, ema one shape (any), one dtype: float32 (every backend) or float64 (numpy and cpu);
C-contiguous on cpu and cuda. p, m, v and ema are updated in place; g is only read. The scalars are taken
as Python floats, rounded once to the data's dtype, as the plain path of pyddpm/train/optim.py (Adam.step then
EMA.update) rounds them; the reference takes the same steps in the same order, so the fused kernels
(csrc/kernels/adam_ema.cuh, csrc/cpu/adam_ema.cpp, csrc/cuda/adam_ema.cu) give its numbers bit for bit.
The fused pass reads 5 and writes 4 numbers per parameter; the plain path moves about 30.
"""

import math

import numpy as np

from pyddpm.ops import array_module
from pyddpm.ops.backend import extension, resolve
from pyddpm.ops.cuda_args import device_ptr, stream_ptr

_ARRAYS = ("p", "g", "m", "v", "ema")


def check_adam_args(fn, arrays, step_size, eps_hat, beta1, beta2, ema_decay):
    """The checks every backend makes: one float dtype and one shape for all five arrays (TypeError,
    ValueError naming the argument), finite scalars with 0 <= beta < 1 and 0 <= ema_decay <= 1 (ValueError)."""
    p = arrays["p"]
    if p.dtype not in (np.float32, np.float64):
        raise TypeError(f"{fn}: p must be float32 or float64, got {p.dtype}")
    for name in _ARRAYS[1:]:
        a = arrays[name]
        if a.dtype != p.dtype:
            raise TypeError(f"{fn}: {name} must be {p.dtype} like p, got {a.dtype}")
        if a.shape != p.shape:
            raise ValueError(f"{fn}: {name} must have the shape of p {p.shape}, got {a.shape}")
    for name, value in (("step_size", step_size), ("eps_hat", eps_hat)):
        if not math.isfinite(value):
            raise ValueError(f"{fn}: {name} must be finite, got {value}")
    for name, value in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{fn}: {name} must lie in [0, 1), got {value}")
    if not 0.0 <= ema_decay <= 1.0:
        raise ValueError(f"{fn}: ema_decay must lie in [0, 1], got {ema_decay}")


def adam_ema(p, g, m, v, ema, step_size, eps_hat, beta1, beta2, ema_decay, backend=None):
    """One Adam step on p (with its moments m, v) from the gradient g, then ema <- d ema + (1 - d) p; in place
    on p, m, v, ema. See the module docstring for the math, shapes and dtypes.

    backend: "numpy" | "cpu" | "cuda" | None (the run's default, see pyddpm.ops.backend).
    """
    backend = resolve(backend)
    scalars = (step_size, eps_hat, beta1, beta2, ema_decay)
    if backend == "numpy":
        return adam_ema_reference(p, g, m, v, ema, *scalars)
    check_adam_args("adam_ema", dict(p=p, g=g, m=m, v=v, ema=ema), *scalars)
    if backend == "cpu":
        extension("cpu").adam_ema(p, g, m, v, ema, *map(float, scalars))
    else:
        f32, fn = np.float32, "adam_ema"
        ptrs = [device_ptr(fn, name, a, f32, p.shape) for name, a in zip(_ARRAYS, (p, g, m, v, ema))]
        extension("cuda").adam_ema(*ptrs, p.size, *map(float, scalars), stream_ptr())


def adam_ema_reference(p, g, m, v, ema, step_size, eps_hat, beta1, beta2, ema_decay):
    """The NumPy reference of adam_ema (also runs on CuPy arrays): in place, the plain path's operations."""
    check_adam_args("adam_ema", dict(p=p, g=g, m=m, v=v, ema=ema), step_size, eps_hat, beta1, beta2, ema_decay)
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
