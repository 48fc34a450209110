"""Table 2's parameterisations (Ho et al. 2020): the mean predicted as eps, x_0 or mu-tilde, the x_0 weighting of
Eq. 2.10 (seed 004), a learned variance in both forms, the hybrid loss's stop-gradient, and old checkpoints."""

import json
from pathlib import Path

import numpy as np
import pytest

from gradcheck import check_grads
from pyddpm.autograd import Tensor, concat
from pyddpm.checkpoint import save_checkpoint
from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule
from pyddpm.diffusion.samplers import SAMPLERS
from pyddpm.ops.backend import get_backend, set_backend
from pyddpm.sampling import sample_batches

T = 20
rng = np.random.default_rng(16)


def diffusion(**kwargs):
    return GaussianDiffusion(make_beta_schedule("linear", T), **kwargs)


def data(B=5, C=2, H=3, W=4):
    """x0 on the 256-level grid (edges included), noise, and indices covering 0, 1 and T-1."""
    x0 = rng.integers(0, 256, size=(B, C, H, W)) / 127.5 - 1.0
    t = np.array([0, 1, T - 1, 7, 3][:B])
    return x0, t, rng.standard_normal((B, C, H, W))


def test_mean_model_reproduces_the_posterior():
    """A mean-model whose output is mu-tilde(x_t, x_0) has that mean and recovers x_0 exactly (Eq. 7 inverted),
    and its Alg. 2 step is the eps-model's step with the true noise."""
    x0, t, noise = data()
    eps_d, mean_d = diffusion(), diffusion(mean_type="mean")
    xt = eps_d.q_sample(x0, t, noise)
    mu = eps_d.q_posterior_mean_variance(x0, xt, t)[0]
    out = mean_d.p_mean_variance(mu, xt, t, clip_denoised=False)
    np.testing.assert_array_equal(out["mean"], mu)
    np.testing.assert_allclose(out["pred_x0"], x0, rtol=1e-6, atol=1e-6)
    z = rng.standard_normal(x0.shape)
    np.testing.assert_allclose(mean_d.p_sample(mu, xt, t, z, clip_denoised=False)["sample"],
                               eps_d.p_sample(noise, xt, t, z, clip_denoised=False)["sample"], rtol=1e-6, atol=1e-6)


def test_mean_model_mean_is_never_clipped():
    """As the official code's xprev: clipping touches a mean-model's x_0 estimate, not its mean."""
    x0, t, _ = data()
    mean_d = diffusion(mean_type="mean")
    xt = rng.standard_normal(x0.shape) * 3
    mu = rng.standard_normal(x0.shape) * 3
    out = mean_d.p_mean_variance(mu, xt, t, clip_denoised=True)
    np.testing.assert_array_equal(out["mean"], mu)
    assert np.abs(out["pred_x0"]).max() <= 1.0
    step = mean_d.p_sample(mu, xt, t, np.zeros_like(mu), clip_denoised=True)
    np.testing.assert_allclose(step["sample"], mu, rtol=1e-6, atol=1e-6)
    assert np.abs(step["pred_x0"]).max() <= 1.0


@pytest.mark.parametrize("steps", [T, 7])
def test_mean_model_samples_like_the_x0_model_it_implies(steps):
    """Respaced (K < T) a mean-model goes through its x_0 estimate: the x0-model giving that x_0 samples alike."""
    eps_d, mean_d, x0_d = diffusion(), diffusion(mean_type="mean"), diffusion(mean_type="x0")
    target = rng.uniform(-0.9, 0.9, size=(1, 1, 4, 4))

    def x0_model(x, t):  # depends on x, so the path to x_0, not only its end, decides the sample
        return 0.5 * target + 0.3 * np.tanh(x)

    def mean_model(x, t):
        return eps_d.q_posterior_mean_variance(x0_model(x, t), x, t)[0]

    shape = (3, 1, 4, 4)
    a = SAMPLERS["ancestral"](mean_model, mean_d, shape, np.random.default_rng(1), steps, progress=False,
                              dtype=np.float64)
    b = SAMPLERS["ancestral"](x0_model, x0_d, shape, np.random.default_rng(1), steps, progress=False,
                              dtype=np.float64)
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-7)


