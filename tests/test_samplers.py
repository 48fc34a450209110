"""The samplers' identities and bookkeeping: respacing, DDIM at eta = 1 against Alg. 2, the strided sampler
at K = T against Alg. 2, the score of eps- and x0-models, the x0-model path, the trajectory callback, the
probability-flow likelihood against a closed-form density, and the checks of every parameter."""

import importlib
import math

import numpy as np
import pytest

from pyddpm.autograd import Tensor
from pyddpm.diffusion import samplers
from pyddpm.diffusion.gaussian_diffusion import GaussianDiffusion
from pyddpm.diffusion.gaussian_mixture import GaussianMixture
from pyddpm.diffusion.samplers.ddim import ddim_coefs
from pyddpm.diffusion.ode_likelihood import bits_per_dim, dequantize, ode_log_likelihood
from pyddpm.diffusion.schedules import make_beta_schedule
from pyddpm.diffusion.score import score
from pyddpm.ops import backend

T = 1000
BETAS = make_beta_schedule("linear", T)
GAUSSIAN = GaussianMixture([1.0], [[0.3, -0.2]], [[[0.2, 0.1], [0.1, 0.15]]])
MIXTURE = GaussianMixture([0.25, 0.75], [[-1.0, 0.0], [1.0, 0.5]], [np.eye(2) * 0.01, np.eye(2) * 0.02])


def toy_model(x, t):
    """A cheap model whose output depends on x and t nonlinearly, for identities that hold for any model."""
    return np.tanh(x * (1.0 + t.reshape(-1, *([1] * (x.ndim - 1))) / T)).astype(x.dtype)


def test_strided_indices():
    assert list(samplers.strided_indices(T, 1)) == [T - 1]
    assert list(samplers.strided_indices(T, T)) == list(range(T - 1, -1, -1))
    idx = samplers.strided_indices(T, 7)
    assert idx[0] == T - 1 and idx[-1] == 0 and len(set(idx)) == 7 and np.all(np.diff(idx) < 0)
    for bad in (0, -3, T + 1, 2.5, True, None):
        with pytest.raises(ValueError, match="--steps must be an integer in 1..1000"):
            samplers.strided_indices(T, bad)


def test_respacing_keeps_abar_at_the_visited_indices_and_is_exact_on_the_full_sequence():
    d = GaussianDiffusion(BETAS)
    assert np.array_equal(samplers.respaced(d, samplers.strided_indices(T, T)).betas, d.betas)
    idx = samplers.strided_indices(T, 13)
    r = samplers.respaced(d, idx)
    assert r.num_timesteps == 13
    np.testing.assert_allclose(r.alphas_cumprod, d.alphas_cumprod[idx[::-1]], rtol=1e-12)


@pytest.mark.parametrize("name", ["numpy", "cpu"])
def test_strided_ancestral_at_k_equal_t_is_alg2_exactly(name):
    backend.set_backend(name)
    d = GaussianDiffusion(BETAS[:100], var_type="fixedlarge")
    shape = (3, 1, 5, 7)
    want = d.p_sample_loop(toy_model, shape, np.random.default_rng(4), progress=False)
    got = samplers.ancestral(toy_model, d, shape, np.random.default_rng(4), steps=100, progress=False)
    assert np.array_equal(got, want)


