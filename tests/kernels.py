"""Shared by the kernel tests: which backends can run here, random inputs of awkward shapes, and the one
comparison of a backend's outputs with the NumPy reference.

Each fused kernel is checked against its NumPy reference on every backend that can run on this machine;
the cuda backend skips, with the reason, where no GPU is visible (every machine of this project).
``against_reference`` (after CuPy's ``numpy_cupy_allclose``) runs a test body twice, on the reference in
float64 and on the backend under test, and compares what the two return.
"""

import functools

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


def cast(backend, dtype, *arrays):
    """The arrays in ``dtype`` where ``backend`` computes."""
    return to_backend(backend, *(np.asarray(a).astype(dtype) for a in arrays))


def assert_matches(got, want, dtype, name, rtol, atol, scaled=True):
    """A backend's output against the float64 reference: in ``dtype`` and want's shape, NaN and +-inf exactly
    where want has them, and the finite values within rtol, and atol times the largest finite magnitude of
    want (at least 1: sums of many terms, such as a gradient over a batch, scale their rounding with it);
    with scaled=False, atol as it is."""
    got, want = to_numpy(got), np.asarray(want)
    assert got.dtype == dtype, f"{name}: {got.dtype}, want {np.dtype(dtype)}"
    assert got.shape == want.shape, f"{name}: shape {got.shape}, want {want.shape}"
    for what, where in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        np.testing.assert_array_equal(where(got), where(want), err_msg=f"{name}: where {what} is")
    finite = np.isfinite(want)
    if finite.any():
        scale = max(1.0, float(np.abs(want[finite]).max())) if scaled else 1.0
        np.testing.assert_allclose(got[finite], want[finite], rtol=rtol, atol=atol * scale, err_msg=name)


def against_reference(tol, names):
    """Decorator for a test body ``body(backend, dtype, **params) -> tuple of outputs``: the test runs the body
    once on the numpy backend in float64 (the oracle) and once on ``backend`` in ``dtype``, and compares the
    outputs pairwise with assert_matches (``names`` label them; ``tol``: {dtype: dict(rtol=, atol=)}). The
    body makes its inputs from a seeded generator, so both runs see the same numbers, and casts them with
    ``cast``. float64 on cuda skips: the CUDA kernels are float32 only."""
    def decorate(body):
        @functools.wraps(body)
        def test(backend, dtype, **params):
            if backend == "cuda" and dtype == np.float64:
                pytest.skip("the CUDA kernels are float32 only")
            want = body("numpy", np.float64, **params)
            got = body(backend, dtype, **params)
            assert len(got) == len(want) == len(names)
            for name, g, w in zip(names, got, want):
                assert_matches(g, w, dtype, f"{name} on {backend}", **tol[dtype])
        return test
    return decorate


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
