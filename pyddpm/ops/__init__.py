"""The kernel layer: the only place that knows which array library (backend) runs the math.

Everything above this layer writes ``xp = array_module(x)`` and uses ``xp`` in place of numpy, so the
same code runs on NumPy arrays (CPU) and CuPy arrays (GPU) without naming either.
"""

import numpy as np


def array_module(*arrays):
    """Return the array library (numpy or cupy) that owns ``arrays``; numpy for plain Python values."""
    for a in arrays:
        mod = type(a).__module__
        if mod.startswith("cupy"):
            import cupy  # only imported when a CuPy array is actually passed in

            return cupy
    return np
