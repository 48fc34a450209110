"""batched_matmul (pyddpm/ops/batched_matmul.py): the cpu kernel against NumPy's matmul in float64, on shapes
around the micro-kernel's register tile (6 rows x 64 columns in vectors of 16 or 8) and on strided views.
The tests' names say "cpu": tests/test_cpu_sanitizers.py runs those (-k cpu) under ASan and UBSan."""

import numpy as np
import pytest

from kernels import assert_matches, randn
from pyddpm.ops import backend as backends
from pyddpm.ops.batched_matmul import batched_matmul

TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.fixture
def cpu():
    if not backends.available("cpu"):
        pytest.skip("pyddpm._cpu is not built (pip install -e .)")
    return backends.extension("cpu")


def check(a, b, dtype):
    want = a.astype(np.float64) @ b.astype(np.float64)
    got = batched_matmul(a, b, backend="cpu")
    assert got.flags.c_contiguous
    scale = np.sqrt(a.shape[2])  # a sum of k products of size ~1
    assert_matches(got, want, dtype, "batched_matmul on cpu", TOL[dtype]["rtol"], TOL[dtype]["atol"] * scale,
                   scaled=False)


# (n, m, k, p): one of everything, one tile exactly, one short, one past, Winograd's U V at small sizes, a
# long k (the weight gradient's P), p not a multiple of the vector width.
SHAPES = [(1, 1, 1, 1), (1, 6, 3, 64), (2, 5, 7, 63), (3, 7, 9, 65), (16, 8, 8, 200), (2, 13, 1000, 17),
          (4, 12, 33, 129), (1, 1, 5, 1)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_matches_matmul(cpu, shape, dtype):
    n, m, k, p = shape
    rng = np.random.default_rng(list(shape))
    check(randn(rng, (n, m, k), dtype), randn(rng, (n, k, p), dtype, offset=0.5), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_strided_views(cpu, dtype):
    """Winograd's backward passes transposed views (U^T, V^T); any other strides must work too."""
    rng = np.random.default_rng(7)
    u, v, dm = randn(rng, (16, 9, 11), dtype), randn(rng, (16, 11, 70), dtype), randn(rng, (16, 9, 70), dtype)
    check(u.swapaxes(1, 2), dm, dtype)  # dV = U^T dM
    check(dm, v.swapaxes(1, 2), dtype)  # dU = dM V^T
    big, big2 = randn(rng, (5, 20, 30), dtype), randn(rng, (6, 31, 40), dtype)
    check(big[::2, 1::3, ::-2], big2[::2, 29::-2, 3:24], dtype)  # steps, reversals, offsets in every axis
    check(np.broadcast_to(u[:1], u.shape), v, dtype)  # a zero batch stride


def test_cpu_falls_back_to_numpy_without_simd_tiles(cpu, monkeypatch):
    def refuse(*_):
        raise AssertionError("the kernel ran without SIMD tiles")
    monkeypatch.setattr(cpu, "gemm_simd", False)
    monkeypatch.setattr(cpu, "batched_matmul", refuse)
    rng = np.random.default_rng(8)
    check(randn(rng, (2, 5, 7), np.float32), randn(rng, (2, 7, 3), np.float32), np.float32)


def test_cpu_empty_and_bad_input(cpu):
    a = np.ones((2, 3, 4), np.float32)
    np.testing.assert_array_equal(cpu.batched_matmul(np.ones((2, 3, 0), np.float32), np.ones((2, 0, 5), np.float32)),
                                  np.zeros((2, 3, 5), np.float32))
    assert cpu.batched_matmul(np.ones((0, 3, 4), np.float32), np.ones((0, 4, 5), np.float32)).shape == (0, 3, 5)
    with pytest.raises(ValueError, match="do not fit"):
        batched_matmul(a, np.ones((2, 5, 6), np.float32), backend="cpu")
    with pytest.raises(ValueError, match="do not fit"):
        batched_matmul(a[0], a[0].T, backend="cpu")
    with pytest.raises(TypeError, match="b must be float32"):
        cpu.batched_matmul(a, np.ones((2, 4, 5), np.float64))
    with pytest.raises(TypeError, match="a must be float32 or float64"):
        cpu.batched_matmul(a.astype(np.int32), np.ones((2, 4, 5), np.int32))
    with pytest.raises(ValueError, match=r"b must have shape \(2, 4, \*\)"):
        cpu.batched_matmul(a, np.ones((2, 3, 5), np.float32))