def test_ddim_eta_1_on_the_full_sequence_is_ancestral_with_beta_tilde_step_for_step():
    d = GaussianDiffusion(BETAS, var_type="fixedsmall")
    model = GAUSSIAN.eps_model(d.alphas_cumprod)
    trace = {"ancestral": [], "ddim": []}
    for name, fn, kwargs in (("ancestral", samplers.ancestral, {}), ("ddim", samplers.ddim, {"eta": 1.0})):
        fn(model, d, (64, 2), np.random.default_rng(5), steps=T, clip_denoised=False, progress=False,
           dtype=np.float64, callback=lambda i, x, x0, name=name: trace[name].append((i, x.copy(), x0.copy())),
           **kwargs)
    assert len(trace["ancestral"]) == len(trace["ddim"]) == T
    for (i, xa, pa), (j, xd, pd) in zip(trace["ancestral"], trace["ddim"]):
        assert i == j
        np.testing.assert_allclose(xd, xa, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(pd, pa, rtol=1e-9, atol=1e-12)


def test_the_ode_euler_stage_is_ddim_with_eta_0():
    ode_module = importlib.import_module("pyddpm.diffusion.samplers.ode")
    for abar_i, abar_j in ((0.01, 0.2), (0.5, 0.9), (0.99, 1.0)):
        np.testing.assert_allclose(ode_module.euler_coefs(abar_i, abar_j), ddim_coefs(abar_i, abar_j, 0.0), rtol=1e-12,
                                   atol=1e-15)


def test_the_ode_sampler_lands_on_sharp_data_in_few_steps():
    # Data concentrated on points (as 8-bit pixels nearly are) make the score ~ 1/tau near the data: Heun on the
    # tau form of the ODE evaluates its second stage there and blows up (rms distance 3.6 at K = 20); in the
    # sigma form (samplers/ode.py) each sample lands on a point.
    d = GaussianDiffusion(BETAS)
    sharp = GaussianMixture([0.5, 0.5], [[-0.5, -0.5], [0.5, 0.5]], [np.eye(2) * 1e-5] * 2)
    x = samplers.ode(sharp.eps_model(d.alphas_cumprod), d, (2000, 2), np.random.default_rng(12), steps=20,
                     clip_denoised=False, progress=False, dtype=np.float64)
    nearest = sharp.means[sharp.responsibilities(x).argmax(axis=1)]
    assert np.sqrt(((x - nearest) ** 2).sum(axis=1).mean()) < 0.02


def test_ddim_eta_1_differs_from_eta_0():
    d = GaussianDiffusion(BETAS)
    model = GAUSSIAN.eps_model(d.alphas_cumprod)
    runs = [samplers.ddim(model, d, (16, 2), np.random.default_rng(0), steps=20, eta=eta, progress=False,
                          dtype=np.float64) for eta in (0.0, 1.0)]
    assert not np.allclose(*runs)


@pytest.mark.parametrize("mean_type", ["eps", "x0"])
def test_score_of_eps_and_x0_models_is_the_closed_form(mean_type):
    d = GaussianDiffusion(BETAS, mean_type=mean_type)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 2))
    t = np.array([0, 10, 300, 700, 999])
    model = (MIXTURE.eps_model if mean_type == "eps" else MIXTURE.x0_model)(d.alphas_cumprod)
    want = np.stack([MIXTURE.score(x[b:b + 1], d.alphas_cumprod[t[b]])[0] for b in range(5)])
    np.testing.assert_allclose(score(d, model(x, t), x, t), want, rtol=1e-9)
    as_tensor = score(d, Tensor(model(x, t)), x, t)
    assert isinstance(as_tensor, Tensor)
    np.testing.assert_allclose(as_tensor.data, want, rtol=1e-9)


@pytest.mark.parametrize("name, kwargs", [("ddim", dict(steps=200)), ("ode", dict(steps=100)),
                                          ("sde", dict(steps=1000))])
def test_an_x0_model_samples_through_the_same_steps(name, kwargs):
    d = GaussianDiffusion(BETAS, mean_type="x0")
    x = samplers.SAMPLERS[name](GAUSSIAN.x0_model(d.alphas_cumprod), d, (4000, 2), np.random.default_rng(7),
                                clip_denoised=False, progress=False, dtype=np.float64, **kwargs)
    np.testing.assert_allclose(x.mean(axis=0), GAUSSIAN.means[0], atol=0.03)
    np.testing.assert_allclose(np.cov(x.T), GAUSSIAN.covs[0], atol=0.03)


@pytest.mark.parametrize("name, calls", [("ancestral", 10), ("ddim", 10), ("sde", 10), ("ode", 10), ("pc", 20),
                                         ("annealed-langevin", 51), ("langevin", 11)])
def test_the_callback_sees_every_model_step_with_its_x0_estimate(name, calls):
    d = GaussianDiffusion(BETAS)
    seen = []
    kwargs = {"inner_steps": 5} if name == "annealed-langevin" else {}
    x = samplers.SAMPLERS[name](toy_model, d, (2, 3), np.random.default_rng(0), steps=10, progress=False,
                                callback=lambda i, x, x0: seen.append((i, x, x0)), **kwargs)
    assert len(seen) == calls
    assert np.array_equal(seen[-1][1], x)
    assert all(x0 is not None and x0.shape == (2, 3) and np.all(np.abs(x0) <= 1) for _, _, x0 in seen)


