"""The fused step of every sampler: the exact CUDA kernel of csrc/cuda/sampler_step.cu, run under the CPU
emulation of CUDA, against the NumPy oracle (pyddpm/ops/sampler_step.py).

Laid out as q_sample: one 256-thread block per 1024-element piece of a sample. Shapes: a partial piece
(n = 70), two pieces per sample with a partial second one (n = 1100), and batch 1. Coefficients differ
between samples; one sample has next_from_noise = 0, where the noise is not read (NaN noise there must not
show, and the ASan flavour would report a read of a null noise), and one is an x0-model's (0, 1). Clip on
and off, x0_hat written or not (a null pointer). With a learned variance (log_variance, a null pointer where
there is none) the same, the noise scaled per element by exp(log_variance / 2); at the sample without noise a
NaN or overflowing log-variance must not show either. Float32 kernel against the float64 reference: each
element to 1e-6 of the sum of its terms' magnitudes, as in tests/test_kernels_diffusion_steps.py.
"""

import numpy as np
import pytest

from emulation import covers, nan_like
from kernels import assert_matches, sampler_step_terms
from pyddpm.ops.sampler_step import StepCoefs, sampler_step_reference

SHAPES = [(3, 2, 5, 7), (4, 1100), (1, 70)]
TOL = 1e-6


def inputs(shape, seed):
    """out, x, noise (float32) and per-sample coefficients: sample 0 without noise, sample 1 an x0-model's."""
    rng = np.random.default_rng(seed)
    B = shape[0]
    x = rng.standard_normal(shape) * 1.2
    out = x + 0.3 * rng.standard_normal(shape)  # x0_hat = c0 x + c1 out both inside and outside [-1, 1]
    noise = rng.standard_normal(shape)
    coefs = StepCoefs(rng.uniform(0.5, 3.0, B), -rng.uniform(0.2, 3.0, B), rng.uniform(-1.0, 1.0, B),
                      rng.uniform(-1.5, 1.5, B), rng.uniform(0.05, 1.0, B))
    coefs.next_from_noise[0] = 0.0
    if B > 1:
        coefs.x0_from_x[1], coefs.x0_from_out[1] = 0.0, 1.0
    return out.astype(np.float32), x.astype(np.float32), noise.astype(np.float32), coefs


