"""Fused noising (Eq. 4) and the fused step of every sampler (Alg. 2 among them): each fused backend against
the NumPy reference in float64, GaussianDiffusion's use of them, and the argument checks."""

import numpy as np
import pytest

from kernels import (FAST_BACKENDS, assert_matches, q_sample_terms, randn, sampler_step_terms, skip_float64_on_cuda,
                     to_backend, to_numpy)
from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule
from pyddpm.ops import backend as backends
from pyddpm.ops.backend import extension
from pyddpm.ops.q_sample import q_sample
from pyddpm.ops.sampler_step import StepCoefs, sampler_step
from pyddpm.reverse_step import step_coefs

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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_q_sample_reference_is_gaussian_diffusions_expression(dtype):
    """q_sample's reference is GaussianDiffusion's Eq. 4, bit for bit (the reverse step: see
    test_reverse_step_is_gaussian_diffusions_expression)."""
    d = _diffusion("fixedsmall")
    rng = np.random.default_rng(4)
    shape = (5, 3, 4, 4)
    x0, noise = (randn(rng, shape, dtype) for _ in range(2))
    t = np.array([0, 3, 500, T - 1, 1])
    xt = q_sample(x0, t, noise, d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod, backend="numpy")
    np.testing.assert_array_equal(xt, d._extract(d.sqrt_alphas_cumprod, t, x0) * x0
                                  + d._extract(d.sqrt_one_minus_alphas_cumprod, t, x0) * noise)


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
def test_q_sample_bad_input_raises(backend):
    d = _diffusion()
    rng = np.random.default_rng(6)
    x, noise = to_backend(backend, randn(rng, (2, 3, 4), np.float32), randn(rng, (2, 3, 4), np.float32))
    t = np.array([0, T - 1])
    qt = (d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod)

    def q(x=x, t=t, noise=noise, tables=qt):
        return q_sample(x, t, noise, *tables, backend=backend)

    for bad_t in (np.array([0, T]), np.array([-1, 0])):
        with pytest.raises(ValueError, match="t must lie in"):
            q(t=bad_t)
    for bad_t in (t.astype(np.int32), t.astype(np.float64)):
        with pytest.raises(TypeError, match="t must be int64"):
            q(t=bad_t)
    with pytest.raises(ValueError, match="t must have shape"):
        q(t=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="noise"):
        q(noise=noise[:1])
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
    if backend != "numpy":  # the reference takes any layout; the kernels take C-contiguous arrays only
        with pytest.raises(TypeError, match="contiguous"):
            q(x=x[:, :, ::-1])


@pytest.mark.skipif(not backends.available("cpu"), reason="pyddpm._cpu is not built (pip install -e .)")
def test_cpu_extension_checks_t_itself():
    """Called directly, past the Python checks, the extension still refuses a t that would read out of bounds."""
    d = _diffusion()
    x = np.ones((2, 3), np.float32)
    ext = extension("cpu")
    for bad_t in (np.array([0, T]), np.array([-1, 0])):
        with pytest.raises(ValueError, match=r"t\[\d\] = -?\d+ is outside"):
            ext.q_sample(x, bad_t, x, d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod)
    with pytest.raises(TypeError, match="t must be int64"):
        ext.q_sample(x, np.array([0, 1], np.int32), x, d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod)
    with pytest.raises(ValueError, match="sqrt_one_minus_alphas_cumprod"):
        ext.q_sample(x, np.array([0, 1]), x, d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod[:5])
    with pytest.raises(TypeError, match="contiguous"):
        ext.q_sample(x, np.array([0, 1, 2, 3])[::2], x, d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod)


# --- The fused step of every sampler ---------------------------------------------------------------------

def _random_coefs(rng, B, noiseless=0):
    """Per-sample coefficients that differ between samples, of both signs where a sampler may give both
    (DDIM's and the ODE's next_from_x0 and next_from_x), with next_from_noise 0 for sample ``noiseless``
    (Alg. 2's last step, a deterministic sampler) and, from three samples on, one x0-model sample (0, 1)."""
    sign = np.where(rng.random(B) < 0.5, -1.0, 1.0)
    coefs = StepCoefs(rng.uniform(0.5, 3.0, B), sign * rng.uniform(0.2, 3.0, B), rng.uniform(-1.0, 1.0, B),
                      rng.uniform(-1.5, 1.5, B), rng.uniform(0.05, 1.0, B))
    coefs.next_from_noise[noiseless] = 0.0
    if B >= 3:
        coefs.x0_from_x[1], coefs.x0_from_out[1] = 0.0, 1.0
    return coefs


