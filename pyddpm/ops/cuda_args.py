"""Checks and raw pointers for calls into pyddpm._cuda: every CuPy array is checked for device, dtype,
contiguity and shape here, before a pointer to it reaches a kernel."""

import numpy as np


def device_ptr(fn, name, a, dtype, shape):
    """The device pointer of CuPy array ``a`` after checking it; -1 in ``shape`` matches any size."""
    import cupy

    if not isinstance(a, cupy.ndarray):
        raise TypeError(f"{fn}: {name} must be a CuPy array for the cuda backend, got {type(a).__name__}")
    if a.device.id != cupy.cuda.Device().id:
        raise ValueError(f"{fn}: {name} is on GPU {a.device.id}, the current device is {cupy.cuda.Device().id}")
    if a.dtype != dtype:
        raise TypeError(f"{fn}: {name} must be {np.dtype(dtype)}, got {a.dtype}")  # float32, not <class ...>
    if not a.flags.c_contiguous:
        raise TypeError(f"{fn}: {name} must be C-contiguous (use cupy.ascontiguousarray)")
    if a.ndim != len(shape) or any(s >= 0 and s != n for s, n in zip(shape, a.shape)):
        want = "(" + ", ".join("*" if s < 0 else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ValueError(f"{fn}: {name} must have shape {want}, got {a.shape}")
    return a.data.ptr


def stream_ptr():
    import cupy

    return cupy.cuda.get_current_stream().ptr
