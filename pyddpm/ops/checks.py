"""The argument checks every kernel's dispatch function makes before any backend runs.

Each kernel module (pyddpm/ops/<name>.py) has one check function, built from the primitives here and
called first by its dispatch, so the numpy, cpu and cuda backends raise the same error for the same bad
input. Every message starts with the kernel's name ``fn`` and names the argument.

The policy:
- arrays: numpy.ndarray on the numpy and cpu backends (a NumPy scalar counts as a 0-d one), cupy.ndarray on
  cuda (this module never imports CuPy: it looks for it among the loaded modules); the *_reference functions
  ("reference" below) take either; a Python scalar or list is a TypeError;
- data dtypes: float32 or float64 (cuda: float32 only), one dtype across a call's float arrays; float16,
  integers, complex, bool and object arrays are a TypeError;
- shapes and sizes: ValueError;
- contiguity: a backend's requirement, not numpy's: cpu and cuda raise TypeError where their kernels read
  memory as C-contiguous;
- in place: a written array must be writeable and must not overlap another argument where that would change
  the result (ValueError).

Checks cost O(number of arguments): they read flags, shapes, dtypes and data pointers, never elements.
It imports numpy, pyddpm.arrays and pyddpm.ops.aliasing (which arrays share memory: the in-place kernels'
checks) and nothing else from pyddpm.
"""

import math
import numbers

import numpy as np

from pyddpm.arrays import library
from pyddpm.ops.aliasing import identical, overlap

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


_LIBRARY_NAMES = {"numpy": "NumPy", "cupy": "CuPy"}
_LIBRARIES = {"numpy": ("numpy",), "cpu": ("numpy",), "cuda": ("cupy",), "reference": ("numpy", "cupy")}
_FLOAT_DTYPES = {"numpy": (F32, F64), "cpu": (F32, F64), "cuda": (F32,), "reference": (F32, F64)}


def array(fn, backend, name, a, libraries=None):
    """``a`` must be an array of the backend's library (or of one of ``libraries``): else TypeError."""
    if type(a) is np.ndarray and libraries is None and backend != "cuda":
        return  # the common case, decided without a lookup (the checks run on every call of every kernel)
    libraries = libraries or _LIBRARIES[backend]
    if library(a) not in libraries:
        what = " or ".join(_LIBRARY_NAMES[lib] for lib in libraries)
        raise TypeError(f"{fn}: {name} must be a {what} array for the {backend} backend, got {_type_name(a)}")


def _type_name(a):
    t = type(a)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__.split('.')[0]}.{t.__name__}"


def float_array(fn, backend, name, a, like=None, like_name=None):
    """``a`` an array of the backend's library in one of its float dtypes; with ``like``, in like's dtype."""
    array(fn, backend, name, a)
    dtypes = _FLOAT_DTYPES[backend]
    if a.dtype not in dtypes:
        raise TypeError(f"{fn}: {name} must be {' or '.join(d.name for d in dtypes)}, got {a.dtype}")
    if like is not None and a.dtype != like.dtype:
        raise TypeError(f"{fn}: {name} must be {like.dtype} like {like_name}, got {a.dtype}")


def typed_array(fn, backend, name, a, dtype, libraries=None):
    """``a`` an array (of the backend's library, or of ``libraries``) of exactly ``dtype`` (TypeError)."""
    array(fn, backend, name, a, libraries)
    if a.dtype != dtype:
        raise TypeError(f"{fn}: {name} must be {np.dtype(dtype).name}, got {a.dtype}")


