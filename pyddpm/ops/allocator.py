"""Keep freed memory for the next step: raise glibc malloc's mmap and trim thresholds, once per process.

glibc serves every allocation above its mmap threshold (128 KiB, adapting up to 32 MiB) with a fresh
mmap and unmaps it on free, so a step's large temporaries (im2col columns, activations, gradients) are
page-faulted in again, page by page, on every step. glibc's adapting catches some of them after a few
steps, not all; with the thresholds raised a training step reuses the heap and hardly faults at all
(tests/test_allocator.py counts the faults; benchmarks/RESULTS.md, "Kernel microbenchmarks vs
PyTorch"). The cost is that the heap keeps its peak size instead of shrinking between steps.

Nothing happens on import. The run's backend, when it starts (its first kernel call or ``set_backend``;
pyddpm/ops/backend.py), calls ``tune_once``; so does ``pyddpm.tune_process()``. The setting is
process-wide, so PyTorch in the same process (the benchmarks) runs with it too. PYDDPM_MALLOC=default
leaves glibc as it is; elsewhere than glibc this does nothing.
"""

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
MMAP_THRESHOLD = 1 << 30  # allocations above 1 GiB still get their own mapping
TRIM_THRESHOLD = 1 << 31

_state = {"tuned": None}  # None: not tried yet; then whether glibc took the values


def _mallopt():
    """glibc's mallopt, or None where there is no glibc."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return None


AVAILABLE = _mallopt() is not None  # glibc is here: there are thresholds to tune (nothing is changed yet)


def tune_malloc():
    """Raise the thresholds now (unless PYDDPM_MALLOC=default); True if glibc took the new values."""
    if os.environ.get("PYDDPM_MALLOC", "") == "default":
        return False
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def tune_once():
    """``tune_malloc`` the first time it is called in this process; returns whether glibc took the values."""
    if _state["tuned"] is None:
        _state["tuned"] = tune_malloc()
    return _state["tuned"]


def tuned():
    """True once this process's malloc thresholds were raised by pyddpm."""
    return bool(_state["tuned"])