def _step_inputs(rng, shape):
    """x, noise and a model output near x, so that x0_hat = c0 x + c1 out lands inside and outside [-1, 1]."""
    x, noise = randn(rng, shape, np.float64, scale=1.2), randn(rng, shape, np.float64)
    return x + 0.3 * randn(rng, shape, np.float64), x, noise


# Random per-sample coefficients, and Alg. 2's for each model and variance type (pyddpm.reverse_step.step_coefs).
KINDS = [("random", None), ("eps", "fixedlarge"), ("eps", "fixedsmall"), ("x0", "fixedlarge"), ("x0", "fixedsmall")]


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("first", [0, T - 1])
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: "-".join(filter(None, k)))
@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sampler_step_matches_reference(backend, shape, first, kind, clip, dtype):
    skip_float64_on_cuda(backend, dtype)
    rng = np.random.default_rng(sum(shape) + first)
    out, x, noise = _step_inputs(rng, shape)
    mean_type, var_type = kind
    if mean_type == "random":
        coefs = _random_coefs(rng, shape[0], noiseless=0 if first == 0 else -1)
        if shape[0] == 1 and first != 0:
            coefs.next_from_noise[0] = 0.7  # batch 1: one case with noise, one without
    else:  # index 0 (no noise) and T - 1 both present; an x0-model's output on the data's scale
        coefs = StepCoefs(*step_coefs(_diffusion(var_type).step_tables, _timesteps(shape[0], rng, first), mean_type))
        out = out if mean_type == "eps" else randn(rng, shape, np.float64, 1.5)
    want_next, want_x0 = sampler_step(out, x, noise, coefs, clip, backend="numpy")
    args = to_backend(backend, *(a.astype(dtype) for a in (out, x, noise)))
    got_next, got_x0 = sampler_step(*args, coefs, clip, backend=backend)
    lone_next, none = sampler_step(*args, coefs, clip, False, backend=backend)

    x0_terms, next_terms = sampler_step_terms(out, x, noise, coefs)
    assert_matches(got_x0, want_x0, dtype, f"x0_hat on {backend}", TOL[dtype], terms=x0_terms)
    assert_matches(got_next, want_next, dtype, f"x_next on {backend}", TOL[dtype], terms=next_terms)
    assert none is None
    np.testing.assert_array_equal(to_numpy(lone_next), to_numpy(got_next))  # the flag changes no number
    if clip:
        assert np.abs(to_numpy(got_x0)).max() <= 1.0
    x0_model = np.flatnonzero((coefs.x0_from_x == 0) & (coefs.x0_from_out == 1))
    if not clip:  # an x0-model's sample: x0_hat is its output, bit for bit
        np.testing.assert_array_equal(to_numpy(got_x0)[x0_model], to_numpy(args[0])[x0_model])


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize("mean_type", ["eps", "x0"])
@pytest.mark.parametrize("var_type", ["fixedlarge", "fixedsmall"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reverse_step_is_gaussian_diffusions_expression(backend, mean_type, var_type, dtype, restore_backend):
    """GaussianDiffusion.p_sample (Alg. 2 through sampler_step) is p_mean_variance's mean (Eq. 7 at Eq. 15's
    x_0, clipped) plus sigma_t z with sigma_t = exp(0.5 log sigma_t^2) from the float64 table, rounded once,
    and z = 0 at index 0: bit for bit on numpy and cpu (the same products and sums in the same order); on
    cuda, where the compiler may fuse a product and a sum, to the rounding of the terms."""
    skip_float64_on_cuda(backend, dtype)
    d = _diffusion(var_type, mean_type)
    rng = np.random.default_rng(4)
    shape = (5, 3, 4, 4)
    out, xt, noise = (randn(rng, shape, dtype, scale=1.3) for _ in range(3))
    t = np.array([0, 3, 500, T - 1, 1])
    p = d.p_mean_variance(out, xt, t, clip_denoised=True)
    sigma = d._extract(np.exp(0.5 * d.model_log_variance), t, xt) * (t > 0).astype(dtype).reshape(-1, 1, 1, 1)
    want_next, want_x0 = p["mean"] + sigma * noise, p["pred_x0"]
    backends.set_backend(backend)
    got = d.p_sample(*to_backend(backend, out, xt), t, *to_backend(backend, noise))
    if backend == "cuda":
        f64 = [a.astype(np.float64) for a in (out, xt, noise)]
        x0_terms, next_terms = sampler_step_terms(f64[0], f64[1], f64[2],
                                                  StepCoefs(*step_coefs(d.step_tables, t, mean_type)))
        assert_matches(got["pred_x0"], want_x0, dtype, "pred_x0", TOL[dtype], terms=x0_terms)
        assert_matches(got["sample"], want_next, dtype, "sample", TOL[dtype], terms=next_terms)
    else:
        np.testing.assert_array_equal(got["pred_x0"], want_x0)
        np.testing.assert_array_equal(got["sample"], want_next)


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_noise_at_index_zero(backend, dtype, restore_backend):
    """Alg. 2: z = 0 at index 0 (paper t = 1): p_sample there gives the same bits whatever the noise holds, NaN
    included (its next_from_noise is exactly 0, so the noise is not read)."""
    skip_float64_on_cuda(backend, dtype)
    d = _diffusion()
    rng = np.random.default_rng(3)
    shape = (4, 2, 5, 3)
    out, xt, noise = (randn(rng, shape, dtype) for _ in range(3))
    t = np.array([0, 1, 0, T - 1])
    nan_noise = noise.copy()
    nan_noise[t == 0] = np.nan
    backends.set_backend(backend)
    out, xt, noise, nan_noise, zeros = to_backend(backend, out, xt, noise, nan_noise, np.zeros(shape, dtype))
    with_noise, without, with_nan = (to_numpy(d.p_sample(out, xt, t, z)["sample"]) for z in (noise, zeros, nan_noise))
    np.testing.assert_array_equal(with_noise[t == 0], without[t == 0])
    np.testing.assert_array_equal(with_nan[t == 0], without[t == 0])
    assert np.all(with_noise[t > 0] != without[t > 0])


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noise_not_read_where_next_from_noise_is_zero(backend, dtype):
    """A sample whose next_from_noise is 0 gets the same bits whatever its noise holds, NaN included."""
    skip_float64_on_cuda(backend, dtype)
    rng = np.random.default_rng(3)
    shape = (4, 2, 5, 3)
    out, x, noise = (a.astype(dtype) for a in _step_inputs(rng, shape))
    coefs = _random_coefs(rng, 4)
    coefs.next_from_noise[2] = 0.0
    quiet = coefs.next_from_noise == 0
    nan_noise = noise.copy()
    nan_noise[quiet] = np.nan
    out, x, noise, nan_noise, zeros = to_backend(backend, out, x, noise, nan_noise, np.zeros(shape, dtype))
    with_noise, without, with_nan = (to_numpy(sampler_step(out, x, z, coefs, backend=backend)[0])
                                     for z in (noise, zeros, nan_noise))
    np.testing.assert_array_equal(with_noise[quiet], without[quiet])
    np.testing.assert_array_equal(with_nan[quiet], without[quiet])
    assert np.all(with_noise[~quiet] != without[~quiet])
    np.testing.assert_array_equal(with_nan[~quiet], with_noise[~quiet])


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noise_may_be_none_only_without_noise_terms(backend, dtype):
    """noise=None is the zero-noise step where every next_from_noise is 0, and a ValueError otherwise."""
    skip_float64_on_cuda(backend, dtype)
    rng = np.random.default_rng(8)
    shape = (3, 4, 5)
    out, x, _ = (a.astype(dtype) for a in _step_inputs(rng, shape))
    coefs = _random_coefs(rng, 3)
    quiet = coefs._replace(next_from_noise=np.zeros(3))
    out, x, zeros = to_backend(backend, out, x, np.zeros(shape, dtype))
    got = sampler_step(out, x, None, quiet, backend=backend)
    want = sampler_step(out, x, zeros, quiet, backend=backend)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(to_numpy(g), to_numpy(w))
    with pytest.raises(ValueError, match="noise is None but coefs.next_from_noise is not 0"):
        sampler_step(out, x, None, coefs, backend=backend)


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_sample_uses_its_own_coefficients(backend, dtype):
    """With coefficients that differ between samples, each row is what a batch of that one sample gives, bit
    for bit. A sample spans two CPU pieces and nine CUDA blocks (n = 8601)."""
    skip_float64_on_cuda(backend, dtype)
    rng = np.random.default_rng(9)
    shape = (3, 3, 61, 47)
    out, x, noise = to_backend(backend, *(a.astype(dtype) for a in _step_inputs(rng, shape)))
    coefs = _random_coefs(rng, 3)
    assert all(len(set(c)) == 3 for c in coefs[:4])
    whole = [to_numpy(a) for a in sampler_step(out, x, noise, coefs, backend=backend)]
    for b in range(3):
        one = sampler_step(out[b:b + 1], x[b:b + 1], noise[b:b + 1], StepCoefs(*(c[b:b + 1] for c in coefs)),
                           backend=backend)
        for w, o in zip(whole, one):
            np.testing.assert_array_equal(w[b], to_numpy(o)[0])


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
def test_sampler_step_bad_input_raises(backend):
    rng = np.random.default_rng(6)
    x, noise = to_backend(backend, randn(rng, (2, 3, 4), np.float32), randn(rng, (2, 3, 4), np.float32))
    coefs = _random_coefs(rng, 2, noiseless=0)

    def s(out=x, x=x, noise=noise, coefs=coefs, clip=True, pred_x0=True):
        return sampler_step(out, x, noise, coefs, clip, pred_x0, backend=backend)

    def replaced(**changes):
        return coefs._replace(**changes)

    with pytest.raises(ValueError, match="model_output"):
        s(out=x[:, :2])
    with pytest.raises(ValueError, match="noise"):
        s(noise=noise[:1])
    with pytest.raises(TypeError, match="noise"):
        s(noise=noise.astype(np.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        s(out=x.astype(np.int32), x=x.astype(np.int32), noise=noise.astype(np.int32))
    with pytest.raises(ValueError, match="non-empty"):
        s(out=x[:0], x=x[:0], noise=noise[:0], coefs=StepCoefs(*(c[:0] for c in coefs)))
    with pytest.raises(TypeError, match="coefs.next_from_x0 must be float64"):
        s(coefs=replaced(next_from_x0=coefs.next_from_x0.astype(np.float32)))
    with pytest.raises(TypeError, match="coefs.x0_from_x must be float64"):
        s(coefs=replaced(x0_from_x=coefs.x0_from_x.astype(np.int64)))
    with pytest.raises(ValueError, match=r"coefs.x0_from_out must have shape \(2,\)"):
        s(coefs=replaced(x0_from_out=np.ones(3)))
    with pytest.raises(ValueError, match=r"coefs.next_from_noise must have shape \(2,\)"):
        s(coefs=replaced(next_from_noise=np.ones((2, 1))))
    with pytest.raises(TypeError, match="coefs.next_from_x must be a"):
        s(coefs=replaced(next_from_x=[0.5, 0.5]))
    with pytest.raises(TypeError, match="coefs must be a StepCoefs"):
        s(coefs=tuple(coefs)[:4])
    with pytest.raises(TypeError, match="clip_denoised"):
        s(clip="yes")
    with pytest.raises(TypeError, match="return_pred_x0"):
        s(pred_x0=None)
    with pytest.raises(ValueError, match="noise is None"):
        s(noise=None)
    if backend != "numpy":  # the reference takes any layout; the kernels take C-contiguous arrays only
        with pytest.raises(TypeError, match="contiguous"):
            s(out=x[:, :, ::-1])
        with pytest.raises(TypeError, match="contiguous"):
            s(noise=noise[:, :, ::-1])
    if backend == "cpu":  # the cpu kernel reads the coefficients in place (cuda copies them to the device)
        with pytest.raises(TypeError, match="contiguous"):
            s(coefs=replaced(next_from_x=np.ones(4)[::2]))


@pytest.mark.skipif(not backends.available("cpu"), reason="pyddpm._cpu is not built (pip install -e .)")
def test_cpu_extension_checks_sampler_step_arguments():
    """Called directly, past the Python checks, the extension still refuses what it would read out of bounds:
    a coefficient array of the wrong shape, dtype or layout, and a null noise that a sample would read."""
    x = np.ones((2, 3), np.float32)
    coefs = _random_coefs(np.random.default_rng(10), 2, noiseless=0)
    ext = extension("cpu")

    def call(noise=x, coefs=coefs, out=x):
        return ext.sampler_step(out, x, noise, *coefs, True, True)

    with pytest.raises(ValueError, match=r"noise is None but coefs.next_from_noise is not 0 .*sample 1"):
        call(noise=None)
    np.testing.assert_array_equal(call(noise=None, coefs=coefs._replace(next_from_noise=np.zeros(2)))[0],
                                  call(noise=np.zeros_like(x), coefs=coefs._replace(next_from_noise=np.zeros(2)))[0])
    with pytest.raises(ValueError, match=r"coefs.x0_from_out must have shape \(2,\)"):
        call(coefs=coefs._replace(x0_from_out=np.ones(1)))
    with pytest.raises(TypeError, match="coefs.next_from_noise must be float64"):
        call(coefs=coefs._replace(next_from_noise=np.ones(2, np.float32)))
    with pytest.raises(TypeError, match="contiguous"):
        call(coefs=coefs._replace(next_from_x=np.ones(4)[::2]))
    with pytest.raises(ValueError, match="model_output must have shape"):
        call(out=np.ones((2, 4), np.float32))
    with pytest.raises(TypeError, match="noise must be float32"):
        call(noise=x.astype(np.float64))


# --- The fused step with a learned variance (log_variance) -----------------------------------------------

def _learned_inputs(rng, shape, dtype):
    """out, x, noise as _step_inputs, and a per-element log sigma^2 rounded to ``dtype`` (so the float64
    reference exponentiates exactly the values the kernel does), spanning sigma from e^-2 to e: a kernel that
    took exp(lv) for exp(lv / 2), or dropped it, would miss by far more than the rounding."""
    out, x, noise = _step_inputs(rng, shape)
    return out, x, noise, rng.uniform(-4.0, 2.0, shape).astype(dtype).astype(np.float64)


def _junk_where_quiet(noise, log_variance, quiet):
    """Copies of noise with NaN, and of log_variance with NaN and 1e30 (whose exp overflows; 0 times it is
    NaN), at every element of the samples without noise: what a kernel must not read there."""
    nan_noise, bad_lv = noise.copy(), log_variance.copy()
    nan_noise[quiet] = np.nan
    bad_lv[quiet] = np.nan
    bad_lv.reshape(len(quiet), -1)[quiet, ::2] = 1e30
    return nan_noise, bad_lv


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("first_quiet", [True, False])
@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_learned_variance_matches_reference(backend, shape, first_quiet, clip, dtype):
    """x_next's noise term scaled per element by exp(log_variance / 2), against the float64 reference, with
    samples with and without noise side by side (the first or the last without, and every third); at the
    latter, NaN noise and a NaN or overflowing log-variance must not show."""
    skip_float64_on_cuda(backend, dtype)
    rng = np.random.default_rng(sum(shape) + 11 * first_quiet)
    B = shape[0]
    out, x, noise, lv = _learned_inputs(rng, shape, dtype)
    coefs = _random_coefs(rng, B, noiseless=0 if first_quiet else -1)
    if B == 1 and not first_quiet:
        coefs.next_from_noise[0] = 0.7  # batch 1: one case with noise, one without
    coefs.next_from_noise[3::3] = 0.0
    quiet = coefs.next_from_noise == 0
    want_next, want_x0 = sampler_step(out, x, noise, coefs, clip, log_variance=lv, backend="numpy")
    x0_terms, next_terms = sampler_step_terms(out, x, noise, coefs, lv)
    nan_noise, bad_lv = _junk_where_quiet(noise, lv, quiet)
    results = []
    for z, v in ((nan_noise, lv), (noise, bad_lv)):
        args = to_backend(backend, *(a.astype(dtype) for a in (out, x, z, v)))
        got_next, got_x0 = sampler_step(*args[:3], coefs, clip, log_variance=args[3], backend=backend)
        assert_matches(got_x0, want_x0, dtype, f"x0_hat on {backend}", TOL[dtype], terms=x0_terms)
        assert_matches(got_next, want_next, dtype, f"x_next on {backend}", TOL[dtype], terms=next_terms)
        lone_next, none = sampler_step(*args[:3], coefs, clip, False, log_variance=args[3], backend=backend)
        assert none is None
        np.testing.assert_array_equal(to_numpy(lone_next), to_numpy(got_next))
        results.append(to_numpy(got_next))
    np.testing.assert_array_equal(results[0], results[1])  # what a quiet sample holds is never read


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize("var_type", ["fixedlarge", "fixedsmall"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_learned_variance_at_the_schedules_is_alg2s_step(backend, var_type, dtype):
    """Ho et al.'s fixed variance passed as a learned one (log_variance = log sigma_t^2 at every element of a
    sample, next_from_noise 1, or 0 at index 0) gives Alg. 2's step, where sigma_t is in next_from_noise. The
    two sigmas are rounded apart (one from the float64 table, one by exp of the rounded log-variance), so
    x_next agrees to a few times the rounding of the terms; x0_hat bit for bit."""
    skip_float64_on_cuda(backend, dtype)
    d = _diffusion(var_type)
    rng = np.random.default_rng(12)
    shape = (5, 3, 4, 4)
    t = np.array([0, 3, 500, T - 1, 1])
    out, x, noise = _step_inputs(rng, shape)
    coefs = StepCoefs(*step_coefs(d.step_tables, t, "eps"))
    learned = coefs._replace(next_from_noise=(coefs.next_from_noise != 0).astype(np.float64))
    lv = np.broadcast_to(d.step_tables.model_log_variance[t].reshape(-1, 1, 1, 1), shape)
    args = to_backend(backend, *(a.astype(dtype) for a in (out, x, noise, lv)))
    fixed_next, fixed_x0 = sampler_step(*args[:3], coefs, backend=backend)
    got_next, got_x0 = sampler_step(*args[:3], learned, log_variance=args[3], backend=backend)
    np.testing.assert_array_equal(to_numpy(got_x0), to_numpy(fixed_x0))
    terms = sampler_step_terms(out, x, noise, coefs)[1]
    assert_matches(got_next, to_numpy(fixed_next).astype(np.float64), dtype, f"x_next on {backend}",
                   4 * TOL[dtype], terms=terms)
    silent = sampler_step(*args[:2], args[2] * 0, learned, log_variance=args[3], backend=backend)[0]
    assert np.all(to_numpy(got_next)[t > 0] != to_numpy(silent)[t > 0])  # a noise term was there to compare


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_learned_variance_of_zero_is_the_step_without_one(backend, dtype):
    """log_variance = 0 (sigma = 1) gives the step without a log_variance: bit for bit on numpy and cpu (the same
    products and sums, times exp(0) = 1); on cuda, where the compiler may fuse a product and a sum, to the
    rounding of the terms."""
    skip_float64_on_cuda(backend, dtype)
    rng = np.random.default_rng(13)
    shape = (4, 3, 7)
    out, x, noise = _step_inputs(rng, shape)
    coefs = _random_coefs(rng, 4)
    args = to_backend(backend, *(a.astype(dtype) for a in (out, x, noise, np.zeros(shape))))
    without = sampler_step(*args[:3], coefs, backend=backend)
    with_zero = sampler_step(*args[:3], coefs, log_variance=args[3], backend=backend)
    for w, z, terms in zip(without, with_zero, sampler_step_terms(out, x, noise, coefs)):
        if backend == "cuda":
            assert_matches(z, to_numpy(w).astype(np.float64), dtype, "x_next", TOL[dtype], terms=terms)
        else:
            np.testing.assert_array_equal(to_numpy(z), to_numpy(w))


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_learned_variance_with_noise_none(backend, dtype):
    """noise=None with a log_variance: the zero-noise step (log_variance not read, NaN there included) where
    every next_from_noise is 0, and the same ValueError as without one otherwise."""
    skip_float64_on_cuda(backend, dtype)
    rng = np.random.default_rng(14)
    shape = (3, 4, 5)
    out, x, _, lv = _learned_inputs(rng, shape, dtype)
    lv[1] = np.nan
    coefs = _random_coefs(rng, 3)
    quiet = coefs._replace(next_from_noise=np.zeros(3))
    out, x, lv = to_backend(backend, *(a.astype(dtype) for a in (out, x, lv)))
    got = sampler_step(out, x, None, quiet, log_variance=lv, backend=backend)
    want = sampler_step(out, x, None, quiet, backend=backend)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(to_numpy(g), to_numpy(w))
    with pytest.raises(ValueError, match="noise is None but coefs.next_from_noise is not 0"):
        sampler_step(out, x, None, coefs, log_variance=lv, backend=backend)


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
def test_sampler_step_log_variance_bad_input_raises(backend):
    rng = np.random.default_rng(15)
    x, lv = to_backend(backend, randn(rng, (2, 3, 4), np.float32), randn(rng, (2, 3, 4), np.float32))
    coefs = _random_coefs(rng, 2, noiseless=0)

    def s(log_variance):
        return sampler_step(x, x, x, coefs, log_variance=log_variance, backend=backend)

    with pytest.raises(ValueError, match=r"^sampler_step: log_variance must have the shape of x \(2, 3, 4\)"):
        s(lv[:, :2])
    with pytest.raises(ValueError, match="^sampler_step: log_variance must have the shape"):
        s(lv[:1])
    with pytest.raises(ValueError, match="^sampler_step: log_variance must have the shape"):
        s(lv[None])
    with pytest.raises(TypeError, match="^sampler_step: log_variance must be float32 like x, got float64"):
        s(lv.astype(np.float64))
    for dtype in (np.float16, np.int32, np.complex64, bool):
        with pytest.raises(TypeError, match="^sampler_step: log_variance must be"):
            s(lv.astype(dtype))
    with pytest.raises(TypeError, match="^sampler_step: log_variance must be a"):
        s(to_numpy(lv).tolist())
    with pytest.raises(TypeError, match="^sampler_step: log_variance must be a"):
        s(0.5)
    if backend == "cuda":
        with pytest.raises(TypeError, match="^sampler_step: log_variance must be a CuPy array"):
            s(to_numpy(lv))
    if backend == "numpy":  # the reference takes any layout
        np.testing.assert_array_equal(s(lv[:, :, ::-1])[0], s(np.ascontiguousarray(lv[:, :, ::-1]))[0])
    else:  # the kernels read it as C-contiguous
        with pytest.raises(TypeError, match="^sampler_step: log_variance must be C-contiguous"):
            s(lv[:, :, ::-1])


@pytest.mark.skipif(not backends.available("cpu"), reason="pyddpm._cpu is not built (pip install -e .)")
def test_cpu_extension_checks_log_variance():
    """Called directly, past the Python checks, the extension still refuses a log_variance it would read out
    of bounds or as the wrong type; None (the default) is the step without one."""
    rng = np.random.default_rng(16)
    x = randn(rng, (2, 3), np.float32)
    coefs = _random_coefs(rng, 2, noiseless=0)
    ext = extension("cpu")

    def call(log_variance):
        return ext.sampler_step(x, x, x, *coefs, True, True, log_variance)

    with pytest.raises(ValueError, match=r"log_variance must have shape \(2, 3\)"):
        call(np.ones((2, 2), np.float32))
    with pytest.raises(TypeError, match="log_variance must be float32"):
        call(np.ones((2, 3), np.float64))
    with pytest.raises(TypeError, match="log_variance must be C-contiguous"):
        call(np.ones((3, 2), np.float32).T)
    np.testing.assert_array_equal(call(None)[0], ext.sampler_step(x, x, x, *coefs, True, True)[0])