def step(emu, out, x, noise, coefs, clip, want_x0=True, log_variance=None):
    B = x.shape[0]
    x_next = nan_like(x.shape)
    pred_x0 = nan_like(x.shape) if want_x0 else None
    emu.sampler_step_cuda(out, x, noise, log_variance, *coefs, x_next, pred_x0, B, x.size // B, clip, None)
    return x_next, pred_x0


@covers("sampler_step_kernel")
@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_sampler_step_matches_reference(emu, order, shape, clip):
    out, x, noise, coefs = inputs(shape, len(shape) + shape[0])
    quiet = coefs.next_from_noise == 0
    nan_noise = noise.copy()
    nan_noise[quiet] = np.nan  # the kernel must not read these
    got_next, got_x0 = step(emu, out, x, nan_noise, coefs, clip)
    f64 = [a.astype(np.float64) for a in (out, x, noise)]
    want_next, want_x0 = sampler_step_reference(*f64, coefs, clip)

    x0_terms, next_terms = sampler_step_terms(out, x, noise, coefs)
    assert_matches(got_x0, want_x0, np.float32, "x0_hat", TOL, terms=x0_terms)
    assert_matches(got_next, want_next, np.float32, "x_next", TOL, terms=next_terms)
    if clip:
        assert np.abs(got_x0).max() <= 1.0 and (np.abs(want_x0) == 1.0).any()  # the clip was exercised
    elif shape[0] > 1:
        np.testing.assert_array_equal(got_x0[1], out[1])  # the x0-model's sample: x0_hat is its output
    lone_next, _ = step(emu, out, x, nan_noise, coefs, clip, want_x0=False)
    np.testing.assert_array_equal(lone_next, got_next)  # no x0_hat (a null pointer) changes no number


@covers("sampler_step_kernel")
def test_each_sample_uses_its_own_coefficients(emu, order):
    """Each row of a batch is what a launch for that one sample gives, bit for bit."""
    out, x, noise, coefs = inputs((3, 1100), 5)
    whole = step(emu, out, x, noise, coefs, True)
    for b in range(3):
        one = step(emu, out[b:b + 1], x[b:b + 1], noise[b:b + 1], StepCoefs(*(c[b:b + 1] for c in coefs)), True)
        for w, o in zip(whole, one):
            np.testing.assert_array_equal(w[b], o[0])


@covers("sampler_step_kernel")
def test_null_noise(emu, order):
    """A null noise is read by no sample whose next_from_noise is 0; a sample that would read it (the host
    check refuses that call) gets NaN instead."""
    out, x, noise, coefs = inputs((3, 70), 6)
    quiet = coefs._replace(next_from_noise=np.zeros(3))
    got = step(emu, out, x, None, quiet, True)
    want = step(emu, out, x, np.zeros_like(noise), quiet, True)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    got_next, got_x0 = step(emu, out, x, None, coefs, True)  # samples 1 and 2 would read the noise
    assert np.isnan(got_next[1:]).all() and np.isnan(got_x0[1:]).all()
    np.testing.assert_array_equal(got_next[0], want[0][0])


@covers("sampler_step_kernel")
@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("shape", SHAPES + [(1, 1100)])
def test_learned_variance_matches_reference(emu, order, shape, clip):
    """The noise scaled per element by exp(log_variance / 2); sample 0 has no noise (batch 1: the last shape
    has), and there NaN noise, or a log-variance of NaN and 1e30 (whose exp overflows), must not show."""
    out, x, noise, coefs = inputs(shape, 3 * len(shape) + shape[0])
    if shape == (1, 1100):
        coefs.next_from_noise[0] = 0.6
    rng = np.random.default_rng(shape[-1])
    lv = rng.uniform(-4.0, 2.0, shape).astype(np.float32)  # sigma from e^-2 to e
    quiet = coefs.next_from_noise == 0
    nan_noise, bad_lv = noise.copy(), lv.copy()
    nan_noise[quiet] = np.nan
    bad_lv[quiet] = np.nan
    bad_lv.reshape(shape[0], -1)[quiet, ::2] = 1e30
    f64 = [a.astype(np.float64) for a in (out, x, noise, lv)]
    want_next, want_x0 = sampler_step_reference(*f64[:3], coefs, clip, log_variance=f64[3])
    x0_terms, next_terms = sampler_step_terms(*f64[:3], coefs, f64[3])
    results = []
    for z, v in ((nan_noise, lv), (noise, bad_lv)):
        got_next, got_x0 = step(emu, out, x, z, coefs, clip, log_variance=v)
        assert_matches(got_x0, want_x0, np.float32, "x0_hat", TOL, terms=x0_terms)
        assert_matches(got_next, want_next, np.float32, "x_next", TOL, terms=next_terms)
        lone_next, _ = step(emu, out, x, z, coefs, clip, want_x0=False, log_variance=v)
        np.testing.assert_array_equal(lone_next, got_next)
        results.append(got_next)
    np.testing.assert_array_equal(results[0], results[1])
    zero_lv = step(emu, out, x, noise, coefs, clip, log_variance=np.zeros_like(lv))
    for a, b in zip(zero_lv, step(emu, out, x, noise, coefs, clip)):  # sigma = 1: as without a log-variance
        np.testing.assert_array_equal(a, b)


@covers("sampler_step_kernel")
def test_learned_variance_with_null_noise(emu, order):
    """A null noise with a log-variance, where every next_from_noise is 0: neither is read (a NaN log-variance
    does not show), and the step is the one without either."""
    out, x, noise, coefs = inputs((3, 70), 7)
    quiet = coefs._replace(next_from_noise=np.zeros(3))
    got = step(emu, out, x, None, quiet, True, log_variance=np.full_like(x, np.nan))
    want = step(emu, out, x, None, quiet, True)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
