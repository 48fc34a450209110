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


def assert_matches(got, want, dtype, name, rtol, atol=0.0, scaled=True, terms=None):
    """A backend's output against the float64 reference: in ``dtype`` and want's shape, NaN and +-inf exactly
    where want has them, and the finite values within rtol, and atol times the largest finite magnitude of
    want (at least 1: sums of many terms, such as a gradient over a batch, scale their rounding with it);
    with scaled=False, atol as it is. With ``terms`` (an array like want: for each element the sum of the
    magnitudes of the terms that make it, see sampler_step_terms) the bound is rtol * terms, element by
    element, so a result that cancels to near zero is held to its terms' rounding, not to its own size."""
    got, want = to_numpy(got), np.asarray(want)
    assert got.dtype == dtype, f"{name}: {got.dtype}, want {np.dtype(dtype)}"
    assert got.shape == want.shape, f"{name}: shape {got.shape}, want {want.shape}"
    for what, where in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        np.testing.assert_array_equal(where(got), where(want), err_msg=f"{name}: where {what} is")
    finite = np.isfinite(want)
    if terms is not None:
        err, bound = np.abs(got.astype(np.float64) - want)[finite], (rtol * np.broadcast_to(terms, want.shape))[finite]
        worst = np.argmax(err - bound) if err.size else 0
        assert np.all(err <= bound), f"{name}: error {err[worst]:.3g} > {bound[worst]:.3g} at {worst}"
    elif finite.any():
        scale = max(1.0, float(np.abs(want[finite]).max())) if scaled else 1.0
        np.testing.assert_allclose(got[finite], want[finite], rtol=rtol, atol=atol * scale, err_msg=name)


def skip_float64_on_cuda(backend, dtype):
    """The CUDA kernels are float32 only: a float64 case on cuda skips, saying so."""
    if backend == "cuda" and dtype == np.float64:
        pytest.skip("the CUDA kernels are float32 only")


def against_reference(tol, names):
    """Decorator for a test body ``body(backend, dtype, **params) -> tuple of outputs``: the test runs the body
    once on the numpy backend in float64 (the oracle) and once on ``backend`` in ``dtype``, and compares the
    outputs pairwise with assert_matches (``names`` label them; ``tol``: {dtype: dict(rtol=, atol=)}). The
    body makes its inputs from a seeded generator, so both runs see the same numbers, and casts them with
    ``cast``. float64 on cuda skips: the CUDA kernels are float32 only."""
    def decorate(body):
        @functools.wraps(body)
        def test(backend, dtype, **params):
            skip_float64_on_cuda(backend, dtype)
            want = body("numpy", np.float64, **params)
            got = body(backend, dtype, **params)
            assert len(got) == len(want) == len(names)
            for name, g, w in zip(names, got, want):
                assert_matches(g, w, dtype, f"{name} on {backend}", **tol[dtype])
        return test
    return decorate


def _at(table, t, like):
    return table[t].reshape((-1,) + (1,) * (like.ndim - 1))


def q_sample_terms(x0, noise, t, sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod):
    """The sum of the terms' magnitudes behind each element of q_sample's output (Eq. 4), (B, ...)."""
    return _at(sqrt_alphas_cumprod, t, x0) * np.abs(x0) + _at(sqrt_one_minus_alphas_cumprod, t, x0) * np.abs(noise)


def sampler_step_terms(model_output, x, noise, coefs, log_variance=None):
    """The sums of the terms' magnitudes behind sampler_step's outputs, per element: (x0_hat's, x_next's) for a
    StepCoefs of float64 (B,) arrays; the arrays (B, ...) in float64, noise and log_variance None or like x. A
    sample whose next_from_noise is 0 has no noise term (whatever its noise and log_variance hold)."""
    c = [np.abs(np.asarray(a, np.float64)).reshape((-1,) + (1,) * (x.ndim - 1)) for a in coefs]
    x0_terms = c[0] * np.abs(x) + c[1] * np.abs(model_output)
    scale = c[4]
    if log_variance is not None:
        scale = c[4] * np.exp(0.5 * np.where(c[4] != 0, np.asarray(log_variance, np.float64), 0.0))
    noise_terms = 0.0 if noise is None else np.where(c[4] != 0, scale * np.abs(noise), 0.0)
    return x0_terms, c[2] * x0_terms + c[3] * np.abs(x) + noise_terms


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
