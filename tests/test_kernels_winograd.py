"""Winograd F(2x2, 3x3) (pyddpm/ops/winograd.py): the references against the definition of a 3x3 convolution
and against each other's adjoints, and each fused backend's tile transforms against the references."""

import numpy as np
import pytest

from kernels import FAST_BACKENDS, assert_matches, randn, to_backend
from pyddpm.ops import winograd as wg
from pyddpm.ops import winograd_conv as wgc
from pyddpm.ops.backend import BackendUnavailable, extension

# (B, C, K, H, W): a 1x1 image (one tile, three of its four outputs dropped), batch 1, odd and non-square
# sizes in both directions, more tiles than an OpenMP chunk.
SHAPES = [(1, 1, 1, 1, 1), (1, 3, 2, 5, 7), (2, 4, 3, 6, 9), (3, 2, 5, 8, 8), (1, 5, 4, 13, 2), (2, 3, 3, 17, 16)]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def direct_conv(x, w, bias):
    """out[b, k, i, j] = sum_{c, u, v} w[k, c, u, v] x_pad[b, c, i + u, j + v] + bias[k] (padding 1)."""
    B, _, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.empty((B, w.shape[0], H, W))
    for i in range(H):
        for j in range(W):
            out[:, :, i, j] = np.einsum("bcuv,kcuv->bk", xp[:, :, i:i + 3, j:j + 3], w)
    return out + bias[:, None, None]


