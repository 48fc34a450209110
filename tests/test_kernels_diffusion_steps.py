"""Fused noising (Eq. 4) and the fused reverse step (Alg. 2): each fused backend against the NumPy
reference in float64, GaussianDiffusion's use of them, and the argument checks."""

import numpy as np
import pytest

from kernels import (FAST_BACKENDS, assert_matches, q_sample_terms, randn, skip_float64_on_cuda, step_terms,
                     to_backend, to_numpy)
from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule
from pyddpm.ops import backend as backends
from pyddpm.ops.backend import extension
from pyddpm.ops.p_sample_step import p_sample_step
from pyddpm.ops.q_sample import q_sample

T = 1000
# Batch 1, odd sizes, 2-D (B, D) and 1-D (B,) data, 1x1 images, and a sample larger than one CPU piece
# (8192 elements) and not a multiple of it or of a CUDA block's 1024.
SHAPES = [(1, 3, 5, 7), (4, 3, 8, 8), (3, 17), (5,), (2, 1, 1, 1), (2, 3, 61, 47)]
# Allowed error per element, relative to the sum of the magnitudes of the terms that make it: float32
# rounds the coefficients and each product and sum (a few ulps of 6e-8); float64 only the latter.
TOL = {np.float32: 1e-6, np.float64: 1e-14}


def _diffusion(var_type="fixedlarge", mean_type="eps"):
    return GaussianDiffusion(make_beta_schedule("linear", T), mean_type=mean_type, var_type=var_type)


def _timesteps(B, rng, first):
    """Indices with both ends present (0 first or T-1 first, so batch 1 sees each), the rest random."""
    t = rng.integers(0, T, B)
    t[0], t[-1] = (0, T - 1) if first == 0 else (T - 1, 0)
    if B == 1:
        t[0] = first
    return t


