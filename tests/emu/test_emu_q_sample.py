"""Fused noising (Eq. 4, Ho et al. 2020): the exact CUDA kernel of csrc/cuda/q_sample.cu, run under the CPU
emulation of CUDA, against the NumPy oracle (pyddpm/ops/q_sample.py).

One 256-thread block per 1024-element piece of a sample. Shapes: a partial piece (n = 70), two pieces per
sample with a partial second one (n = 1100), one element per sample (the (B,) scalars). t holds index 0
and T - 1; an out-of-range t (which the dispatch refuses, and the kernel guards anyway) gives NaN and reads
no table (the ASan flavour would report the read). Float32 kernel against the float64 reference: each
element to 1e-6 of the sum of its terms' magnitudes, as in tests/test_kernels_diffusion_steps.py.
"""

import numpy as np
import pytest

from emulation import covers, nan_like
from kernels import assert_matches, q_sample_terms
from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule
from pyddpm.ops.q_sample import q_sample_reference

T = 1000
SHAPES = [(3, 2, 5, 7), (2, 1100), (5,)]
TOL = 1e-6


def tables():
    d = GaussianDiffusion(make_beta_schedule("linear", T))
    return d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod


def inputs(shape, seed):
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(shape).astype(np.float32)
    noise = (rng.standard_normal(shape) * 1.5 + 0.3).astype(np.float32)
    t = rng.integers(0, T, shape[0])
    t[0], t[-1] = 0, T - 1
    return x0, noise, t


def q_sample(emu, x0, t, noise, a, s):
    B = x0.shape[0]
    xt = nan_like(x0.shape)
    emu.q_sample_cuda(x0, t, noise, a, s, xt, B, x0.size // B, T, None)
    return xt


@covers("q_sample_kernel")
@pytest.mark.parametrize("shape", SHAPES)
def test_q_sample_matches_reference(emu, order, shape):
    x0, noise, t = inputs(shape, len(shape))
    a, s = tables()
    got = q_sample(emu, x0, t, noise, a, s)
    want = q_sample_reference(x0.astype(np.float64), t, noise.astype(np.float64), a, s)
    assert_matches(got, want, np.float32, "x_t", TOL, terms=q_sample_terms(x0, noise, t, a, s))


@covers("q_sample_kernel")
def test_out_of_range_t_gives_nan(emu, order):
    x0, noise, t = inputs((4, 1100), 9)
    t[1], t[2] = -1, T
    a, s = tables()
    got = q_sample(emu, x0, t, noise, a, s)
    assert np.isnan(got[1:3]).all()
    ok = [0, 3]
    want = q_sample_reference(x0[ok].astype(np.float64), t[ok], noise[ok].astype(np.float64), a, s)
    np.testing.assert_allclose(got[ok], want, rtol=1e-5, atol=1e-6)