def test_interpolation_decodes_each_mixture_with_one_noise_stream():
    # With a model linear in x (it predicts no noise) and one reverse-noise stream for every lambda, the decoded
    # images are affine in lambda: the middle one is the mean of the ends, which independent streams would break.
    d = GaussianDiffusion(BETAS)
    a, b = np.full((1, 4, 4), -0.5, np.float32), np.full((1, 4, 4), 0.5, np.float32)
    out = samplers.interpolate(lambda x, t: np.zeros_like(x), d, a, b, 50, [0.0, 0.5, 1.0], np.random.default_rng(0),
                               clip_denoised=False, progress=False)
    assert out.shape == (3, 1, 4, 4)
    np.testing.assert_allclose(out[1], 0.5 * (out[0] + out[2]), atol=1e-5)
    assert abs(out[0].mean() - a.mean()) < 0.1 and abs(out[2].mean() - b.mean()) < 0.1


@pytest.mark.parametrize("data", [GAUSSIAN, MIXTURE], ids=["gaussian", "mixture"])
def test_ode_likelihood_matches_the_closed_form_density(data):
    d = GaussianDiffusion(BETAS)
    x, _ = data.sample(200, np.random.default_rng(8))
    got = ode_log_likelihood(data.eps_vjp(d.alphas_cumprod), d, x, np.random.default_rng(9), steps=300,
                             trace="exact", progress=False)["log_likelihood"]
    np.testing.assert_allclose(got, data.log_density(x), rtol=0.02, atol=0.02)
    assert abs(np.mean(got - data.log_density(x))) < 0.005


def test_ode_likelihood_of_sharp_data_in_few_steps():
    # On data concentrated near points (as 8-bit pixels are) the flow moves fastest at small sigma; Heun in the
    # tau form with evenly spaced indices was off by 10 nats on average at K = 50 here.
    d = GaussianDiffusion(BETAS)
    sharp = GaussianMixture([0.5, 0.5], [[-0.5, -0.5], [0.5, 0.5]], [np.eye(2) * 1e-4] * 2)
    x, _ = sharp.sample(200, np.random.default_rng(13))
    got = ode_log_likelihood(sharp.eps_vjp(d.alphas_cumprod), d, x, np.random.default_rng(14), steps=50,
                             trace="exact", progress=False)["log_likelihood"]
    assert abs(np.mean(got - sharp.log_density(x))) < 0.3


def test_hutchinsons_estimate_is_unbiased():
    d = GaussianDiffusion(BETAS)
    x, _ = GAUSSIAN.sample(2000, np.random.default_rng(10))
    got = ode_log_likelihood(GAUSSIAN.eps_vjp(d.alphas_cumprod), d, x, np.random.default_rng(11), steps=100,
                             progress=False)["log_likelihood"]
    err = got - GAUSSIAN.log_density(x)
    assert err.std() > 0.01  # a probe-dependent estimate, not the exact trace
    assert abs(err.mean()) < 4 * err.std() / math.sqrt(len(err))


def test_bits_per_dim_of_dequantised_data():
    rng = np.random.default_rng(0)
    x0 = rng.integers(0, 256, size=(3, 4)) / 127.5 - 1
    y = dequantize(x0, rng)
    assert np.all(np.abs(y - x0) <= 1 / 255 + 1e-12) and not np.array_equal(y, x0)
    # A uniform density on [-1 - 1/255, 1 + 1/255]^D puts 1/256 on each bin: 8 bits/dim exactly.
    log_uniform = -4 * math.log(2 + 2 / 255)
    np.testing.assert_allclose(bits_per_dim(np.full(3, log_uniform), 4), 8.0, rtol=1e-12)


@pytest.mark.parametrize("call, message", [
    (lambda d: samplers.ddim(toy_model, d, (1, 2), np.random.default_rng(), steps=5, eta=-0.1), "--eta"),
    (lambda d: samplers.ddim(toy_model, d, (1, 2), np.random.default_rng(), steps=0), "--steps"),
    (lambda d: samplers.ode(toy_model, d, (1, 2), np.random.default_rng(), steps=T + 1), "--steps"),
    (lambda d: samplers.annealed_langevin(toy_model, d, (1, 2), np.random.default_rng(), steps=3, inner_steps=0),
     "--inner-steps"),
    (lambda d: samplers.annealed_langevin(toy_model, d, (1, 2), np.random.default_rng(), steps=3, epsilon=-1.0),
     "--epsilon"),
    (lambda d: samplers.langevin(toy_model, d, (1, 2), np.random.default_rng(), steps=3, step_size=float("nan")),
     "--step-size"),
    (lambda d: samplers.predictor_corrector(toy_model, d, (1, 2), np.random.default_rng(), steps=3, snr=0),
     "--snr"),
])
def test_bad_parameters_are_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call(GaussianDiffusion(BETAS))
