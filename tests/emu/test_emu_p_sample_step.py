"""The fused reverse step (Alg. 2, Ho et al. 2020): the exact CUDA kernel of csrc/cuda/p_sample_step.cu, run
under the CPU emulation of CUDA, against the NumPy oracle (pyddpm/ops/p_sample_step.py).

Laid out as q_sample: one 256-thread block per 1024-element piece of a sample. Shapes: a partial piece
(n = 70) and two pieces per sample with a partial second one (n = 1100); mean types eps and x0, clip on
and off, pred_x0 written or not (a null pointer); t holds index 0, where the noise is not read (NaN noise
there must not show), and T - 1; an out-of-range t gives NaN. Float32 kernel against the float64
reference: each element to 1e-6 of the sum of its terms' magnitudes, as in
tests/test_kernels_diffusion_steps.py.
"""

import numpy as np
import pytest

from emulation import covers, nan_like
from kernels import assert_matches, step_terms
from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule
from pyddpm.ops.p_sample_step import p_sample_step_reference

T = 1000
SHAPES = [(3, 2, 5, 7), (2, 1100)]
TOL = 1e-6


def diffusion(mean_type):
    return GaussianDiffusion(make_beta_schedule("linear", T), mean_type=mean_type, var_type="fixedlarge")


def inputs(shape, mean_type, seed):
    rng = np.random.default_rng(seed)
    xt = rng.standard_normal(shape) * 1.2
    noise = rng.standard_normal(shape)
    # eps outputs near x_t put pred_x0 = r x_t - rm1 eps both inside and outside [-1, 1].
    out = xt + 0.3 * rng.standard_normal(shape) if mean_type == "eps" else 1.5 * rng.standard_normal(shape)
    t = rng.integers(0, T, shape[0])
    t[0], t[-1] = 0, T - 1
    return out.astype(np.float32), xt.astype(np.float32), noise.astype(np.float32), t


def step(emu, out, xt, t, noise, tables, mean_type, clip, want_x0=True):
    B = xt.shape[0]
    x_prev = nan_like(xt.shape)
    pred_x0 = nan_like(xt.shape) if want_x0 else None
    emu.p_sample_step_cuda(out, xt, t, noise, *tables, x_prev, pred_x0, B, xt.size // B, T, mean_type == "eps",
                           clip, None)
    return x_prev, pred_x0


@covers("p_sample_step_kernel")
@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("mean_type", ["eps", "x0"])
@pytest.mark.parametrize("shape", SHAPES)
def test_p_sample_step_matches_reference(emu, order, shape, mean_type, clip):
    out, xt, noise, t = inputs(shape, mean_type, len(shape))
    tb = diffusion(mean_type).step_tables
    nan_noise = noise.copy()
    nan_noise[t == 0] = np.nan  # index 0: the kernel must not read the noise
    got_prev, got_x0 = step(emu, out, xt, t, nan_noise, tb, mean_type, clip)
    f64 = [a.astype(np.float64) for a in (out, xt, noise)]
    want_prev, want_x0 = p_sample_step_reference(f64[0], f64[1], t, f64[2], tb, mean_type, clip)

    x0_terms, prev_terms = step_terms(out, xt, noise, t, tb, mean_type)
    assert_matches(got_x0, want_x0, np.float32, "pred_x0", TOL, terms=x0_terms)
    assert_matches(got_prev, want_prev, np.float32, "x_prev", TOL, terms=prev_terms)
    if clip:
        assert np.abs(got_x0).max() <= 1.0 and (np.abs(want_x0) == 1.0).any()  # the clip was exercised
    if mean_type == "x0" and not clip:
        np.testing.assert_array_equal(got_x0, out)
    lone_prev, _ = step(emu, out, xt, t, nan_noise, tb, mean_type, clip, want_x0=False)
    np.testing.assert_array_equal(lone_prev, got_prev)  # no pred_x0 (a null pointer) changes no number


@covers("p_sample_step_kernel")
def test_out_of_range_t_gives_nan(emu, order):
    out, xt, noise, t = inputs((4, 70), "eps", 9)
    t[1], t[2] = -1, T
    tb = diffusion("eps").step_tables
    got_prev, got_x0 = step(emu, out, xt, t, noise, tb, "eps", True)
    assert np.isnan(got_prev[1:3]).all() and np.isnan(got_x0[1:3]).all()
    ok = [0, 3]
    want_prev, want_x0 = p_sample_step_reference(out[ok], xt[ok], t[ok], noise[ok], tb)
    np.testing.assert_allclose(got_prev[ok], want_prev, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_x0[ok], want_x0, rtol=1e-5, atol=1e-5)