def test_snr_weight_makes_the_x0_mse_the_eps_mse():
    """Eq. 2.10 of seed 004: ||x0_theta - x0||^2 abar / (1 - abar) = ||eps_theta - eps||^2 for the x_0 that
    eps_theta implies (Eq. 2.9), on random data at every kind of index."""
    x0, t, noise = data()
    eps_d = diffusion()
    x0_d = diffusion(mean_type="x0", x0_weight="snr")
    xt = eps_d.q_sample(x0, t, noise)
    eps_theta = noise + 0.3 * rng.standard_normal(x0.shape)
    x0_theta = eps_d.predict_x0_from_eps(xt, t, eps_theta)
    eps_loss = eps_d.training_losses(lambda *_: eps_theta, x0, t, noise)["loss"]
    x0_loss = x0_d.training_losses(lambda *_: x0_theta, x0, t, noise)["loss"]
    np.testing.assert_allclose(x0_loss, eps_loss, rtol=1e-6)
    unweighted = diffusion(mean_type="x0").training_losses(lambda *_: x0_theta, x0, t, noise)["loss"]
    assert not np.allclose(unweighted, eps_loss, rtol=1e-2)


def test_learned_range_spans_the_two_fixed_variances():
    """v = +1 is log beta_t (fixedlarge, but index 0 where fixedlarge borrows beta-tilde), v = -1 is beta-tilde_t
    (fixedsmall); "learned" is v itself."""
    x0, t, noise = data()
    xt = diffusion().q_sample(x0, t, noise)
    d = diffusion(var_type="learned-range", loss_type="kl")
    large, small = diffusion(var_type="fixedlarge"), diffusion(var_type="fixedsmall")
    up = d.model_log_variance_of(np.ones_like(xt), t, xt)
    down = d.model_log_variance_of(-np.ones_like(xt), t, xt)
    np.testing.assert_allclose(down, np.broadcast_to(small.model_log_variance_of(None, t, xt), xt.shape), rtol=1e-12)
    inner = t > 0
    np.testing.assert_allclose(up[inner], np.broadcast_to(large.model_log_variance_of(None, t, xt), xt.shape)[inner],
                               rtol=1e-12)
    np.testing.assert_allclose(up[~inner], np.log(d.betas[0]), rtol=1e-12)
    v = rng.standard_normal(xt.shape)
    np.testing.assert_array_equal(diffusion(var_type="learned", loss_type="kl").model_log_variance_of(v, t, xt), v)


def test_learned_variance_bound_matches_the_fixed_one_at_its_ends():
    """The bound of a learned-range model answering v = -1 is the fixedsmall model's bound, term for term."""
    x0, t, noise = data()
    small = diffusion(var_type="fixedsmall", loss_type="kl")
    learned = diffusion(var_type="learned-range", loss_type="kl")
    eps = noise + 0.2 * rng.standard_normal(x0.shape)
    a = small.training_losses(lambda *_: eps, x0, t, noise)["loss"]
    b = learned.training_losses(lambda *_: np.concatenate([eps, -np.ones_like(eps)], 1), x0, t, noise)["loss"]
    np.testing.assert_allclose(b, a, rtol=1e-6)


def test_wrong_channel_count_is_refused():
    x0, t, noise = data()
    with pytest.raises(ValueError, match="2C channels"):
        diffusion(var_type="learned", loss_type="kl").training_losses(lambda *_: noise, x0, t, noise)
    with pytest.raises(ValueError, match="C channels"):
        diffusion().training_losses(lambda *_: np.concatenate([noise, noise], 1), x0, t, noise)


@pytest.mark.parametrize("settings", [dict(var_type="learned", loss_type="kl"),
                                      dict(var_type="learned-range", loss_type="kl"),
                                      dict(var_type="learned-range", loss_type="hybrid"),
                                      dict(mean_type="x0", var_type="learned-range", loss_type="kl"),
                                      dict(mean_type="mean", var_type="learned", loss_type="hybrid"),
                                      dict(mean_type="mean", loss_type="kl"),
                                      dict(mean_type="mean", loss_type="simple"),
                                      dict(mean_type="x0", x0_weight="snr")])
def test_loss_gradients(settings):
    """Every new head and loss, float64, against central finite differences in every output element (the
    decoder's index 0, an inner index and T-1 included)."""
    d = diffusion(**settings)
    x0, t, noise = data(B=3, C=1, H=2, W=3)
    C = 2 if d.learned_variance else 1
    out = np.concatenate([noise + 0.3 * rng.standard_normal(x0.shape),
                          rng.uniform(-0.9, 0.9, x0.shape)], 1)[:, :C * x0.shape[1]]
    if d.mean_type != "eps":
        out[:, :1] = x0 * 0.5 + 0.1 * rng.standard_normal(x0.shape)
    if d.loss_type != "hybrid":
        check_grads(lambda o: d.training_losses(lambda *_: o, x0, t, noise)["loss"], out, rtol=1e-4, atol=1e-7)
        return
    # The hybrid's mean gradient is not the forward loss's (the stop-gradient): only its variance part is
    # checked by finite differences here; test_hybrid_stops_the_bound_at_the_mean checks the mean part.
    C = x0.shape[1]
    check_grads(lambda m, v: d.training_losses(lambda *_: concat([m, v], axis=1), x0, t, noise)["loss"],
                out[:, :C], out[:, C:], wrt=[1], rtol=1e-4, atol=1e-7)


