"""Shared by the kernel tests: which backends can run here, and random inputs of awkward shapes.

Each fused kernel is checked against its NumPy reference on every backend that can run on this machine;
the cuda backend skips, with the reason, where no GPU is visible (every machine of this project).
"""

import numpy as np
import pytest

from pyddpm.ops import backend as backends

FAST_BACKENDS = [
    pytest.param("cpu", marks=pytest.mark.skipif(not backends.available("cpu"),
                                                 reason="pyddpm._cpu is not built (pip install -e .)")),
    pytest.param("cuda", marks=pytest.mark.skipif(not backends.available("cuda"),
                                                  reason="no GPU visible to CuPy (or pyddpm._cuda not built)")),
]


def to_backend(backend, *arrays):
    """Move arrays to where ``backend`` computes: CuPy for cuda, NumPy otherwise."""
    if backend == "cuda":
        import cupy
        return tuple(cupy.asarray(a) for a in arrays)
    return arrays


def to_numpy(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def randn(rng, shape, dtype, scale=1.0, offset=0.0):
    """Random normal data, never all zero; an offset makes cancellation bugs in statistics visible."""
    return (rng.standard_normal(shape) * scale + offset).astype(dtype)


def force_winograd(monkeypatch, one_pass=True):
    """Switch to the cpu backend with conv2d taking Winograd at any size, in one pass or as three steps;
    returns a list that grows by the path's name each time one is taken (a test that silently fell back to
    the row layout, or to the other path, would check nothing new)."""
    from pyddpm.autograd import conv
    if not backends.available("cpu"):
        pytest.skip("pyddpm._cpu is not built (pip install -e .): no Winograd kernels")
    backends.set_backend("cpu")
    if one_pass and not conv.one_pass_available("cpu", 1):
        pytest.skip("this build of pyddpm._cpu has no SIMD micro-kernel: no one-pass Winograd")
    monkeypatch.setattr(conv, "WINOGRAD_ONE_PASS_MIN_TILES", 1 if one_pass else 10**9)
    monkeypatch.setattr(conv, "WINOGRAD_ONE_PASS_MIN_BATCH", 1)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_TILES", 1)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_H", 0)
    calls = []
    real = conv._winograd
    monkeypatch.setattr(conv, "_winograd", lambda *a, one_pass: calls.append("one pass" if one_pass else "steps")
                        or real(*a, one_pass=one_pass))
    return calls
