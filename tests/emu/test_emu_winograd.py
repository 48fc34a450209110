"""Winograd F(2x2, 3x3) tile transforms (the 3x3 convolutions of Eq. 14's network, Ho et al. 2020; Lavin &
Gray 2016): the exact CUDA kernels of csrc/cuda/winograd.cu, run under the CPU emulation of CUDA, against the
NumPy references (pyddpm/ops/winograd.py).

One thread per (channel, tile), or per 2x2 quad of the padded image for the input gradient; 256 per block.
Images (B, C, H, W): a 1x1 image (one tile, three of its outputs dropped, one quad), batch 1 with odd H and
W, a single row, even H with odd W, and (2, 3, 13, 16), whose 336 tiles and 378 quads take two blocks, the
second partial (no size is a multiple of 256). The output transform with and without a bias. float32 against
the float64 reference of the same inputs, to the float32 tolerance of tests/test_kernels_winograd.py: each
value is a sum of at most 36 terms with coefficients +-1.
"""

import numpy as np
import pytest

from emulation import covers, nan_like
from pyddpm.ops import winograd as wg

SHAPES = [(1, 1, 1, 1), (1, 2, 5, 7), (3, 2, 1, 4), (2, 3, 6, 9), (2, 3, 13, 16)]
TOL = dict(rtol=1e-5, atol=1e-5)


def randn(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def tiles_of(shape):
    B, _, H, W = shape
    return B * wg.tiles(H) * wg.tiles(W)


@covers("winograd_input_kernel")
@pytest.mark.parametrize("shape", SHAPES)
def test_input_matches_reference(emu, order, shape):
    x = randn(shape, sum(shape))
    v = nan_like((16, shape[1], tiles_of(shape)))
    emu.winograd_input_cuda(x, v, *shape, None)
    np.testing.assert_allclose(v, wg.winograd_input_reference(x.astype(np.float64)), **TOL)


@covers("winograd_input_grad_kernel")
@pytest.mark.parametrize("shape", SHAPES)
def test_input_grad_matches_reference(emu, order, shape):
    dv = randn((16, shape[1], tiles_of(shape)), sum(shape) + 1)
    dx = nan_like(shape)
    emu.winograd_input_grad_cuda(dv, dx, *shape, None)
    np.testing.assert_allclose(dx, wg.winograd_input_grad_reference(dv.astype(np.float64), shape), **TOL)


@covers("winograd_output_kernel")
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_output_matches_reference(emu, order, shape, bias):
    K = shape[1]
    m = randn((16, K, tiles_of(shape)), sum(shape) + 2)
    b = randn((K,), sum(shape) + 3) if bias else None
    y = nan_like(shape)
    emu.winograd_output_cuda(m, b, y, *shape, None)
    want = wg.winograd_output_reference(m.astype(np.float64), shape, None if b is None else b.astype(np.float64))
    np.testing.assert_allclose(y, want, **TOL)


@covers("winograd_output_grad_kernel")
@pytest.mark.parametrize("shape", SHAPES)
def test_output_grad_matches_reference(emu, order, shape):
    dy = randn(shape, sum(shape) + 4)
    dm = nan_like((16, shape[1], tiles_of(shape)))
    emu.winograd_output_grad_cuda(dy, dm, *shape, None)
    np.testing.assert_allclose(dm, wg.winograd_output_grad_reference(dy.astype(np.float64)), **TOL)
