"""GaussianDiffusion against the paper's equations in their alternative forms (seeds 000, 002, 004).

Time convention as in the code: index i (0..T-1) is the paper's t = i + 1. Data are random and non-zero,
float64 unless a test is about dtypes.
"""

import math

import numpy as np
import pytest
from scipy.stats import norm

from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule
from pyddpm.likelihood import discretized_gaussian_log_likelihood

LN2 = math.log(2.0)
SHAPE = (6, 3, 4, 5)
D = 3 * 4 * 5


def _data(rng, shape=SHAPE):
    """x_0 on the 8-bit grid scaled to [-1, 1], as real images are."""
    return rng.integers(0, 256, size=shape) * (2.0 / 255.0) - 1.0


def _diffusion(T=100, **kw):
    return GaussianDiffusion(make_beta_schedule("linear", T, beta_end=0.2), **kw)


def _abar_prev(d, t):
    return np.where(t > 0, d.alphas_cumprod[t - 1], 1.0)


def _col(v):
    return v.reshape(-1, 1, 1, 1)


def test_tables_are_float64_and_alpha_bar_is_the_product():
    d = GaussianDiffusion(make_beta_schedule("linear", 1000))
    names = ["betas", "alphas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
             "sqrt_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
             "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1",
             "posterior_mean_coef2"]
    for name in names:
        table = getattr(d, name)
        assert table.dtype == np.float64 and table.shape == (1000,), name
    assert d.num_timesteps == 1000
    # alpha-bar_t = prod_{s <= t} (1 - beta_s), summed in log space with math.fsum as an independent check.
    for i in (0, 1, 499, 999):
        expected = math.exp(math.fsum(math.log1p(-b) for b in d.betas[: i + 1]))
        assert d.alphas_cumprod[i] == pytest.approx(expected, rel=1e-13)
    assert d.alphas_cumprod_prev[0] == 1.0
    np.testing.assert_array_equal(d.alphas_cumprod_prev[1:], d.alphas_cumprod[:-1])