@pytest.fixture
def restore_backend():
    previous = backends.get_backend()
    yield
    backends.set_backend(previous)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("first", [0, T - 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_q_sample_matches_reference(backend, shape, first, dtype):
    skip_float64_on_cuda(backend, dtype)
    d = _diffusion()
    rng = np.random.default_rng(sum(shape) + first)
    x0, noise = randn(rng, shape, np.float64), randn(rng, shape, np.float64, scale=1.5, offset=0.3)
    t = _timesteps(shape[0], rng, first)
    tables = (d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod)
    want = q_sample(x0, t, noise, *tables, backend="numpy")
    x0b, noiseb = to_backend(backend, x0.astype(dtype), noise.astype(dtype))
    got = q_sample(x0b, t, noiseb, *tables, backend=backend)
    assert_matches(got, want, dtype, f"q_sample on {backend}", TOL[dtype],
                   terms=q_sample_terms(x0, noise, t, *tables))


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("first", [0, T - 1])
@pytest.mark.parametrize("mean_type", ["eps", "x0"])
@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("var_type", ["fixedlarge", "fixedsmall"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_p_sample_step_matches_reference(backend, shape, first, mean_type, clip, var_type, dtype):
    skip_float64_on_cuda(backend, dtype)
    d = _diffusion(var_type, mean_type)
    rng = np.random.default_rng(sum(shape) + first)
    xt, noise = randn(rng, shape, np.float64, scale=1.2), randn(rng, shape, np.float64)
    # eps outputs near x_t make pred_x0 = r x_t - rm1 eps both inside and outside [-1, 1] at every t.
    out = xt + 0.3 * randn(rng, shape, np.float64) if mean_type == "eps" else randn(rng, shape, np.float64, 1.5)
    t = _timesteps(shape[0], rng, first)
    tb = d.step_tables
    want_prev, want_x0 = p_sample_step(out, xt, t, noise, tb, mean_type, clip, backend="numpy")
    args = to_backend(backend, *(a.astype(dtype) for a in (out, xt, noise)))
    got_prev, got_x0 = p_sample_step(args[0], args[1], t, args[2], tb, mean_type, clip, backend=backend)
    lone_prev, none = p_sample_step(args[0], args[1], t, args[2], tb, mean_type, clip, False, backend=backend)

    x0_terms, prev_terms = step_terms(out, xt, noise, t, tb, mean_type)
    assert_matches(got_x0, want_x0, dtype, f"pred_x0 on {backend}", TOL[dtype], terms=x0_terms)
    assert_matches(got_prev, want_prev, dtype, f"x_prev on {backend}", TOL[dtype], terms=prev_terms)
    assert none is None
    np.testing.assert_array_equal(to_numpy(lone_prev), to_numpy(got_prev))  # the flag changes no number
    if clip:
        assert np.abs(to_numpy(got_x0)).max() <= 1.0
    if mean_type == "x0" and not clip:
        np.testing.assert_array_equal(to_numpy(got_x0), to_numpy(args[0]))


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_noise_at_index_zero(backend, dtype):
    """Alg. 2: z = 0 at index 0 (paper t = 1): x_prev there is the same bits whatever the noise."""
    skip_float64_on_cuda(backend, dtype)
    d = _diffusion()
    rng = np.random.default_rng(3)
    shape = (4, 2, 5, 3)
    out, xt, noise = (randn(rng, shape, dtype) for _ in range(3))
    t = np.array([0, 1, 0, T - 1])
    out, xt, noise, zeros = to_backend(backend, out, xt, noise, np.zeros(shape, dtype))
    with_noise, _ = p_sample_step(out, xt, t, noise, d.step_tables, backend=backend)
    without, _ = p_sample_step(out, xt, t, zeros, d.step_tables, backend=backend)
    with_noise, without = to_numpy(with_noise), to_numpy(without)
    np.testing.assert_array_equal(with_noise[t == 0], without[t == 0])
    assert np.all(with_noise[t > 0] != without[t > 0])
    if backend != "numpy":  # the kernels do not even read the noise at index 0
        noise = to_numpy(noise).copy()
        noise[t == 0] = np.nan
        nan_noise, _ = p_sample_step(out, xt, t, *to_backend(backend, noise), d.step_tables, backend=backend)
        np.testing.assert_array_equal(to_numpy(nan_noise)[t == 0], without[t == 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_references_are_gaussian_diffusions_expressions(dtype):
    """The references are GaussianDiffusion's expressions, bit for bit: Eq. 4, and the diffusion layer's
    reverse mean (pyddpm.reverse_step) plus sigma_t z."""
    d = _diffusion("fixedsmall")
    rng = np.random.default_rng(4)
    shape = (5, 3, 4, 4)
    x0, noise, out = (randn(rng, shape, dtype) for _ in range(3))
    t = np.array([0, 3, 500, T - 1, 1])
    xt = q_sample(x0, t, noise, d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod, backend="numpy")
    np.testing.assert_array_equal(xt, d._extract(d.sqrt_alphas_cumprod, t, x0) * x0
                                  + d._extract(d.sqrt_one_minus_alphas_cumprod, t, x0) * noise)
    p = d.p_mean_variance(out, xt, t, clip_denoised=True)
    x_prev, pred_x0 = p_sample_step(out, xt, t, noise, d.step_tables, backend="numpy")
    keep = (t > 0).astype(dtype).reshape(-1, 1, 1, 1)
    np.testing.assert_array_equal(pred_x0, p["pred_x0"])
    np.testing.assert_array_equal(x_prev, p["mean"] + keep * np.exp(0.5 * p["log_variance"]) * noise)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_gaussian_diffusion_runs_on_the_default_backend(backend, restore_backend):
    """q_sample, p_sample and the sampling loop go through the kernels when a run picks a backend."""
    d = _diffusion()
    rng = np.random.default_rng(5)
    shape = (3, 1, 6, 5)
    x0, noise, out = (randn(rng, shape, np.float32) for _ in range(3))
    t = np.array([0, 7, T - 1], dtype=np.int32)  # any integer dtype: GaussianDiffusion converts it
    want_xt = d.q_sample(x0, t, noise)
    want = d.p_sample(out, want_xt, t, noise)
    small = GaussianDiffusion(make_beta_schedule("linear", 8))
    want_loop = small.p_sample_loop(lambda x, t_: 0.1 * x, shape, np.random.default_rng(0), progress=False)
    backends.set_backend(backend)
    x0, noise, out = to_backend(backend, x0, noise, out)
    xt = d.q_sample(x0, t, noise)
    got = d.p_sample(out, xt, t, noise)
    loop = small.p_sample_loop(lambda x, t_: 0.1 * x, shape, np.random.default_rng(0), progress=False,
                               xp=backends.array_library(backend))
    np.testing.assert_allclose(to_numpy(xt), want_xt, rtol=1e-6, atol=1e-6)
    for key in ("sample", "pred_x0"):
        np.testing.assert_allclose(to_numpy(got[key]), want[key], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(loop), want_loop, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
def test_bad_input_raises(backend):
    d = _diffusion()
    rng = np.random.default_rng(6)
    x, noise = to_backend(backend, randn(rng, (2, 3, 4), np.float32), randn(rng, (2, 3, 4), np.float32))
    t = np.array([0, T - 1])
    qt = (d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod)

    def q(x=x, t=t, noise=noise, tables=qt):
        return q_sample(x, t, noise, *tables, backend=backend)

    def p(t=t, out=x, mean_type="eps"):
        return p_sample_step(out, x, t, noise, d.step_tables, mean_type, backend=backend)

    for bad_t in (np.array([0, T]), np.array([-1, 0])):
        with pytest.raises(ValueError, match="t must lie in"):
            q(t=bad_t)
        with pytest.raises(ValueError, match="t must lie in"):
            p(t=bad_t)
    for bad_t in (t.astype(np.int32), t.astype(np.float64)):
        with pytest.raises(TypeError, match="t must be int64"):
            q(t=bad_t)
        with pytest.raises(TypeError, match="t must be int64"):
            p(t=bad_t)
    with pytest.raises(ValueError, match="t must have shape"):
        q(t=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="noise"):
        q(noise=noise[:1])
    with pytest.raises(ValueError, match="model_output"):
        p(out=x[:, :2])
    with pytest.raises(TypeError, match="noise"):
        q(noise=noise.astype(np.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        q(x=x.astype(np.int32), noise=noise.astype(np.int32))
    with pytest.raises(ValueError, match="non-empty"):
        q(x=x[:0], noise=noise[:0], t=t[:0])
    with pytest.raises(ValueError, match="non-empty"):
        q(x=x[:, :0], noise=noise[:, :0])
    with pytest.raises(ValueError, match="non-empty"):
        q(x=x[0, 0, 0], noise=noise[0, 0, 0], t=t[:0])
    with pytest.raises(TypeError, match="float64"):
        q(tables=(qt[0].astype(np.float32), qt[1]))
    with pytest.raises(ValueError, match="table 1"):
        q(tables=(qt[0], qt[1][:-1]))
    with pytest.raises(ValueError, match="mean_type"):
        p(mean_type="v")
    if backend != "numpy":  # the reference takes any layout; the kernels take C-contiguous arrays only
        with pytest.raises(TypeError, match="contiguous"):
            q(x=x[:, :, ::-1])
        with pytest.raises(TypeError, match="contiguous"):
            p(out=x[:, :, ::-1])


@pytest.mark.skipif(not backends.available("cpu"), reason="pyddpm._cpu is not built (pip install -e .)")
def test_cpu_extension_checks_t_itself():
    """Called directly, past the Python checks, the extension still refuses a t that would read out of bounds."""
    d = _diffusion()
    x = np.ones((2, 3), np.float32)
    ext = extension("cpu")
    for bad_t in (np.array([0, T]), np.array([-1, 0])):
        with pytest.raises(ValueError, match=r"t\[\d\] = -?\d+ is outside"):
            ext.q_sample(x, bad_t, x, d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod)
        with pytest.raises(ValueError, match=r"t\[\d\] = -?\d+ is outside"):
            ext.p_sample_step(x, x, bad_t, x, *d.step_tables, True, True, True)
    with pytest.raises(TypeError, match="t must be int64"):
        ext.q_sample(x, np.array([0, 1], np.int32), x, d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod)
    with pytest.raises(ValueError, match="sqrt_one_minus_alphas_cumprod"):
        ext.q_sample(x, np.array([0, 1]), x, d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod[:5])
    with pytest.raises(TypeError, match="contiguous"):
        ext.q_sample(x, np.array([0, 1, 2, 3])[::2], x, d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod)
