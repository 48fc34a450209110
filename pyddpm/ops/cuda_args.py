"""Calls into pyddpm._cuda: every CuPy array is checked for device, dtype, contiguity and shape here, before
a pointer to it reaches a kernel, and outputs are allocated here."""

from typing import NamedTuple

import numpy as np

from pyddpm.ops.backend import extension


class Arg(NamedTuple):
    """An array argument of a launch: checked by device_ptr, passed as its device pointer (None: null)."""
    name: str
    array: object
    shape: tuple
    dtype: type = np.float32


def launch(fn, *args):
    """pyddpm._cuda.<fn>(*args, stream): each Arg becomes a checked device pointer, every other argument (an
    output's pointer, a size, a flag) is passed as it is, and the current stream comes last."""
    values = [(0 if a.array is None else device_ptr(fn, a.name, a.array, a.dtype, a.shape)) if isinstance(a, Arg)
              else a for a in args]
    getattr(extension("cuda"), fn)(*values, stream_ptr())


def empty(shape, dtype=np.float32):
    """A new uninitialised CuPy array for a kernel's output."""
    import cupy

    return cupy.empty(shape, dtype)


def to_device(a):
    """``a`` as a CuPy array on the current device (a host table is copied; a device array is kept)."""
    import cupy

    return cupy.asarray(a)


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
