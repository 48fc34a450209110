"""im2col / col2im and the row layout: each fused backend against the NumPy reference, plus the adjoint
identities that make col2im the input gradient of a convolution (Eq. 14's network, Ho et al. 2020)."""

import numpy as np
import pytest

from kernels import FAST_BACKENDS, assert_matches, randn, to_backend, to_numpy
from pyddpm.ops import im2col as ops
from pyddpm.ops import im2col_rows as row_ops

# (B, C, H, W): batch 1, one channel, RGB, odd and non-square sizes, an image just as wide as the kernel.
SHAPES = [(1, 1, 5, 7), (2, 3, 9, 6), (3, 3, 8, 8), (1, 3, 7, 13), (2, 1, 5, 5)]
GEOMETRIES = [(k, s, p) for k in (1, 3, 5) for s in (1, 2) for p in (0, 1, 2)]
# col2im sums up to k*k = 25 values of size ~1: float32 (the GPU accumulates in float) within 25 ulps of 5.
TOL = {np.float32: dict(rtol=1e-6, atol=2e-5), np.float64: dict(rtol=1e-13, atol=1e-13)}


def dtypes_for(backend):
    return [np.float32] if backend == "cuda" else [np.float32, np.float64]


def fits(shape, k, p):
    return shape[2] + 2 * p >= k and shape[3] + 2 * p >= k


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k,stride,padding", GEOMETRIES)
def test_im2col_col2im_match_reference(backend, shape, k, stride, padding):
    if not fits(shape, k, padding):
        pytest.skip("the image is smaller than the kernel (tested in test_bad_input_raises)")
    rng = np.random.default_rng(sum(shape) + 10 * k + stride + padding)
    x = randn(rng, shape, np.float64)
    cols_ref = ops.im2col(x, k, stride, padding, backend="numpy")
    dcols = randn(rng, cols_ref.shape, np.float64)
    img_ref = ops.col2im(dcols, shape, k, stride, padding, backend="numpy")
    for dtype in dtypes_for(backend):
        xb, dcb = to_backend(backend, x.astype(dtype), dcols.astype(dtype))
        cols = to_numpy(ops.im2col(xb, k, stride, padding, backend=backend))
        assert cols.dtype == dtype and cols.shape == cols_ref.shape
        np.testing.assert_array_equal(cols, cols_ref.astype(dtype))  # a copy: exact
        img = ops.col2im(dcb, shape, k, stride, padding, backend=backend)
        assert_matches(img, img_ref, dtype, f"col2im on {backend}", **TOL[dtype], scaled=False)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_row_layout_matches_reference(backend, shape, k):
    padding = (k - 1) // 2
    B, C, H, W = shape
    rng = np.random.default_rng(sum(shape) + k)
    x = randn(rng, shape, np.float64)
    cols_ref = row_ops.im2col_rows(x, k, padding, backend="numpy")
    dcols = randn(rng, cols_ref.shape, np.float64)  # junk columns nonzero too: both must sum them alike
    y = randn(rng, (4, B * H * (W + 2 * padding)), np.float64)
    refs = {"im2col_rows": cols_ref, "col2im_rows": row_ops.col2im_rows(dcols, shape, k, padding, backend="numpy"),
            "rows_to_nchw": row_ops.rows_to_nchw(y, B, H, W, padding, backend="numpy"),
            "nchw_to_rows": row_ops.nchw_to_rows(x, padding, backend="numpy")}
    for dtype in dtypes_for(backend):
        xb, dcb, yb = to_backend(backend, x.astype(dtype), dcols.astype(dtype), y.astype(dtype))
        got = {"im2col_rows": row_ops.im2col_rows(xb, k, padding, backend=backend),
               "col2im_rows": row_ops.col2im_rows(dcb, shape, k, padding, backend=backend),
               "rows_to_nchw": row_ops.rows_to_nchw(yb, B, H, W, padding, backend=backend),
               "nchw_to_rows": row_ops.nchw_to_rows(xb, padding, backend=backend)}
        for name, want in refs.items():
            out = to_numpy(got[name])
            assert out.dtype == dtype and out.shape == want.shape, name
            if name == "col2im_rows":
                assert_matches(out, want, dtype, f"{name} on {backend}", **TOL[dtype], scaled=False)
            else:
                np.testing.assert_array_equal(out, want.astype(dtype), err_msg=f"{name} on {backend}")


