"""Array-library helpers every layer shares; the bottom of the package (it imports nothing from pyddpm).

Code above the kernels writes ``xp = array_module(x)`` and uses ``xp`` in place of numpy, so the same code
runs on NumPy arrays (CPU) and CuPy arrays (GPU) without naming either. The diffusion's coefficient tables
are float64 NumPy arrays of shape (T,) indexed by a per-sample timestep t of shape (B,); ``gather`` is the
one way a table meets a batch, for the diffusion layer and the kernels' references alike.
"""

import sys

import numpy as np


def array_module(*arrays):
    """Return the array library (numpy or cupy) that owns ``arrays``; numpy for plain Python values."""
    for a in arrays:
        if type(a).__module__.startswith("cupy"):
            import cupy  # only imported when a CuPy array is actually passed in

            return cupy
    return np


def library(a):
    """"numpy", "cupy" or None: the array library that owns ``a`` (None for anything else). A NumPy scalar
    (np.float32(1.0)) counts as NumPy's 0-d array, so its rank, not its type, is what a check refuses.
    CuPy is looked up, never imported: a CuPy array exists only once CuPy is."""
    if isinstance(a, (np.ndarray, np.generic)):
        return "numpy"
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(a, cupy.ndarray):
        return "cupy"
    return None


def to_host(a):
    """``a`` as a NumPy array: a CuPy array is copied to the host (the one place arrays leave the GPU)."""
    return a.get() if type(a).__module__.startswith("cupy") else np.asarray(a)


def gather(table, t, x):
    """table[t] as (B, 1, ..., 1) in x's dtype on x's array module: gathered on the host in float64 (the
    tables are NumPy arrays) and rounded once. table: float64 (T,); t: int (B,) indices 0..T-1 (host or
    device); x: (B, ...), the array the coefficients will multiply."""
    coef = table[to_host(t)].reshape((-1,) + (1,) * (len(x.shape) - 1)).astype(x.dtype)
    return array_module(x).asarray(coef)


def sigmoid(z):
    """The logistic function without overflow for large |z| (tanh saturates where exp would overflow)."""
    return 0.5 * (1.0 + array_module(z).tanh(0.5 * z))
