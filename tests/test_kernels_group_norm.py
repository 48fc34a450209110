"""GroupNorm (+ SiLU), forward and backward: each fused backend against the NumPy reference (float64)."""

import numpy as np
import pytest

from kernels import FAST_BACKENDS, against_reference, cast, randn, to_backend, to_numpy
from pyddpm.ops import backend as backends
from pyddpm.ops.group_norm import group_norm, group_norm_backward

# (B, C, H, W, G): batch 1, odd H*W, channels not a multiple of a block, group size 1, 1x1 images.
# (3, 4, 1, 1, 4): one-element groups, variance 0 and rstd = 1/sqrt(eps) = 1000: y must come out as beta.
SHAPES = [(1, 3, 5, 7, 3), (2, 64, 16, 16, 32), (3, 6, 1, 1, 2), (2, 4, 3, 3, 1), (1, 96, 9, 11, 32),
          (3, 4, 1, 1, 4)]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("silu", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@against_reference(TOL, ["y", "mean", "rstd", "dx", "dgamma", "dbeta"])
def test_matches_reference(backend, dtype, shape, silu):
    """Forward, then the backward from the backend's own statistics."""
    B, C, H, W, G = shape
    rng = np.random.default_rng(sum(shape))
    x = randn(rng, (B, C, H, W), np.float64, scale=2.0, offset=5.0)  # an offset signal: var must survive
    gamma, beta, dy = randn(rng, C, np.float64), randn(rng, C, np.float64), randn(rng, (B, C, H, W), np.float64)
    x, gamma, beta, dy = cast(backend, dtype, x, gamma, beta, dy)
    out = group_norm(x, gamma, beta, G, silu, backend=backend)
    return (*out, *group_norm_backward(dy, x, gamma, beta, out[1], out[2], G, silu, backend=backend))


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_statistics_of_an_offset_signal(backend):
    """float32 E[x^2] - E[x]^2 loses a variance of 1 at an offset of 1e4; two passes keep it."""
    rng = np.random.default_rng(0)
    x = (1e4 + rng.standard_normal((2, 4, 8, 8))).astype(np.float32)
    ones, zeros = np.ones(4, np.float32), np.zeros(4, np.float32)
    _, _, rstd = group_norm(*to_backend(backend, x, ones, zeros), 2, backend=backend)
    np.testing.assert_allclose(to_numpy(rstd), 1.0 / x.astype(np.float64).reshape(2, 2, -1).std(axis=2), rtol=1e-3)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32])
@against_reference({np.float32: TOL[np.float32]}, ["y", "dx", "dgamma", "dbeta"])
def test_silu_saturates(backend, dtype):
    """z far past where e^-z over- or underflows float32 (|z| up to ~450, through +-87 and +-88.7): y -> z or
    -0 and dz -> dy or 0, never inf or NaN (the reference has none). 35 positions: two 16-wide vectors and a
    tail of 3."""
    rng = np.random.default_rng(2)
    x = randn(rng, (2, 4, 5, 7), np.float64)
    gamma, beta = np.array([150.0, -150.0, 30.0, 1.0]), np.array([0.0, 5.0, -88.0, 88.5])
    dy = randn(rng, x.shape, np.float64)
    x, gamma, beta, dy = cast(backend, dtype, x, gamma, beta, dy)
    y, mean, rstd = group_norm(x, gamma, beta, 4, silu=True, backend=backend)
    return (y, *group_norm_backward(dy, x, gamma, beta, mean, rstd, 4, silu=True, backend=backend))


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_bad_input_raises(backend):
    rng = np.random.default_rng(1)
    x, g, b = randn(rng, (2, 4, 3, 3), np.float32), np.ones(4, np.float32), np.zeros(4, np.float32)
    x, g, b = to_backend(backend, x, g, b)
    with pytest.raises(ValueError, match="groups"):
        group_norm(x, g, b, 3, backend=backend)
    with pytest.raises(ValueError, match="gamma"):
        group_norm(x, g[:3], b, 2, backend=backend)
    with pytest.raises(TypeError, match="float32"):
        group_norm(x, g.astype(np.float64), b, 2, backend=backend)
    with pytest.raises(TypeError, match="contiguous"):
        group_norm(x[:, :, :, ::-1], g, b, 2, backend=backend)
    with pytest.raises(ValueError):
        group_norm(x[:0], g, b, 2, backend=backend)
    with pytest.raises(ValueError, match="x"):
        group_norm(x[0], g, b, 2, backend=backend)
    y, mean, rstd = group_norm(x, g, b, 2, backend=backend)
    with pytest.raises(ValueError, match="mean"):
        group_norm_backward(y, x, g, b, mean[:1], rstd, 2, backend=backend)
    with pytest.raises(ValueError, match="dy"):
        group_norm_backward(y[:1], x, g, b, mean, rstd, 2, backend=backend)


_THREADS_SCRIPT = """
import sys
import numpy as np
from pyddpm.ops.group_norm import group_norm, group_norm_backward
x, g, b, dy = (np.load(sys.argv[1])[k] for k in ("x", "g", "b", "dy"))
y, mean, rstd = group_norm(x, g, b, 4, silu=True, backend="cpu")
dx, dg, db = group_norm_backward(dy, x, g, b, mean, rstd, 4, silu=True, backend="cpu")
np.savez(sys.argv[2], y=y, mean=mean, rstd=rstd, dx=dx, dg=dg, db=db)
"""


@pytest.mark.skipif(not backends.available("cpu"), reason="pyddpm._cpu is not built (pip install -e .)")
def test_same_result_for_any_thread_count(tmp_path):
    """The (sample, group)s go to whichever thread is free (schedule(guided)); each is computed whole by one
    thread and dgamma, dbeta are summed over the batch in order, so 1 and 3 threads agree bit for bit."""
    import os
    import subprocess
    import sys
    rng = np.random.default_rng(3)
    x, dy = randn(rng, (7, 8, 5, 9), np.float32, offset=2.0), randn(rng, (7, 8, 5, 9), np.float32)
    g, b = randn(rng, 8, np.float32), randn(rng, 8, np.float32)
    np.savez(tmp_path / "in.npz", x=x, g=g, b=b, dy=dy)
    outs = []
    for threads in (1, 3):
        out = tmp_path / f"out{threads}.npz"
        subprocess.run([sys.executable, "-c", _THREADS_SCRIPT, str(tmp_path / "in.npz"), str(out)],
                       env=dict(os.environ, OMP_NUM_THREADS=str(threads)), check=True)
        outs.append(np.load(out))
    for name in ("y", "mean", "rstd", "dx", "dg", "db"):
        np.testing.assert_array_equal(outs[0][name], outs[1][name], err_msg=name)
