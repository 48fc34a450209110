"""Self-attention's row kernels: the exact CUDA kernels of csrc/cuda/attention.cu, run under the CPU emulation
of CUDA, against the NumPy oracle (pyddpm/ops/attention.py).

One warp per row, eight rows per 256-thread block. Shapes: rows not a multiple of 8 (idle warps in the last
block), one block and several, rows shorter than a warp (idle lanes), a multiple of 32 and longer than a
warp (each lane loops). Scores of ~80 and beyond, where exp overflows without the row maximum. Float32
kernels against the float64 reference, to 1e-5 (atol relative to the output's largest magnitude), as in
tests/test_kernels_attention.py.

Not tested here: out aliasing an input (the dispatch allows it); the harness copies each pointer argument
into its own buffer, so an alias cannot be expressed. tests/test_kernels_attention.py covers it on the CPU.
"""

import numpy as np
import pytest

from emulation import covers, nan_like
from pyddpm.ops.attention import softmax_backward_rows_reference, softmax_rows_reference

SHAPES = [  # (rows, n)
    (3, 5),    # one block, 5 of 8 warps idle; 27 of 32 lanes idle
    (11, 70),  # two blocks, the second with 3 of 8 warps; each lane loops up to 3 times
    (16, 32),  # two full blocks, one element per lane
]
TOL = 1e-5


def inputs(shape, seed, offset=0.0):
    rng = np.random.default_rng(seed)
    s = (rng.standard_normal(shape) * 3 + offset).astype(np.float32)
    dp = rng.standard_normal(shape).astype(np.float32)
    return s, dp


def softmax(emu, s, scale):
    rows, n = s.shape
    p = nan_like(s.shape)
    emu.softmax_rows_cuda(s, p, rows, n, scale, None)
    return p


def assert_close(got, want):
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL * max(1.0, np.abs(want).max()))


@covers("softmax_rows_kernel")
@pytest.mark.parametrize("scale", [0.5, -0.3])
@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_rows_matches_reference(emu, order, shape, scale):
    s, _ = inputs(shape, 0)
    assert_close(softmax(emu, s, scale), softmax_rows_reference(s.astype(np.float64), scale))


@covers("softmax_rows_kernel")
def test_softmax_rows_large_scores_do_not_overflow(emu, order):
    s, _ = inputs((11, 70), 1, offset=80.0)
    s[0] = 800.0       # a uniform row of huge scores: every probability 1/70
    s[1, 69] = 1000.0  # one huge score, in the last lane's third pass: a one-hot row
    p = softmax(emu, s, 1.0)
    assert np.isfinite(p).all()
    assert_close(p, softmax_rows_reference(s.astype(np.float64), 1.0))
    np.testing.assert_allclose(p[0], 1 / 70, rtol=1e-6)
    assert p[1, 69] == 1.0


@covers("softmax_backward_rows_kernel")
@pytest.mark.parametrize("scale", [0.5, -0.3])
@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_backward_rows_matches_reference(emu, order, shape, scale):
    s, dp = inputs(shape, 2)
    p = softmax_rows_reference(s.astype(np.float64), scale).astype(np.float32)
    rows, n = shape
    ds = nan_like(shape)
    emu.softmax_backward_rows_cuda(p, dp, ds, rows, n, scale, None)
    assert_close(ds, softmax_backward_rows_reference(p.astype(np.float64), dp.astype(np.float64), scale))
