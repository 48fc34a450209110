"""im2col / col2im and the row layout of a convolution (the copies behind Eq. 14's network, Ho et al. 2020):
the exact CUDA kernels of csrc/cuda/im2col.cu, run under the CPU emulation of CUDA, against the NumPy
references (pyddpm/ops/im2col.py).

One thread per output element, 256 per block. Images (1, 2, 5, 8) and (2, 3, 6, 9): non-square, one block
and several for every kernel, never a multiple of 256. Batched: k = 1, 3, 5; stride 1 and 2; padding 0, 1,
2; stride 2 without padding leaves the last column (of the first image) and the last row (of the second)
unread, so col2im writes zeros there. Row layout:
"same" padding, k = 1, 3, 5 (padding 0, 1, 2); its column gradients have nonzero junk columns, which both
sides must sum alike. The copies must match the reference exactly; the col2im sums (up to 25 float32 terms
of size ~1) to rtol 1e-6, atol 2e-5 against the float64 reference, as in tests/test_kernels_im2col.py.
"""

import numpy as np
import pytest

from emulation import covers, nan_like
from pyddpm.ops import im2col as ops
from pyddpm.ops import im2col_rows as row_ops

SHAPES = [(1, 2, 5, 8), (2, 3, 6, 9)]
GEOMETRIES = [(1, 1, 0), (3, 1, 1), (3, 2, 0), (3, 2, 1), (5, 2, 2)]  # (k, stride, padding)
SAME = [(1, 0), (3, 1), (5, 2)]  # (k, padding) of the row layout
SUM_TOL = dict(rtol=1e-6, atol=2e-5)


def randn(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@covers("im2col_kernel")
@pytest.mark.parametrize("k,stride,padding", GEOMETRIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_im2col_matches_reference(emu, order, shape, k, stride, padding):
    x = randn(shape, sum(shape) + k)
    want = ops.im2col_reference(x, k, stride, padding)
    cols = nan_like(want.shape)
    emu.im2col_cuda(x, cols, *shape, k, stride, padding, None)
    np.testing.assert_array_equal(cols, want)


@covers("col2im_kernel")
@pytest.mark.parametrize("k,stride,padding", GEOMETRIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_col2im_matches_reference(emu, order, shape, k, stride, padding):
    B, C, H, W = shape
    Ho, Wo = ops.output_size(H, k, stride, padding), ops.output_size(W, k, stride, padding)
    cols = randn((B, C * k * k, Ho * Wo), sum(shape) + k + 1)
    x = nan_like(shape)
    emu.col2im_cuda(cols, x, *shape, k, stride, padding, None)
    np.testing.assert_allclose(x, ops.col2im_reference(cols.astype(np.float64), shape, k, stride, padding), **SUM_TOL)


@covers("im2col_rows_kernel")
@pytest.mark.parametrize("k,padding", SAME)
@pytest.mark.parametrize("shape", SHAPES)
def test_im2col_rows_matches_reference(emu, order, shape, k, padding):
    x = randn(shape, sum(shape) + k + 2)
    want = row_ops.im2col_rows_reference(x, k, padding)
    cols = nan_like(want.shape)
    emu.im2col_rows_cuda(x, cols, *shape, k, padding, None)
    np.testing.assert_array_equal(cols, want)


@covers("col2im_rows_kernel")
@pytest.mark.parametrize("k,padding", SAME)
@pytest.mark.parametrize("shape", SHAPES)
def test_col2im_rows_matches_reference(emu, order, shape, k, padding):
    B, C, H, W = shape
    dcols = randn((C * k * k, B * H * (W + 2 * padding)), sum(shape) + k + 3)  # junk columns nonzero too
    x = nan_like(shape)
    emu.col2im_rows_cuda(dcols, x, *shape, k, padding, None)
    np.testing.assert_allclose(x, row_ops.col2im_rows_reference(dcols.astype(np.float64), shape, k, padding), **SUM_TOL)


@covers("rows_to_nchw_kernel")
@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("shape", SHAPES)
def test_rows_to_nchw_matches_reference(emu, order, shape, padding):
    B, C, H, W = shape
    y = randn((C, B * H * (W + 2 * padding)), sum(shape) + padding)
    out = nan_like(shape)
    emu.rows_to_nchw_cuda(y, out, *shape, padding, None)
    np.testing.assert_array_equal(out, row_ops.rows_to_nchw_reference(y, B, H, W, padding))


@covers("nchw_to_rows_kernel")
@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("shape", SHAPES)
def test_nchw_to_rows_matches_reference(emu, order, shape, padding):
    g = randn(shape, sum(shape) + padding + 1)
    want = row_ops.nchw_to_rows_reference(g, padding)
    out = nan_like(want.shape)
    emu.nchw_to_rows_cuda(g, out, *shape, padding, None)
    np.testing.assert_array_equal(out, want)