def test_hybrid_stops_the_bound_at_the_mean():
    """L_hybrid's gradient in the mean part is L_simple's alone; in the variance part it is lambda T L_vlb's."""
    d = diffusion(var_type="learned-range", loss_type="hybrid", hybrid_lambda=0.01)
    kl = diffusion(var_type="learned-range", loss_type="kl")
    x0, t, noise = data()
    C = x0.shape[1]
    out = np.concatenate([noise + 0.3 * rng.standard_normal(x0.shape), rng.uniform(-0.9, 0.9, x0.shape)], 1)

    def grad(dd, channels):
        o = Tensor(out[:, :channels].copy(), requires_grad=True)
        dd.training_losses(lambda *_: o, x0, t, noise)["loss"].sum().backward()
        return o.grad

    hybrid, mse, vb = grad(d, 2 * C), grad(diffusion(), C), grad(kl, 2 * C)
    np.testing.assert_allclose(hybrid[:, :C], mse, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hybrid[:, C:], 0.01 * T * vb[:, C:], rtol=1e-10, atol=1e-12)
    assert np.abs(vb[:, :C]).max() > 1e-3  # without the stop-gradient the bound would reach the mean


def test_gaussian_data_sampled_exactly_with_the_true_reverse_variance():
    """Closed form: for data N(0, s^2) the reverse step q(x_{t-1} | x_t) is Gaussian with mean k_t x_t and
    variance v_t (x_{t-1} and x_t are jointly Gaussian). A mean-model with a learned ("learned") variance
    answering exactly those, started from the true x_T, samples N(0, s^2) by Alg. 2 (but for the last step's
    variance, which Alg. 2 leaves out); either fixed variance, on this short chain, does not."""
    s2 = 0.01
    d = diffusion(mean_type="mean", var_type="learned", loss_type="kl")
    abar, abar_prev, alpha = d.alphas_cumprod, d.alphas_cumprod_prev, d.alphas
    var, var_prev = abar * s2 + 1 - abar, abar_prev * s2 + 1 - abar_prev
    k = np.sqrt(alpha) * var_prev / var
    v = var_prev - alpha * var_prev ** 2 / var

    def model(x, t):
        per_sample = (-1, 1, 1, 1)
        return np.concatenate([k[t].reshape(per_sample) * x, np.broadcast_to(np.log(v[t]).reshape(per_sample),
                                                                             x.shape)], 1)

    def sample(dd, fn):
        noise = np.random.default_rng(2)
        start = noise.standard_normal((4000, 1, 2, 2)) * np.sqrt(var[-1])
        return SAMPLERS["ancestral"](fn, dd, start.shape, noise, progress=False, dtype=np.float64,
                                     clip_denoised=False, x_start=start, start_index=T - 1).var() / s2

    assert abs(sample(d, model) - 1) < 0.03
    mean_only = lambda x, t: model(x, t)[:, :1]  # noqa: E731
    assert sample(diffusion(mean_type="mean", var_type="fixedlarge"), mean_only) > 1.12
    assert sample(diffusion(mean_type="mean", var_type="fixedsmall"), mean_only) < 0.8


def test_old_checkpoint_samples_as_before(tmp_path):
    """A checkpoint written before Table 2's settings existed (its config has none of them; tests/data holds its
    EMA weights and the samples that code drew) loads and draws the same samples."""
    here = Path(__file__).parent / "data"
    saved = json.loads((here / "old_tiny_run.json").read_text())
    assert "x0_weight" not in saved["config"] and "model_type" not in saved["config"]
    stored = np.load(here / "old_tiny_run.npz")
    arrays = {k: stored[k] for k in stored.files if k.startswith("ema/")}
    save_checkpoint(tmp_path, arrays, {**saved, "step": 3})
    before = get_backend()
    set_backend("numpy")
    try:
        for key in ("ancestral_T", "ancestral_5", "ddim_5"):
            sampler, steps = key.split("_")
            x = np.concatenate([x for _, x in sample_batches(tmp_path, 3, 7, 64, "ema", False, sampler,
                                                               None if steps == "T" else int(steps), None)])
            np.testing.assert_allclose(x, stored["samples/" + key], rtol=1e-5, atol=1e-6, err_msg=key)
    finally:
        set_backend(before)
