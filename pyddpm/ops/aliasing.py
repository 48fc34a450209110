"""Which arrays share memory, and the checks of the kernels that write in place (adam_ema, the row kernels'
out=). Every message starts with the kernel's name ``fn`` and names the arguments; ValueError throughout.
Arrays are read for their flags, shapes, strides and data pointers, never their elements.
"""

import numpy as np

from pyddpm.arrays import library

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
_MAX_OVERLAP_WORK = 1000  # np.shares_memory's bound for strided views; past it, treat as overlapping


def writeable(fn, named):
    """Each array of ``named`` is written in place: it must be writeable (ValueError). CuPy arrays always are."""
    for name, a in named.items():
        if library(a) == "numpy" and not a.flags.writeable:
            raise ValueError(f"{fn}: {name} must be writeable, got a read-only array")


def _pointer(a):
    return a.data.ptr if library(a) == "cupy" else a.__array_interface__["data"][0]


def _extent(a):
    """[lo, hi) of the bytes ``a`` can touch, from its data pointer, shape and strides."""
    lo = hi = _pointer(a)
    for n, s in zip(a.shape, a.strides):
        if s < 0:
            lo += (n - 1) * s
        else:
            hi += (n - 1) * s
    return lo, hi + a.itemsize


def identical(a, b):
    """Whether a and b are the same memory seen the same way (the same pointer, shape and strides)."""
    return _pointer(a) == _pointer(b) and a.shape == b.shape and a.strides == b.strides


def overlap(a, b):
    """Whether arrays a and b share any memory. NumPy: by bounds, then exactly for strided views (up to a
    bounded amount of work, past which they count as overlapping); CuPy: by extents."""
    if library(a) == "numpy" and library(b) == "numpy":
        if not np.may_share_memory(a, b):  # bounds only, and False for an empty array
            return False
        if a.flags.c_contiguous and b.flags.c_contiguous:
            return True
        try:
            return bool(np.shares_memory(a, b, max_work=_MAX_OVERLAP_WORK))
        except np.exceptions.TooHardError:
            return True
    if 0 in a.shape or 0 in b.shape:
        return False
    (lo_a, hi_a), (lo_b, hi_b) = _extent(a), _extent(b)
    return lo_a < hi_b and lo_b < hi_a


def disjoint(fn, named):
    """No two arrays of ``named`` ({name: array}) may share memory (ValueError naming both)."""
    items = list(named.items())
    if _distinct_owners([a for _, a in items]):
        return
    for i, (name_a, a) in enumerate(items):
        for name_b, b in items[i + 1:]:
            if overlap(a, b):
                raise ValueError(f"{fn}: {name_a} and {name_b} share memory; pass separate arrays")


def _distinct_owners(arrays):
    """True when the arrays are distinct NumPy arrays that each own their memory (no base): then no two can
    overlap, which settles the common case without comparing every pair."""
    return (all(type(a) is np.ndarray and a.base is None for a in arrays)
            and len({id(a) for a in arrays}) == len(arrays))


def plainly_disjoint(backend, arrays, written):
    """A fast yes for in-place kernels called many times a step (adam_ema, once per parameter): True when
    ``arrays`` are distinct, C-contiguous NumPy arrays of one float dtype and one shape that share no memory
    (those that own theirs cannot; a view is compared by bounds with the rest), and those at the indices
    ``written`` are writeable. False says nothing: the full checks then run and name what is wrong."""
    if backend == "cuda" or type(arrays[0]) is not np.ndarray:
        return False
    dtype, shape = arrays[0].dtype, arrays[0].shape
    if dtype != F32 and dtype != F64:
        return False
    ids, views = set(), []
    for a in arrays:  # plain loops: this runs for every parameter of every step
        if type(a) is not np.ndarray or a.dtype != dtype or a.shape != shape or not a.flags.c_contiguous:
            return False
        ids.add(id(a))
        if a.base is not None:
            views.append(a)
    if len(ids) != len(arrays):
        return False
    for i in written:
        if not arrays[i].flags.writeable:
            return False
    for a in views:
        for b in arrays:
            if b is not a and np.may_share_memory(a, b):
                return False
    return True