def format_shape(shape):
    """A shape as Python prints a tuple, with -1 (any size) shown as *: (2, *, 3), (4,)."""
    parts = ["*" if s < 0 else str(s) for s in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def shape(fn, name, a, want):
    """``a.shape`` must be ``want`` (-1 matches any size): else ValueError."""
    got = a.shape
    if got == want:
        return
    if len(got) != len(want) or any(w >= 0 and w != n for w, n in zip(want, got)):
        raise ValueError(f"{fn}: {name} must have shape {format_shape(want)}, got {format_shape(a.shape)}")


def same_shape(fn, name, a, like, like_name):
    """``a`` must have the shape of ``like`` (ValueError)."""
    if a.shape != like.shape:
        raise ValueError(f"{fn}: {name} must have the shape of {like_name} {format_shape(like.shape)}, "
                         f"got {format_shape(a.shape)}")


def image(fn, backend, name, a, like=None, like_name=None):
    """``a`` a float (B, C, H, W) array of positive sizes; returns its shape."""
    float_array(fn, backend, name, a, like, like_name)
    shape(fn, name, a, (-1, -1, -1, -1))
    if 0 in a.shape:
        raise ValueError(f"{fn}: {name} must be a non-empty (B, C, H, W) array, got shape {format_shape(a.shape)}")
    return tuple(a.shape)


def batch(fn, backend, name, a):
    """``a`` a float (B, ...) array, rank >= 1, not empty; returns B."""
    float_array(fn, backend, name, a)
    if a.ndim < 1 or 0 in a.shape:
        raise ValueError(f"{fn}: {name} must be a non-empty (B, ...) array, got shape {format_shape(a.shape)}")
    return a.shape[0]


def image_shape(fn, name, value):
    """A (B, C, H, W) shape argument: four positive integers; returns them as a tuple of ints."""
    try:
        dims = tuple(value)
    except TypeError:
        raise TypeError(f"{fn}: {name} must be a sequence (B, C, H, W) of integers, "
                        f"got {_type_name(value)}") from None
    if not all(_is_int(n) for n in dims):
        raise TypeError(f"{fn}: {name} must be a sequence (B, C, H, W) of integers, got {value!r}")
    if len(dims) != 4 or any(n < 1 for n in dims):
        raise ValueError(f"{fn}: {name} must be (B, C, H, W) of positive sizes, got {value!r}")
    return tuple(int(n) for n in dims)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def integer(fn, name, value, minimum):
    """An integer argument >= ``minimum``: TypeError for a non-integer (bool included), else ValueError."""
    if type(value) is not int and not _is_int(value):
        raise TypeError(f"{fn}: {name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value}")
    return int(value)


def real(fn, name, value):
    """A real scalar (Python or NumPy, not a bool, not an array): else TypeError. Returns it as a float."""
    if type(value) is float:
        return value
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be a real number, got {value!r}")
    return float(value)


def finite(fn, name, value):
    """A finite real scalar: TypeError for a non-real, ValueError for NaN or inf. Returns it as a float."""
    value = real(fn, name, value)
    if not math.isfinite(value):
        raise ValueError(f"{fn}: {name} must be finite, got {value}")
    return value


def flag(fn, name, value):
    """A bool argument (Python or NumPy): else TypeError (an array's truth value is not a flag)."""
    if value is True or value is False:
        return value
    if not isinstance(value, np.bool_):
        raise TypeError(f"{fn}: {name} must be True or False, got {value!r}")
    return bool(value)


def contiguous(fn, backend, named):
    """On cpu and cuda, each array of ``named`` ({name: array}) must be C-contiguous (TypeError); numpy
    takes any strides."""
    if backend not in ("cpu", "cuda"):
        return
    for name, a in named.items():
        if not a.flags.c_contiguous:
            lib = "cupy" if backend == "cuda" else "np"
            raise TypeError(f"{fn}: {name} must be C-contiguous (use {lib}.ascontiguousarray)")


def whole_element_strides(fn, backend, named):
    """On cpu, each array of ``named`` must have strides of whole elements (its kernels index by element)."""
    if backend != "cpu":
        return
    for name, a in named.items():
        if a.flags.c_contiguous:
            continue
        if any(s % a.itemsize for s in a.strides):
            raise TypeError(f"{fn}: {name}'s strides must be whole elements, got {a.strides}")


def output(fn, backend, out, like, like_name, inputs):
    """An ``out=`` array: like ``like`` (library, dtype, shape), writeable, C-contiguous on cpu and cuda, and
    either one of ``inputs`` ({name: array}) itself or disjoint from all of them. The row kernels write
    index j of a row after reading index j, which is safe for exact aliasing only."""
    array(fn, backend, "out", out)
    if out.dtype != like.dtype:
        raise TypeError(f"{fn}: out must be {like.dtype} like {like_name}, got {out.dtype}")
    shape(fn, "out", out, like.shape)
    contiguous(fn, backend, {"out": out})
    if library(out) == "numpy" and not out.flags.writeable:
        raise ValueError(f"{fn}: out is read-only; it must be writeable")
    for name, a in inputs.items():
        if not identical(out, a) and overlap(out, a):
            raise ValueError(f"{fn}: out partially overlaps {name} (pass the input itself, or a separate array)")


# --- Checks shared by more than one kernel -------------------------------------------------------------

def bias(fn, backend, b, like, like_name, K):
    """An optional bias: None, or a (K,) vector in like's dtype, C-contiguous on cpu and cuda."""
    if b is not None:
        float_array(fn, backend, "bias", b, like, like_name)
        shape(fn, "bias", b, (K,))
        contiguous(fn, backend, {"bias": b})


def matching_batches(fn, backend, named):
    """{name: array}: float (B, ...) arrays of one shape and dtype, the first of rank >= 1 and not empty,
    C-contiguous on cpu and cuda. Returns B."""
    (first, x), *rest = named.items()
    B = batch(fn, backend, first, x)
    for name, a in rest:
        float_array(fn, backend, name, a, x, first)
        same_shape(fn, name, a, x, first)
    contiguous(fn, backend, named)
    return B


def timestep_args(fn, backend, t, tables, data):
    """The arguments of a kernel indexed by a per-sample timestep (q_sample); returns (B, T).

    data: {name: array}, the first the one the others follow: float (B, ...) of rank >= 1, not empty, all of
    one shape and dtype, C-contiguous on cpu and cuda. tables: {name: array}, float64 (T,) each with one
    T >= 1. t: int64 (B,) with every value in 0..T-1 (the one check that reads elements: B of them, one small
    device-to-host copy on cuda). On cuda, t and the tables may be NumPy or CuPy arrays (copied to the device
    as needed); on cpu they must be C-contiguous like the data.
    """
    B = matching_batches(fn, backend, data)
    host_or_device = ("numpy", "cupy") if backend in ("cuda", "reference") else None
    T = None
    for i, (name, table) in enumerate(tables.items()):
        what = f"{name} (coefficient table {i})"
        typed_array(fn, backend, what, table, F64, host_or_device)
        T = table.shape[0] if T is None and table.ndim == 1 else T
        if table.ndim != 1 or table.shape[0] != T or T < 1:
            raise ValueError(f"{fn}: {what} must have shape (T,) with T >= 1, one T for every table, "
                             f"got {format_shape(table.shape)}")
    typed_array(fn, backend, "t", t, np.int64, host_or_device)
    shape(fn, "t", t, (B,))
    if backend == "cpu":
        contiguous(fn, backend, {"t": t, **tables})
    timestep_range(fn, t, T)
    return B, T


def timestep_range(fn, t, T):
    """Every index of the int array t in 0..T-1 (ValueError): the one check that reads elements, B of them
    (a small device-to-host copy on cuda). The diffusion layer checks its t with it too."""
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= T:
        raise ValueError(f"{fn}: t must lie in 0..{T - 1}, got {lo}..{hi}")


def per_element_or_sample(fn, backend, name, a, like, like_name):
    """A float array of ``like``'s shape and dtype, or one value per sample: (B,) or (B, 1, ..., 1). Returns
    (a, per_sample), with (B, 1, ..., 1) as a (B,) view. Any other shape (a broadcasting one) is a ValueError
    on every backend. C-contiguous on cpu and cuda."""
    float_array(fn, backend, name, a, like, like_name)
    B = like.shape[0]
    if a.shape == like.shape:
        per_sample = False
    elif a.ndim in (1, like.ndim) and a.shape[:1] == (B,) and all(s == 1 for s in a.shape[1:]):
        a, per_sample = a.reshape(B), True
    else:
        raise ValueError(f"{fn}: {name} must have shape {format_shape(like.shape)} or ({B},) (one per sample), "
                         f"got {format_shape(a.shape)}")
    contiguous(fn, backend, {name: a})
    return a, per_sample