@pytest.mark.parametrize("shape", SHAPES)
def test_reference_is_a_3x3_convolution(shape):
    B, C, K, H, W = shape
    rng = np.random.default_rng(sum(shape))
    x, w, bias = randn(rng, (B, C, H, W), np.float64), randn(rng, (K, C, 3, 3), np.float64), randn(rng, (K,), np.float64)
    v = wg.winograd_input(x, backend="numpy")
    assert v.shape == (16, C, B * wg.tiles(H) * wg.tiles(W))
    y = wg.winograd_output(wg.winograd_weight(w) @ v, (B, K, H, W), bias, backend="numpy")
    np.testing.assert_allclose(y, direct_conv(x, w, bias), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_references_are_adjoints(shape):
    """<f(a), b> = <a, f^T(b)> for each transform and its gradient: what makes the backward right."""
    B, C, K, H, W = shape
    rng = np.random.default_rng(sum(shape) + 1)
    P = B * wg.tiles(H) * wg.tiles(W)
    x, dv = randn(rng, (B, C, H, W), np.float64), randn(rng, (16, C, P), np.float64)
    m, dy = randn(rng, (16, K, P), np.float64), randn(rng, (B, K, H, W), np.float64)
    w, du = randn(rng, (K, C, 3, 3), np.float64), randn(rng, (16, K, C), np.float64)
    pairs = [(wg.winograd_input(x, backend="numpy"), dv, x, wg.winograd_input_grad(dv, x.shape, backend="numpy")),
             (wg.winograd_output(m, dy.shape, backend="numpy"), dy, m, wg.winograd_output_grad(dy, backend="numpy")),
             (wg.winograd_weight(w), du, w, wg.winograd_weight_grad(du))]
    for fa, b, a, ftb in pairs:
        np.testing.assert_allclose(np.sum(fa * b), np.sum(a * ftb), rtol=1e-12)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_kernels_match_reference(backend, shape):
    B, C, K, H, W = shape
    rng = np.random.default_rng(sum(shape) + 2)
    P = B * wg.tiles(H) * wg.tiles(W)
    x, dv = randn(rng, (B, C, H, W), np.float64), randn(rng, (16, C, P), np.float64)
    m, dy, bias = randn(rng, (16, K, P), np.float64), randn(rng, (B, K, H, W), np.float64), randn(rng, (K,), np.float64)
    refs = {"input": wg.winograd_input(x, backend="numpy"),
            "input_grad": wg.winograd_input_grad(dv, x.shape, backend="numpy"),
            "output": wg.winograd_output(m, dy.shape, bias, backend="numpy"),
            "output_nobias": wg.winograd_output(m, dy.shape, backend="numpy"),
            "output_grad": wg.winograd_output_grad(dy, backend="numpy")}
    for dtype in [np.float32] if backend == "cuda" else [np.float32, np.float64]:
        xb, dvb, mb, dyb, bb = to_backend(backend, *(a.astype(dtype) for a in (x, dv, m, dy, bias)))
        got = {"input": wg.winograd_input(xb, backend=backend),
               "input_grad": wg.winograd_input_grad(dvb, x.shape, backend=backend),
               "output": wg.winograd_output(mb, dy.shape, bb, backend=backend),
               "output_nobias": wg.winograd_output(mb, dy.shape, backend=backend),
               "output_grad": wg.winograd_output_grad(dyb, backend=backend)}
        for name, ref in refs.items():
            assert_matches(got[name], ref, dtype, f"{name} on {backend}", **TOL[dtype], scaled=False)


def _cpu():
    try:
        return extension("cpu")
    except BackendUnavailable as e:
        pytest.skip(str(e))


def test_bad_input_raises():
    ext = _cpu()
    x = np.ones((2, 3, 4, 5), np.float32)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        ext.winograd_input(x.astype(np.int32))
    with pytest.raises(TypeError, match="C-contiguous"):
        ext.winograd_input(x[:, :, :, ::2])
    with pytest.raises(ValueError, match=r"x must have shape \(\*, \*, \*, \*\)"):
        ext.winograd_input(x[0])
    with pytest.raises(ValueError, match="C must be positive"):
        ext.winograd_input(np.ones((2, 0, 4, 5), np.float32))
    v = ext.winograd_input(x)
    with pytest.raises(ValueError, match=r"dv must have shape \(16, 3, 12\)"):
        ext.winograd_input_grad(v[:, :, :-1].copy(), x.shape)
    with pytest.raises(ValueError, match=r"x_shape must be \(B, C, H, W\)"):
        ext.winograd_input_grad(v, (2, 3, 4))
    ext.winograd_output(v, (2, 3, 3, 6))  # 2 x 3 tiles, like (4, 5): the tiles decide, and the crop
    with pytest.raises(ValueError, match=r"m must have shape \(16, 3, 18\)"):
        ext.winograd_output(v, (2, 3, 6, 6))
    with pytest.raises(TypeError, match="bias must be float32"):
        ext.winograd_output(v, x.shape, np.ones(3, np.float64))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        ext.winograd_output(v, x.shape, np.ones(4, np.float32))


# The whole convolution (winograd_conv, winograd_conv_backward; on cpu csrc/cpu/winograd_fused.cpp, which
# works a block of up to 64 tiles at a time). Besides SHAPES: blocks of several whole samples with a short
# last block (5x5: 9 tiles, 7 samples a block), samples cut into blocks of tile rows with a short last one
# (19x19: 10 x 10 tiles, 6 rows a block), more units than dU's 8 groups (20 samples), a tile row that fills
# a whole panel (W = 128), one past the widest the fused kernel takes (W = 130: the three-step path), and
# channels enough for dU's operand to be packed in 16 x 16 blocks, with edges (17 channels, 60 tiles).
CONV_SHAPES = SHAPES + [(9, 2, 3, 5, 5), (2, 3, 4, 19, 19), (20, 2, 3, 16, 16), (1, 2, 3, 3, 128), (1, 2, 2, 2, 130),
                        (3, 17, 18, 10, 12)]


def _conv_case(shape, dtype, seed):
    B, C, K, H, W = shape
    rng = np.random.default_rng(seed)
    x, w = randn(rng, (B, C, H, W), np.float64), randn(rng, (K, C, 3, 3), np.float64)
    bias, dy = randn(rng, (K,), np.float64), randn(rng, (B, K, H, W), np.float64)
    return tuple(a.astype(dtype) for a in (x, wg.winograd_weight(w), bias, dy))


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_conv_matches_reference(backend, shape):
    for dtype in [np.float32] if backend == "cuda" else [np.float32, np.float64]:
        x, u, bias, dy = _conv_case(shape, dtype, sum(shape) + 3)
        y_ref = wgc.winograd_conv(x, u, bias, backend="numpy")
        dx_ref, du_ref, db_ref = wgc.winograd_conv_backward(x, u, dy, need_db=True, backend="numpy")
        np.testing.assert_allclose(db_ref, dy.astype(np.float64).sum(axis=(0, 2, 3)), **TOL[dtype])
        xb, ub, bb, dyb = to_backend(backend, x, u, bias, dy)
        # du and db sum over every tile: their absolute tolerance scales with their largest entry
        tol_du = dict(TOL[dtype], atol=TOL[dtype]["atol"] * np.abs(du_ref).max())
        tol_db = dict(TOL[dtype], atol=TOL[dtype]["atol"] * np.abs(db_ref).max())
        dx, du, db = wgc.winograd_conv_backward(xb, ub, dyb, need_db=True, backend=backend)
        for name, got, ref, tol in [
                ("y", wgc.winograd_conv(xb, ub, bb, backend=backend), y_ref, TOL[dtype]),
                ("y_nobias", wgc.winograd_conv(xb, ub, backend=backend), y_ref - bias[:, None, None], TOL[dtype]),
                ("dx", dx, dx_ref, TOL[dtype]), ("du", du, du_ref, tol_du), ("db", db, db_ref, tol_db)]:
            assert_matches(got, ref, dtype, f"{name} {dtype.__name__} on {backend}", **tol, scaled=False)
        for need in [(True, False, False), (False, True, False), (False, False, True)]:
            got = wgc.winograd_conv_backward(xb, ub, dyb, *need, backend=backend)
            for wanted, out, ref, tol in zip(need, got, (dx_ref, du_ref, db_ref), (TOL[dtype], tol_du, tol_db)):
                if wanted:
                    assert_matches(out, ref, dtype, f"only {need} on {backend}", **tol, scaled=False)
                else:
                    assert out is None


def test_fused_conv_is_taken_on_cpu(monkeypatch):
    """The cpu backend runs the one-pass kernel, up to its widest image, and the three steps past it."""
    ext = _cpu()
    if not ext.gemm_simd:
        pytest.skip("this build has no SIMD micro-kernel: the cpu backend keeps the three steps")
    calls = []
    from pyddpm.ops import registry
    for module in (wgc, registry):  # the one-pass calls, and the steps' calls through the kernel table
        monkeypatch.setattr(module, "extension", lambda name: _Spy(ext, calls))
    for W in (ext.winograd_conv_max_width, ext.winograd_conv_max_width + 1):
        x, u, _, dy = _conv_case((1, 2, 3, 2, W), np.float32, W)
        wgc.winograd_conv(x, u, backend="cpu")
        wgc.winograd_conv_backward(x, u, dy, backend="cpu")
    assert calls == ["winograd_conv", "winograd_conv_backward", "winograd_input", "winograd_output",
                     "winograd_output_grad", "winograd_input_grad", "winograd_input"]


class _Spy:
    """The extension, recording which of its winograd kernels are called."""

    def __init__(self, ext, calls):
        self.ext, self.calls = ext, calls

    def __getattr__(self, name):
        attr = getattr(self.ext, name)
        if name.startswith("winograd_") and callable(attr):
            self.calls.append(name)
        return attr


_THREADS_SCRIPT = """
import sys
import numpy as np
from pyddpm.ops import winograd_conv as wgc
x, u, dy = (np.load(sys.argv[1])[k] for k in ("x", "u", "dy"))
dx, du, db = wgc.winograd_conv_backward(x, u, dy, need_db=True, backend="cpu")
np.savez(sys.argv[2], y=wgc.winograd_conv(x, u, backend="cpu"), dx=dx, du=du, db=db)
"""


def test_fused_conv_same_result_for_any_thread_count(tmp_path):
    """dU and db are summed in groups fixed by the shape, not by the threads: 1 and 3 threads agree bit for
    bit."""
    import os
    import subprocess
    import sys
    _cpu()
    x, u, _, dy = _conv_case((20, 3, 4, 9, 11), np.float32, 7)
    np.savez(tmp_path / "in.npz", x=x, u=u, dy=dy)
    outs = []
    for threads in (1, 3):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        out = tmp_path / f"out{threads}.npz"
        subprocess.run([sys.executable, "-c", _THREADS_SCRIPT, str(tmp_path / "in.npz"), str(out)], env=env,
                       check=True)
        outs.append(np.load(out))
    for name in ("y", "dx", "du", "db"):
        np.testing.assert_array_equal(outs[0][name], outs[1][name], err_msg=name)


def test_fused_conv_bad_input_raises():
    ext = _cpu()
    x, u = np.ones((2, 3, 4, 5), np.float32), np.ones((16, 4, 3), np.float32)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        ext.winograd_conv(x.astype(np.int32), u)
    with pytest.raises(TypeError, match="u must be float32"):
        ext.winograd_conv(x, u.astype(np.float64))
    with pytest.raises(TypeError, match="C-contiguous"):
        ext.winograd_conv(x[:, :, :, ::2], u)
    with pytest.raises(ValueError, match=r"u must have shape \(16, \*, 3\)"):
        ext.winograd_conv(x, np.ones((16, 4, 2), np.float32))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        ext.winograd_conv(x, u, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="C must be positive"):
        ext.winograd_conv(np.ones((2, 0, 4, 5), np.float32), np.ones((16, 4, 0), np.float32))
    wide = np.ones((1, 3, 2, ext.winograd_conv_max_width + 1), np.float32)
    with pytest.raises(ValueError, match="wider than"):
        ext.winograd_conv(wide, u)
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 4, 4, 5\)"):
        ext.winograd_conv_backward(x, u, np.ones((2, 3, 4, 5), np.float32))