@pytest.mark.parametrize("shape", [(2, 3, 7, 5), (1, 1, 6, 9)])
@pytest.mark.parametrize("k,stride,padding", [(3, 1, 1), (3, 2, 1), (5, 2, 2), (1, 2, 0), (3, 1, 0)])
def test_adjoint_identity_on_cpu(shape, k, stride, padding):
    """<im2col(x), y> = <x, col2im(y)>: col2im is exactly the transpose of the linear map im2col."""
    pytest.importorskip("pyddpm._cpu", reason="pyddpm._cpu is not built (pip install -e .)")
    rng = np.random.default_rng(7)
    x = randn(rng, shape, np.float64)
    cols = ops.im2col(x, k, stride, padding, backend="cpu")
    y = randn(rng, cols.shape, np.float64)
    lhs, rhs = np.vdot(cols, y), np.vdot(x, ops.col2im(y, shape, k, stride, padding, backend="cpu"))
    assert abs(lhs - rhs) <= 1e-12 * (abs(lhs) + np.abs(cols).sum())
    if stride == 1 and 2 * padding == k - 1:
        rows = row_ops.im2col_rows(x, k, padding, backend="cpu")
        # Junk columns of y set to zero, as the conv backward makes them (rows_to_nchw's adjoint).
        y_rows = row_ops.nchw_to_rows(row_ops.rows_to_nchw(randn(rng, rows.shape, np.float64), *shape[:1], *shape[2:],
                                                   padding, backend="cpu"), padding, backend="cpu")
        lhs = np.vdot(rows, y_rows)
        rhs = np.vdot(x, row_ops.col2im_rows(y_rows, shape, k, padding, backend="cpu"))
        assert abs(lhs - rhs) <= 1e-12 * (abs(lhs) + np.abs(rows).sum())


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_bad_input_raises(backend):
    rng = np.random.default_rng(1)
    x = randn(rng, (2, 3, 6, 5), np.float32)
    cols = ops.im2col(x, 3, 1, 1, backend="numpy")
    rows = row_ops.im2col_rows(x, 3, 1, backend="numpy")
    x, cols, rows = to_backend(backend, x, cols, rows)
    with pytest.raises(ValueError, match="cols"):  # cols of a stride-1 conv given for stride 2
        ops.col2im(cols, x.shape, 3, 2, 1, backend=backend)
    with pytest.raises(ValueError, match="cols"):
        ops.col2im(cols, (2, 4, 6, 5), 3, 1, 1, backend=backend)
    with pytest.raises(ValueError, match="dcols"):
        row_ops.col2im_rows(rows[:-1], x.shape, 3, 1, backend=backend)
    with pytest.raises(ValueError, match="y"):
        row_ops.rows_to_nchw(rows, 2, 6, 4, 1, backend=backend)
    bad = np.float64 if backend == "cuda" else np.int32  # the cuda kernels are float32 only
    with pytest.raises(TypeError, match="float32"):
        ops.im2col(x.astype(bad), 3, 1, 1, backend=backend)
    with pytest.raises(TypeError, match="float32"):
        ops.col2im(cols.astype(bad), x.shape, 3, 1, 1, backend=backend)
    with pytest.raises(TypeError, match="float32"):
        row_ops.col2im_rows(rows.astype(bad), x.shape, 3, 1, backend=backend)
    with pytest.raises(TypeError, match="contiguous"):
        ops.im2col(x[:, :, :, ::-1], 3, 1, 1, backend=backend)
    with pytest.raises(TypeError, match="contiguous"):
        row_ops.nchw_to_rows(x.transpose(0, 1, 3, 2), 1, backend=backend)
    with pytest.raises(ValueError):  # empty batch
        ops.im2col(x[:0], 3, 1, 1, backend=backend)
    with pytest.raises(ValueError):
        row_ops.im2col_rows(x[:, :0], 3, 1, backend=backend)
    with pytest.raises(ValueError, match="small"):  # 6 x 5 image, 7 x 7 kernel, no padding
        ops.im2col(x, 7, 1, 0, backend=backend)
    with pytest.raises(ValueError, match="small"):
        ops.col2im(cols, (2, 3, 2, 2), 5, 1, 0, backend=backend)
    with pytest.raises(ValueError, match="same"):
        row_ops.im2col_rows(x, 3, 0, backend=backend)
    with pytest.raises(ValueError, match="x"):
        ops.im2col(x[0], 3, 1, 1, backend=backend)


@pytest.mark.parametrize("backend", FAST_BACKENDS[:1])  # cpu, in float64: equal to rounding
@pytest.mark.parametrize("k,stride,padding,fast", [(3, 1, 1, True), (3, 1, 1, False), (1, 1, 0, True),
                                                   (3, 2, 1, True), (5, 1, 2, True), (3, 1, 0, True)])
def test_conv2d_through_the_kernels(backend, k, stride, padding, fast):
    """conv2d (every path) on the cpu backend: value and gradients equal the NumPy path's, on a
    non-contiguous input (the conv makes it contiguous before the kernels see it)."""
    from pyddpm import autograd as ag
    from pyddpm.ops import backend as backends

    rng = np.random.default_rng(3)
    x = randn(rng, (2, 3, 7, 6), np.float64).transpose(0, 1, 3, 2)  # (2, 3, 6, 7), not contiguous
    w, b, g = randn(rng, (4, 3, k, k), np.float64), randn(rng, 4, np.float64), None
    results = {}
    previous = backends.get_backend()
    try:
        for name in ("numpy", backend):
            backends.set_backend(name)
            xt, wt, bt = (ag.Tensor(a, requires_grad=True) for a in (x, w, b))
            out = ag.conv2d(xt, wt, bt, stride, padding, fast=fast)
            g = randn(np.random.default_rng(4), out.shape, np.float64) if g is None else g
            (out * g).sum().backward()
            results[name] = (out.data, xt.grad, wt.grad, bt.grad)
    finally:
        backends.set_backend(previous)
    for want, got in zip(results["numpy"], results[backend]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