def test_posterior_variance_and_mean_are_the_completed_square():
    """Eq. 7 against its derivation by completing the square: precision A = 1/(1 - abar_{t-1}) + alpha_t/beta_t and
    mean A^-1 b with b = sqrt(abar_{t-1})/(1 - abar_{t-1}) x_0 + sqrt(alpha_t)/beta_t x_t, for t >= 2."""
    rng = np.random.default_rng(0)
    d = _diffusion()
    t = np.array([1, 2, 17, 50, 98, 99])
    x0, xt = _data(rng), rng.normal(size=SHAPE)
    mean, var, log_var = d.q_posterior_mean_variance(x0, xt, t)
    beta, alpha, abar_prev = d.betas[t], 1 - d.betas[t], _abar_prev(d, t)
    precision = 1 / (1 - abar_prev) + alpha / beta
    b = _col(np.sqrt(abar_prev) / (1 - abar_prev)) * x0 + _col(np.sqrt(alpha) / beta) * xt
    np.testing.assert_allclose(mean, b / _col(precision), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(var, _col(1 / precision), rtol=1e-11)
    # ... which is the paper's form beta-tilde_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t.
    np.testing.assert_allclose(var, _col((1 - abar_prev) / (1 - d.alphas_cumprod[t]) * beta), rtol=1e-13)
    np.testing.assert_allclose(log_var, np.log(var), rtol=1e-13)
    assert mean.shape == SHAPE and var.shape == log_var.shape == (6, 1, 1, 1)


def test_posterior_at_the_first_step_is_exact_and_its_log_variance_is_clipped():
    d = _diffusion()
    assert d.posterior_variance[0] == 0.0  # q(x_0 | x_1, x_0) is a point mass
    assert d.posterior_mean_coef1[0] == pytest.approx(1.0, rel=1e-15) and d.posterior_mean_coef2[0] == 0.0
    assert d.posterior_log_variance_clipped[0] == math.log(d.posterior_variance[1])


def test_eps_form_of_the_posterior_mean():
    """Eq. 10-11: mu-tilde(x_t, x_0(eps)) = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps).

    A misprint of this mean that circulates has 1/sqrt(abar_t) in place of 1/sqrt(alpha_t) (the paper's
    Eq. 11 and Alg. 2 have 1/sqrt(alpha_t)); the test below would fail with it.
    """
    rng = np.random.default_rng(1)
    d = _diffusion()
    t = np.array([0, 1, 5, 40, 77, 99])
    xt, eps = rng.normal(size=(2,) + SHAPE)
    x0 = d.predict_x0_from_eps(xt, t, eps)
    mean, _, _ = d.q_posterior_mean_variance(x0, xt, t)
    beta, abar = d.betas[t], d.alphas_cumprod[t]
    expected = _col(1 / np.sqrt(1 - beta)) * (xt - _col(beta / np.sqrt(1 - abar)) * eps)
    np.testing.assert_allclose(mean, expected, rtol=1e-10, atol=1e-10)
    typo = _col(1 / np.sqrt(abar)) * (xt - _col(beta / np.sqrt(1 - abar)) * eps)
    assert not np.allclose(mean[1:], typo[1:], rtol=1e-3)


def test_predict_x0_from_eps_inverts_q_sample():
    rng = np.random.default_rng(2)
    d = _diffusion()
    t = rng.integers(0, 100, size=6)
    x0, noise = _data(rng), rng.normal(size=SHAPE)
    xt = d.q_sample(x0, t, noise)
    np.testing.assert_allclose(xt, _col(np.sqrt(d.alphas_cumprod[t])) * x0
                               + _col(np.sqrt(1 - d.alphas_cumprod[t])) * noise, rtol=1e-14)
    np.testing.assert_allclose(d.predict_x0_from_eps(xt, t, noise), x0, rtol=1e-10, atol=1e-10)


def test_q_sample_marginal_moments():
    """Eq. 4: x_t | x_0 ~ N(sqrt(abar_t) x_0, (1 - abar_t) I), checked on 20000 draws per element."""
    rng = np.random.default_rng(3)
    d = _diffusion()
    n, i = 20000, 30
    x0 = np.broadcast_to(_data(rng, (1, 2, 3, 3)), (n, 2, 3, 3))
    xt = d.q_sample(x0, np.full(n, i), rng.normal(size=x0.shape))
    abar = d.alphas_cumprod[i]
    var = 1 - abar
    # 5 standard errors per element (18 elements): a false failure is ~1e-5 likely, and the seed is fixed.
    np.testing.assert_allclose(xt.mean(0), math.sqrt(abar) * x0[0], rtol=0, atol=5 * math.sqrt(var / n))
    np.testing.assert_allclose(xt.var(0), var, rtol=0, atol=5 * var * math.sqrt(2 / n))


def _vb_kl_nats(d, t, x0, noise, model_eps):
    """Sum over dimensions of the KL term (nats), read back from vb_terms_bpd's bits/dim."""
    xt = d.q_sample(x0, t, noise)
    out = d.vb_terms_bpd(model_eps, x0, xt, t, clip_denoised=False)["output"]
    return out * D * LN2


def test_kl_term_is_lambda_weighted_noise_mse_with_beta_tilde():
    """Sec. 3.2 of the paper: with sigma_t^2 = beta-tilde_t and mu_theta in the eps form,
    KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) = lambda_t ||eps - eps_theta||^2 (summed over all D
    dimensions, in nats) with lambda_t = beta_t / (2 alpha_t (1 - abar_{t-1})); the variance part of the
    KL vanishes because both variances are beta-tilde_t. vb_terms_bpd reports that sum / D / ln 2."""
    rng = np.random.default_rng(4)
    d = _diffusion(var_type="fixedsmall")
    t = np.array([1, 2, 10, 50, 90, 99])
    x0, noise = _data(rng), rng.normal(size=SHAPE)
    eps_theta = noise + 0.3 * rng.normal(size=SHAPE)
    beta, abar_prev = d.betas[t], _abar_prev(d, t)
    lam = beta / (2 * (1 - beta) * (1 - abar_prev))
    expected = lam * ((noise - eps_theta) ** 2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(_vb_kl_nats(d, t, x0, noise, eps_theta), expected, rtol=1e-9)
    # Eq. 12's general weight beta^2 / (2 sigma^2 alpha (1 - abar)) is the same number at sigma^2 = beta-tilde.
    sigma2 = d.posterior_variance[t]
    np.testing.assert_allclose(beta ** 2 / (2 * sigma2 * (1 - beta) * (1 - d.alphas_cumprod[t])), lam, rtol=1e-12)


def test_kl_term_with_sigma_squared_beta():
    """With sigma_t^2 = beta_t (fixedlarge) the KL is Eq. 12's weighted MSE plus the variance mismatch
    D/2 (r - 1 - log r), r = beta-tilde_t / beta_t."""
    rng = np.random.default_rng(5)
    d = _diffusion(var_type="fixedlarge")
    t = np.array([1, 3, 10, 50, 90, 99])
    x0, noise = _data(rng), rng.normal(size=SHAPE)
    eps_theta = noise + 0.3 * rng.normal(size=SHAPE)
    beta, abar = d.betas[t], d.alphas_cumprod[t]
    weight = beta ** 2 / (2 * beta * (1 - beta) * (1 - abar))
    r = d.posterior_variance[t] / beta
    mismatch = D / 2 * (r - 1 - np.log(r))
    expected = weight * ((noise - eps_theta) ** 2).sum(axis=(1, 2, 3)) + mismatch
    np.testing.assert_allclose(_vb_kl_nats(d, t, x0, noise, eps_theta), expected, rtol=1e-9)
    # The oracle (the true noise) leaves only the variance mismatch, which is > 0. Near t = T, r -> 1
    # and r - 1 - log r ~ (r - 1)^2 / 2 cancels in any formula: hence the absolute tolerance.
    np.testing.assert_allclose(_vb_kl_nats(d, t, x0, noise, noise), mismatch, rtol=1e-8, atol=1e-12)
    assert np.all(mismatch > 0)


def test_oracle_model_has_zero_kl_with_beta_tilde():
    rng = np.random.default_rng(6)
    for mean_type in ("eps", "x0"):
        d = _diffusion(var_type="fixedsmall", mean_type=mean_type)
        t = np.array([1, 2, 10, 50, 90, 99])
        x0, noise = _data(rng), rng.normal(size=SHAPE)
        oracle = noise if mean_type == "eps" else x0
        kl = _vb_kl_nats(d, t, x0, noise, oracle)
        np.testing.assert_allclose(kl, 0.0, atol=1e-9)


@pytest.mark.parametrize("var_type", ["fixedlarge", "fixedsmall"])
def test_decoder_term_at_index_zero(var_type):
    """L_0 = -log p(x_0 | x_1) (Eq. 13). For the oracle the model mean at index 0 is exactly x_0
    (coef1 = 1, coef2 = 0), and both variance types use sigma_1^2 = beta-tilde_2 there (the clipped value;
    fixedlarge replaces beta_1 by it too), so the probability of each pixel is the mass of its own bin."""
    rng = np.random.default_rng(7)
    d = _diffusion(var_type=var_type)
    x0, noise = _data(rng), rng.normal(size=SHAPE)
    t = np.zeros(6, dtype=np.int64)
    xt = d.q_sample(x0, t, noise)
    out = d.vb_terms_bpd(noise, x0, xt, t, clip_denoised=False)
    np.testing.assert_allclose(out["pred_x0"], x0, rtol=1e-9, atol=1e-9)
    z = (1 / 255) / math.sqrt(d.posterior_variance[1])
    interior = math.log(norm.cdf(z) - norm.cdf(-z))
    log_p = np.where(np.abs(x0) > 0.999, math.log(norm.cdf(z)), interior)
    np.testing.assert_allclose(out["output"], -log_p.mean(axis=(1, 2, 3)) / LN2, rtol=1e-7)


def test_vb_terms_pick_decoder_at_zero_and_kl_elsewhere_per_sample():
    rng = np.random.default_rng(8)
    d = _diffusion()
    x0, noise = _data(rng), rng.normal(size=SHAPE)
    model_eps = 0.5 * rng.normal(size=SHAPE)
    t = np.array([0, 5, 0, 99, 1, 0])
    xt = d.q_sample(x0, t, noise)
    out = d.vb_terms_bpd(model_eps, x0, xt, t, clip_denoised=False)["output"]
    p = d.p_mean_variance(model_eps, xt, t, clip_denoised=False)
    decoder = -discretized_gaussian_log_likelihood(x0, p["mean"], 0.5 * p["log_variance"]).mean(axis=(1, 2, 3))
    for j in range(6):
        alone = d.vb_terms_bpd(model_eps[j:j + 1], x0[j:j + 1], xt[j:j + 1], t[j:j + 1], False)["output"]
        assert out[j] == pytest.approx(alone[0], rel=1e-12)
        if t[j] == 0:
            assert out[j] == pytest.approx(decoder[j] / LN2, rel=1e-12)


def test_prior_term_is_tiny_for_the_papers_schedule():
    """L_T for beta linear 1e-4..0.02, T = 1000: abar_T ~ 4.0e-5, so per dimension
    KL = 0.5 (abar_T x_0^2 - abar_T - log(1 - abar_T)) <= -0.5 log(1 - abar_T) ~ 2.0e-5 nats ~ 2.9e-5 bits,
    the paper's L_T ~ 1e-5 bits/dim (Sec. 4)."""
    rng = np.random.default_rng(9)
    d = GaussianDiffusion(make_beta_schedule("linear", 1000))
    x0 = _data(rng)
    bpd = d.prior_bpd(x0)
    abar = d.alphas_cumprod[-1]
    expected = 0.5 * (abar * x0 ** 2 - abar - math.log1p(-abar)).mean(axis=(1, 2, 3)) / LN2
    np.testing.assert_allclose(bpd, expected, rtol=1e-9)
    assert bpd.shape == (6,) and np.all(bpd > 0) and np.all(bpd < 3e-5)


def test_p_sample_adds_no_noise_at_index_zero_only():
    """Alg. 2: z = 0 for the paper's t = 1 (index 0), per sample; sigma_t z elsewhere."""
    rng = np.random.default_rng(10)
    d = _diffusion()
    xt, model_eps, noise_a, noise_b = rng.normal(size=(4,) + SHAPE)
    t = np.array([0, 7, 0, 99, 1, 0])
    a = d.p_sample(model_eps, xt, t, noise_a)["sample"]
    b = d.p_sample(model_eps, xt, t, noise_b)["sample"]
    mean = d.p_mean_variance(model_eps, xt, t, clip_denoised=True)["mean"]
    first = t == 0
    np.testing.assert_array_equal(a[first], b[first])
    np.testing.assert_array_equal(a[first], mean[first])
    sigma = np.sqrt(d.model_variance[t[~first]])
    np.testing.assert_allclose(a[~first] - b[~first], _col(sigma) * (noise_a - noise_b)[~first], rtol=1e-9)
    assert np.all(np.abs(a[~first] - b[~first]) > 0)


def test_p_mean_variance_clips_pred_x0_only_when_asked():
    rng = np.random.default_rng(11)
    d = _diffusion()
    t = np.full(6, 99)
    xt, model_eps = 3 * rng.normal(size=(2,) + SHAPE)
    clipped = d.p_mean_variance(model_eps, xt, t, clip_denoised=True)
    raw = d.p_mean_variance(model_eps, xt, t, clip_denoised=False)
    assert np.abs(raw["pred_x0"]).max() > 1
    np.testing.assert_array_equal(clipped["pred_x0"], np.clip(raw["pred_x0"], -1, 1))
    np.testing.assert_allclose(clipped["mean"], d.q_posterior_mean_variance(clipped["pred_x0"], xt, t)[0])
    # fixedlarge: sigma_t^2 = beta_t for t > 1.
    np.testing.assert_array_equal(raw["variance"], _col(d.betas[t]))
    np.testing.assert_allclose(raw["log_variance"], np.log(raw["variance"]), rtol=1e-14)


def test_x0_prediction_uses_the_output_as_x0():
    rng = np.random.default_rng(12)
    d = _diffusion(mean_type="x0", var_type="fixedsmall")
    t = rng.integers(0, 100, size=6)
    xt, x0_hat = rng.normal(size=(2,) + SHAPE)
    out = d.p_mean_variance(x0_hat, xt, t, clip_denoised=False)
    np.testing.assert_array_equal(out["pred_x0"], x0_hat)
    np.testing.assert_allclose(out["mean"], d.q_posterior_mean_variance(x0_hat, xt, t)[0])
    np.testing.assert_array_equal(out["log_variance"], _col(d.posterior_log_variance_clipped[t]))


@pytest.mark.parametrize("mean_type", ["eps", "x0"])
def test_simple_loss_is_the_mse_to_the_target(mean_type):
    """Eq. 14 and Alg. 1: mean over C, H, W of (target - output)^2, target eps or x_0."""
    rng = np.random.default_rng(13)
    d = _diffusion(mean_type=mean_type)
    x0, noise, w = _data(rng), rng.normal(size=SHAPE), rng.normal(size=SHAPE)
    t = rng.integers(0, 100, size=6)
    seen = {}

    def model(xt, t_):
        seen["xt"], seen["t"] = xt, t_
        return w * xt

    losses = d.training_losses(model, x0, t, noise)
    np.testing.assert_array_equal(seen["t"], t)
    np.testing.assert_allclose(seen["xt"], d.q_sample(x0, t, noise))
    target = noise if mean_type == "eps" else x0
    expected = ((target - w * seen["xt"]) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(losses["loss"], expected, rtol=1e-12)
    np.testing.assert_array_equal(losses["mse"], losses["loss"])
    assert losses["loss"].shape == (6,)


def test_kl_loss_is_the_bound_term():
    rng = np.random.default_rng(14)
    d = _diffusion(loss_type="kl", var_type="fixedsmall")
    x0, noise, w = _data(rng), rng.normal(size=SHAPE), rng.normal(size=SHAPE)
    t = np.array([0, 3, 50, 0, 99, 1])
    losses = d.training_losses(lambda xt, t_: w * xt, x0, t, noise)
    xt = d.q_sample(x0, t, noise)
    expected = d.vb_terms_bpd(w * xt, x0, xt, t, clip_denoised=False)["output"]
    np.testing.assert_allclose(losses["loss"], expected, rtol=1e-12)
    np.testing.assert_array_equal(losses["vb"], losses["loss"])


def test_calc_bpd_loop_terms_and_total():
    rng = np.random.default_rng(15)
    T = 10
    d = GaussianDiffusion(make_beta_schedule("linear", T, beta_start=0.01, beta_end=0.5))
    x0 = _data(rng, (3, 2, 4, 4))

    def model(x, t):
        assert t.dtype == np.int64 and t.shape == (3,)
        return 0.3 * x

    res = d.calc_bpd_loop(model, x0, np.random.default_rng(42), progress=False)
    assert res["vb_terms"].shape == res["mse"].shape == (3, T)
    assert res["total_bpd"].shape == res["prior_bpd"].shape == (3,)
    np.testing.assert_allclose(res["total_bpd"], res["vb_terms"].sum(axis=1) + res["prior_bpd"], rtol=1e-14)
    np.testing.assert_allclose(res["prior_bpd"], d.prior_bpd(x0), rtol=1e-14)
    assert np.all(np.isfinite(res["total_bpd"])) and np.all(res["vb_terms"] >= 0)

    # Column i holds index i: replay the loop's noise (drawn for i = T-1 .. 0) and recompute each term.
    replay = np.random.default_rng(42)
    for i in range(T - 1, -1, -1):
        t = np.full(3, i)
        xt = d.q_sample(x0, t, replay.standard_normal(x0.shape))
        out = d.vb_terms_bpd(0.3 * xt, x0, xt, t, clip_denoised=True)
        np.testing.assert_allclose(res["vb_terms"][:, i], out["output"], rtol=1e-12)
        np.testing.assert_allclose(res["mse"][:, i], ((out["pred_x0"] - x0) ** 2).mean(axis=(1, 2, 3)), rtol=1e-12)


def test_p_sample_loop_shape_dtype_determinism():
    d = _diffusion(T=8)
    calls = []

    def model(x, t):
        calls.append(t.copy())
        assert t.dtype == np.int64 and x.shape == (2, 1, 3, 3)
        return 0.1 * x

    shape = (2, 1, 3, 3)
    a = d.p_sample_loop(model, shape, np.random.default_rng(0), progress=False)
    assert a.shape == shape and a.dtype == np.float32
    assert [c[0] for c in calls] == list(range(7, -1, -1)) and all((c == c[0]).all() for c in calls)
    b = d.p_sample_loop(model, shape, np.random.default_rng(0), progress=False)
    np.testing.assert_array_equal(a, b)
    c = d.p_sample_loop(model, shape, np.random.default_rng(1), progress=False)
    assert not np.allclose(a, c)
    e = d.p_sample_loop(model, shape, np.random.default_rng(0), progress=False, dtype=np.float64)
    assert e.dtype == np.float64
    np.testing.assert_allclose(e, a, rtol=1e-4, atol=1e-4)  # same draws, rounded differently


def test_float32_data_gets_float32_coefficients():
    rng = np.random.default_rng(16)
    d = _diffusion()
    x0, noise = _data(rng).astype(np.float32), rng.normal(size=SHAPE).astype(np.float32)
    t = rng.integers(0, 100, size=6)
    xt = d.q_sample(x0, t, noise)
    assert xt.dtype == np.float32
    out = d.p_mean_variance(noise, xt, t, clip_denoised=True)
    assert all(out[k].dtype == np.float32 for k in ("mean", "variance", "log_variance", "pred_x0"))
    assert d.vb_terms_bpd(noise, x0, xt, np.zeros(6, dtype=np.int64), False)["output"].dtype == np.float32
    assert d.training_losses(lambda x, t_: x, x0, t, noise)["loss"].dtype == np.float32


def test_bad_arguments():
    betas = make_beta_schedule("linear", 10)
    for kw in ({"mean_type": "xprev"}, {"var_type": "learned"}, {"loss_type": "mse"}):
        with pytest.raises(ValueError):
            GaussianDiffusion(betas, **kw)
    for bad in (betas[:1], betas.reshape(2, 5), np.append(betas, 1.0), np.append(betas, 0.0)):
        with pytest.raises(ValueError):
            GaussianDiffusion(bad)
    d = GaussianDiffusion(betas)
    x = np.ones((2, 1, 2, 2))
    for t in (np.array([0, 1, 2]), np.array([0.0, 1.0]), np.array(3)):
        with pytest.raises(ValueError, match=r"^GaussianDiffusion: t must be an int array of shape \(2,\)"):
            d.q_sample(x, t, x)
    for t in (np.array([0, 10]), np.array([-1, 0])):
        with pytest.raises(ValueError, match=r"^GaussianDiffusion: t must lie in 0\.\.9, got "):
            d.q_sample(x, t, x)


# --- with the autograd Tensor (the training path) -------------------------------------------------------

autograd = pytest.importorskip("pyddpm.autograd")


@pytest.mark.parametrize("loss_type, var_type, mean_type", [
    ("simple", "fixedlarge", "eps"), ("simple", "fixedsmall", "x0"),
    ("kl", "fixedlarge", "eps"), ("kl", "fixedsmall", "eps"), ("kl", "fixedlarge", "x0"),
])
def test_training_losses_with_a_tensor_output_match_arrays_and_backpropagate(loss_type, var_type, mean_type):
    rng = np.random.default_rng(17)
    d = _diffusion(loss_type=loss_type, var_type=var_type, mean_type=mean_type)
    x0, noise = _data(rng), rng.normal(size=SHAPE)
    t = np.array([0, 3, 50, 0, 99, 1])
    output = (noise if mean_type == "eps" else x0) + 0.2 * rng.normal(size=SHAPE)
    leaf = autograd.Tensor(output.copy(), requires_grad=True)
    with_tensor = d.training_losses(lambda xt, t_: leaf, x0, t, noise)["loss"]
    with_array = d.training_losses(lambda xt, t_: output, x0, t, noise)["loss"]
    assert isinstance(with_tensor, autograd.Tensor)
    np.testing.assert_allclose(with_tensor.data, with_array, rtol=1e-12)

    with_tensor.sum().backward()
    assert leaf.grad is not None and leaf.grad.shape == SHAPE
    # Central differences of the array loss along a random direction, in float64.
    v, h = rng.normal(size=SHAPE), 1e-6
    plus = d.training_losses(lambda xt, t_: output + h * v, x0, t, noise)["loss"].sum()
    minus = d.training_losses(lambda xt, t_: output - h * v, x0, t, noise)["loss"].sum()
    assert (leaf.grad * v).sum() == pytest.approx((plus - minus) / (2 * h), rel=1e-6)


def test_clip_denoised_is_refused_for_a_tensor_output():
    d = _diffusion()
    xt = np.ones(SHAPE)
    with pytest.raises(ValueError):
        d.p_mean_variance(autograd.Tensor(xt, requires_grad=True), xt, np.zeros(6, dtype=np.int64), True)


@pytest.mark.skipif(not __import__("pyddpm.ops.backend", fromlist=["available"]).available("cpu"),
                    reason="pyddpm._cpu is not built (pip install -e .)")
def test_bound_on_the_cpu_kernels_matches_numpy():
    """calc_bpd_loop through the fused likelihood/KL kernels gives the NumPy path's bits/dim."""
    from pyddpm.ops import backend

    rng = np.random.default_rng(5)
    diffusion = GaussianDiffusion(make_beta_schedule("linear", 12))
    x0 = (rng.integers(0, 256, size=(3, 2, 5, 5)) / 127.5 - 1.0).astype(np.float32)
    weights = rng.standard_normal((2, 2)).astype(np.float32) * 0.3

    def model_fn(x, t):  # a fixed, not-too-good noise predictor
        return np.einsum("oc,bchw->bohw", weights, x) + 0.01 * t[:, None, None, None].astype(np.float32)
    results = {}
    for name in ("numpy", "cpu"):
        backend.set_backend(name)
        results[name] = diffusion.calc_bpd_loop(model_fn, x0, np.random.default_rng(0), progress=False)
    for key in ("total_bpd", "prior_bpd", "vb_terms"):
        np.testing.assert_allclose(results["cpu"][key], results["numpy"][key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("mean_type", ["eps", "x0"])
def test_dsm_is_l_simple_with_the_seeds_weight(mean_type):
    """The seed's DSM objective 1/2 ||s_theta - grad log q(x_t | x_0)||^2 (003_b3aca02c5cb86363.txt) on the score
    s_theta = -eps_theta / sqrt(1 - abar_t) is L_simple's term (Eq. 14) times 1 / (2 (1 - abar_t)); on an
    x0-model's score it is the x_0 MSE times abar_t / (2 (1 - abar_t)^2). Per sample, arrays and Tensors alike."""
    from pyddpm.autograd import Tensor

    rng = np.random.default_rng(11)
    t = np.array([0, 1, 10, 50, 99, 99])
    x0, noise = _data(rng, (6, 2, 3, 3)), rng.normal(size=(6, 2, 3, 3))
    output = rng.normal(size=x0.shape)
    losses = {kind: GaussianDiffusion(_diffusion().betas, mean_type=mean_type, loss_type=kind)
              .training_losses(lambda xt, tt: output, x0, t, noise)["loss"] for kind in ("simple", "dsm")}
    abar = _diffusion().alphas_cumprod[t]
    weight = 1 / (2 * (1 - abar)) if mean_type == "eps" else abar / (2 * (1 - abar) ** 2)
    np.testing.assert_allclose(losses["dsm"], weight * losses["simple"], rtol=1e-10)
    d = GaussianDiffusion(_diffusion().betas, mean_type=mean_type, loss_type="dsm")
    param = Tensor(output, requires_grad=True)
    as_tensor = d.training_losses(lambda xt, tt: param, x0, t, noise)["loss"]
    np.testing.assert_allclose(as_tensor.data, losses["dsm"], rtol=1e-12)
    as_tensor.sum().backward()
    assert param.grad is not None and np.isfinite(param.grad).all() and np.abs(param.grad).max() > 0
