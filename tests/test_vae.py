"""The one-latent VAE baseline (pyddpm.models.vae, pyddpm.vae_bound, --model vae): its gradients, the KL's
closed form, the bound's validity (ELBO <= IWAE <= log p(x), checked against log p(x) by quadrature for a
one-dimensional latent), and train -> resume -> sample -> evaluate on the command lines, with the diffusion's
flags refused by name."""

import json
import math
import shutil

import numpy as np
import pytest
from PIL import Image

from pyddpm import evaluate as evaluate_cli
from pyddpm import likelihood
from pyddpm import sample as sample_cli
from pyddpm.autograd import Tensor, no_grad
from pyddpm.checkpoint import CheckpointError, load_checkpoint
from pyddpm.data import load_data, make_digits, to_model_range
from pyddpm.models import VAE
from pyddpm.models.vae import ResBlock
from pyddpm.sampling import sample, sample_batches
from pyddpm.train import TrainConfig, VAETrainer, preset_config, train
from pyddpm.train import __main__ as train_cli
from pyddpm.train.builders import load_trained
from pyddpm.vae_bound import (decoded_images, elbo_terms, iwae_bpd, iwae_log_weights, kl_to_prior, reconstructions,
                              reparameterize)
from pyddpm.vae_cli import vae_evaluate, vae_reconstructions, vae_samples

QUIET = dict(log=lambda *_: None)


def small_vae(z_dim=2, seed=0, spread=0.5):
    """A float64 VAE on 4x4 images whose ~zero-initialised layers (the output layers, each residual branch's last
    convolution) are drawn at random, so that q(z|x) is not the prior, the decoder depends on z and every
    parameter's gradient is far from 0: every term of the bound, and every gradient, is then non-trivial."""
    model = VAE(image_size=4, in_ch=1, ch=4, ch_mult=(1, 2), num_res_blocks=1, z_dim=z_dim, seed=seed)
    rng = np.random.default_rng(seed + 100)
    for block in model.modules():
        if isinstance(block, ResBlock):
            block.conv2.weight.data = rng.normal(0.0, 0.3, block.conv2.weight.shape)
    for layer in (model.enc_out, model.dec_out):
        layer.weight.data = rng.normal(0.0, spread, layer.weight.shape)
        layer.bias.data = rng.normal(0.0, 0.1, layer.bias.shape)
    return model.astype(np.float64)


def grid_images(n, seed=0, size=4):
    """Images on the 256-level grid in [-1, 1], float64 (n, 1, size, size), edge bins included."""
    x = np.random.default_rng(seed).integers(0, 256, (n, 1, size, size))
    x[:, :, 0, 0], x[:, :, -1, -1] = 0, 255
    return x / 127.5 - 1.0


# --- the math --------------------------------------------------------------------------------------------------
def test_the_loss_gradient_matches_finite_differences_for_every_parameter():
    model, x = small_vae(), grid_images(3)
    eps = np.random.default_rng(1).standard_normal((3, 2))
    weights = np.random.default_rng(2).standard_normal(3)

    def loss():
        return float((elbo_terms(model, x, eps)["loss"].data * weights).sum())

    model.zero_grad()
    (elbo_terms(model, x, eps)["loss"] * weights).sum().backward()
    rng, h = np.random.default_rng(3), 1e-5
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        for idx in {tuple(int(rng.integers(0, s)) for s in p.shape) for _ in range(3)}:
            saved = p.data[idx]
            p.data[idx] = saved + h
            plus = loss()
            p.data[idx] = saved - h
            minus = loss()
            p.data[idx] = saved
            np.testing.assert_allclose(p.grad[idx], (plus - minus) / (2 * h), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name}{list(idx)}")


def test_the_decoder_log_scales_get_a_gradient():
    """The per-pixel log-scale channels of the output layer must learn: their rows of dec_out get a gradient."""
    model, x = small_vae(), grid_images(2)
    elbo_terms(model, x, np.zeros((2, 2)))["loss"].sum().backward()
    grad = model.dec_out.weight.grad  # (2C, ch, 3, 3): means, then log_scales
    assert np.abs(grad[1:]).max() > 1e-6 and np.abs(model.dec_out.bias.grad[1]) > 1e-6


def test_the_reparameterisation_carries_the_reconstruction_gradient_to_the_encoder():
    model, x = small_vae(), grid_images(2)
    eps = np.random.default_rng(0).standard_normal((2, 2))
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar, eps)
    np.testing.assert_allclose(z.data, mu.data + np.exp(0.5 * logvar.data) * eps)
    terms = elbo_terms(model, x, eps)
    model.zero_grad()
    terms["recon"].sum().backward()  # no KL: the encoder is reached through z alone
    assert np.abs(model.enc_in.weight.grad).max() > 1e-6
    assert np.abs(model.enc_out.weight.grad).max() > 1e-6
    # With eps = 0, z = mu: log sigma^2 gets no gradient from the reconstruction (its half of enc_out).
    model.zero_grad()
    elbo_terms(model, x, np.zeros((2, 2)))["recon"].sum().backward()
    assert np.abs(model.enc_out.bias.grad[2:]).max() == 0 and np.abs(model.enc_out.bias.grad[:2]).max() > 1e-6


def test_the_kl_closed_form_matches_monte_carlo():
    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(0, 1, (3, 5)), rng.normal(0, 0.7, (3, 5))
    closed = kl_to_prior(Tensor(mu), Tensor(logvar)).data
    eps = rng.standard_normal((200_000, 3, 5))
    z = mu + np.exp(0.5 * logvar) * eps
    log_ratio = (-0.5 * eps ** 2 - 0.5 * logvar + 0.5 * z ** 2).sum(axis=2)  # log q(z|x) - log p(z)
    se = log_ratio.std(axis=0) / math.sqrt(len(eps))
    assert np.all(np.abs(log_ratio.mean(axis=0) - closed) < 4 * se)
    assert np.all(closed > 0)
    np.testing.assert_allclose(kl_to_prior(Tensor(np.zeros((1, 5))), Tensor(np.zeros((1, 5)))).data, 0.0)


def exact_bpd(model, x, points=4001, span=10.0):
    """-log p(x) in bits/dim for a one-dimensional latent, by the trapezoid rule over z in [-span, span]."""
    z = np.linspace(-span, span, points)
    log_px = []
    for image in x:
        with no_grad():
            means, log_scales = (t.data for t in model.decode(z[:, None]))
        log_pxz = likelihood.discretized_gaussian_log_likelihood(np.broadcast_to(image, means.shape), means,
                                                                 log_scales).reshape(points, -1).sum(axis=1)
        f = log_pxz - 0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)
        top = f.max()
        log_px.append(top + math.log(np.trapezoid(np.exp(f - top), z)))
    return -np.array(log_px) / (x[0].size * math.log(2.0))


def test_elbo_and_iwae_bound_the_exact_likelihood_and_iwae_tightens_with_k():
    model, x = small_vae(z_dim=1, spread=0.2), grid_images(4)
    exact, dims = exact_bpd(model, x), x[0].size
    eps = np.random.default_rng(0).standard_normal((4096, 4, 1))
    with no_grad():
        log_w, recon = iwae_log_weights(model, x, eps)
        kl = elbo_terms(model, x, eps[0])["kl"].data
    elbo = recon.mean(axis=0) / (dims * math.log(2.0)) + kl  # -ELBO in bits/dim, as evaluate reports it
    by_k = {k: iwae_bpd(log_w[:k], dims) for k in (1, 4096)}
    assert np.all(elbo > exact + 1e-3), "the ELBO must lie below log p(x): its bits/dim above"
    assert np.all(by_k[4096] < elbo)
    assert np.all(np.abs(by_k[4096] - exact) < 0.1 * (elbo - exact)), "IWAE at K = 4096 is near log p(x)"
    # Non-increasing in K on average: the mean over disjoint groups of K of the 4096 draws.
    means = [iwae_bpd(log_w.reshape(4096 // k, k, 4).transpose(1, 0, 2).reshape(k, -1), dims).mean()
             for k in (1, 4, 16, 64, 256)]
    assert all(a > b for a, b in zip(means, means[1:])), means
    assert means[-1] > exact.mean() - 1e-3


def test_the_single_draw_bound_averages_to_the_closed_form_elbo():
    """The IWAE bound at K = 1 is the ELBO with its KL by Monte Carlo: over many draws it must agree with the
    closed-form KL of elbo_terms (a sign or a constant wrong in log p(z) or log q(z|x) would not)."""
    model, x = small_vae(z_dim=3), grid_images(3)
    eps = np.random.default_rng(0).standard_normal((20_000, 3, 3))
    with no_grad():
        log_w, recon = iwae_log_weights(model, x, eps)
        kl = elbo_terms(model, x, eps[0])["kl"].data * (x[0].size * math.log(2.0))
    mc_kl = -log_w - recon  # log q - log p(z), per draw
    se = mc_kl.std(axis=0) / math.sqrt(len(eps))
    assert np.all(np.abs(mc_kl.mean(axis=0) - kl) < 4 * se + 1e-9)


def test_decoded_images_are_means_or_draws_on_the_grid():
    means = np.array([[[[-3.0, 0.2], [0.5, 3.0]]]])
    log_scales = np.full_like(means, -1.0)
    np.testing.assert_array_equal(decoded_images(means, log_scales), np.clip(means, -1, 1))
    draw = decoded_images(means, log_scales, np.random.default_rng(0).standard_normal(means.shape))
    np.testing.assert_allclose((draw + 1) * 127.5, np.rint((draw + 1) * 127.5), atol=1e-9)
    assert draw.min() >= -1 and draw.max() <= 1 and not np.array_equal(draw, np.clip(means, -1, 1))


def test_reconstructions_are_the_decoder_means_at_the_posterior_mean():
    model, x = small_vae(), grid_images(2)
    with no_grad():
        mu, _ = model.encode(x)
        means, _ = model.decode(mu.data)
        np.testing.assert_array_equal(reconstructions(model, x), np.clip(means.data, -1, 1))


def test_bad_shapes_are_refused_by_name():
    model = small_vae()
    with pytest.raises(ValueError, match=r"x must be \(B, 1, 4, 4\)"):
        model.encode(np.zeros((2, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"z must be \(B, 2\)"):
        model.decode(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="unknown VAE preset"):
        VAE.from_preset("cifar10")


# --- training and the command lines ---------------------------------------------------------------------------
def tiny_vae(tmp_path, **kw):
    return preset_config("tiny", model_type="vae", out=str(tmp_path / "run"), **kw)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    """A tiny VAE run through the command line (6 steps; checkpoints at 3 and 6; grids at 3 and 6). Read only."""
    out = tmp_path_factory.mktemp("vae_run") / "run"
    assert train_cli.main(["--preset", "tiny", "--model", "vae", "--out", str(out)]) == 0
    return out


def test_train_writes_checkpoint_log_and_grids(vae_run):
    arrays, meta = load_checkpoint(vae_run)
    assert meta["step"] == 6 and meta["config"]["model_type"] == "vae"
    assert any(k.startswith("model/enc_in") for k in arrays) and any(k.startswith("ema/dec_out") for k in arrays)
    assert not np.array_equal(arrays["model/dec_out.bias"], arrays["ema/dec_out.bias"])  # the EMA lags
    log = [json.loads(line) for line in (vae_run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6] and all(0 < r["loss"] < 16 for r in log)
    grids = sorted(p.name for p in (vae_run / "samples").glob("*.png"))
    assert grids == ["step0000003.png", "step0000006.png"]
    _, model, diffusion, _ = load_trained(vae_run, model_type="vae")
    assert isinstance(model, VAE) and diffusion is None


def test_training_reduces_the_negative_elbo(tmp_path):
    train(tiny_vae(tmp_path, steps=40, batch_size=16, lr=2e-3, warmup=5, log_every=10, ckpt_every=40,
                   sample_every=0, n_samples=1), **QUIET)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < 0.85 * log[0]["loss"]


def test_resume_is_exact(tmp_path):
    train(tiny_vae(tmp_path / "a", steps=6, sample_every=0, ckpt_every=6, n_samples=1), **QUIET)
    train(tiny_vae(tmp_path / "b", steps=4, sample_every=0, ckpt_every=4, n_samples=1), **QUIET)
    assert train_cli.main(["--out", str(tmp_path / "b" / "run"), "--resume", "--steps", "6"]) == 0
    a, meta_a = load_checkpoint(tmp_path / "a" / "run")
    b, meta_b = load_checkpoint(tmp_path / "b" / "run")
    assert meta_a["step"] == meta_b["step"] == 6 and meta_a["rng_state"] == meta_b["rng_state"]
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path):
    trainer = VAETrainer(tiny_vae(tmp_path, steps=50, sample_every=0, ckpt_every=1000, n_samples=1), **QUIET)
    real_step = trainer.train_step

    def step_then_interrupt(after_update=None):
        result = real_step(after_update)
        if trainer.step == 3:
            raise KeyboardInterrupt
        return result
    trainer.train_step = step_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert load_checkpoint(tmp_path / "run")[1]["step"] == 3


def test_sample_writes_prior_samples_and_reconstructions(vae_run, tmp_path):
    out, rec, npz = tmp_path / "s.png", tmp_path / "r.png", tmp_path / "s.npz"
    assert sample_cli.main(["--ckpt", str(vae_run), "--n", "5", "--out", str(out), "--reconstruct", str(rec),
                            "--npz", str(npz)]) == 0
    images = np.load(npz)["images"]
    assert images.shape == (5, 1, 16, 16) and images.dtype == np.uint8 and images.std() > 0
    assert Image.open(out).size[0] > 16
    assert Image.open(rec).size == (5 * 65 + 1, 2 * 65 + 1)  # a row of 5 test images, a row of reconstructions
    grid, per_row = vae_reconstructions(vae_run, 10)
    assert per_row == 8 and grid.shape == (32, 1, 16, 16)  # rows: 8 test, 8 reconstructed, 2 + 6 black, 2 + 6
    np.testing.assert_array_equal(grid[:8], load_data("digits", "test").images[:8])
    assert not grid[26:32].any() and grid[24:26].any()


def test_samples_do_not_depend_on_the_batch_size(vae_run):
    np.testing.assert_array_equal(vae_samples(vae_run, 5, seed=3, batch_size=2, progress=False),
                                  sample(vae_run, 5, seed=3, batch_size=5, progress=False))
    assert not np.array_equal(vae_samples(vae_run, 5, seed=3, progress=False),
                              vae_samples(vae_run, 5, seed=4, progress=False))


def test_evaluate_reports_elbo_and_iwae(vae_run, tmp_path, capsys):
    out = tmp_path / "e.json"
    assert evaluate_cli.main(["--ckpt", str(vae_run), "--n", "6", "--batch-size", "4", "--iwae", "8",
                              "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["model_type"] == "vae" and r["n"] == 6 and r["iwae_k"] == 8 and r["kl_bpd"] == 0
    np.testing.assert_allclose(r["total_bpd"], r["decoder_bpd"] + r["prior_bpd"], rtol=1e-12)
    assert 0 < r["iwae_bpd"] < r["total_bpd"] < 16 and r["prior_bpd"] >= 0
    assert "IWAE with K = 8" in capsys.readouterr().out
    same = vae_evaluate(vae_run, n=6, batch_size=6, iwae_k=8, progress=False)
    np.testing.assert_allclose(same["iwae_bpd"], r["iwae_bpd"], rtol=1e-6)  # batch size does not matter


def test_evaluate_scores_the_samples(vae_run, tmp_path):
    out, grid = tmp_path / "e.json", tmp_path / "g.png"
    assert evaluate_cli.main(["--ckpt", str(vae_run), "--skip-bpd", "--samples", "4", "--out", str(out),
                              "--grid", str(grid), "--cache-dir", str(tmp_path / "cache")]) == 0
    rows = json.loads(out.read_text())["sample_metrics"]["rows"]
    assert np.isfinite(rows["samples"]["fd"]) and grid.exists()


@pytest.mark.parametrize("argv, message", [
    (["--sampler", "ddim"], "--sampler is a diffusion setting"),
    (["--steps", "5"], "--steps is a diffusion setting"),
    (["--trajectory"], "--trajectory is a diffusion setting"),
    (["--interpolate", "5"], "--interpolate is a diffusion setting"),
])
def test_sample_refuses_diffusion_flags_on_a_vae_run(vae_run, tmp_path, capsys, argv, message):
    assert sample_cli.main(["--ckpt", str(vae_run), "--out", str(tmp_path / "s.png"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "is a VAE run (--model vae)" in err
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["--ode-bpd", "5"], "--ode-bpd is a diffusion setting"),
    (["--iwae", "0"], "--iwae must be an integer >= 1"),
])
def test_evaluate_refuses_bad_flags_on_a_vae_run(vae_run, tmp_path, capsys, argv, message):
    assert evaluate_cli.main(["--ckpt", str(vae_run), "--n", "2", "--out", str(tmp_path / "e.json"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "e.json").exists()


def test_vae_flags_are_refused_on_a_ddpm_run(tiny_run, tmp_path, capsys):
    assert evaluate_cli.main(["--ckpt", str(tiny_run), "--iwae", "4", "--out", str(tmp_path / "e.json")]) == 2
    assert "--iwae applies to VAE runs" in capsys.readouterr().err
    assert sample_cli.main(["--ckpt", str(tiny_run), "--reconstruct", str(tmp_path / "r.png"),
                            "--out", str(tmp_path / "s.png")]) == 2
    assert "--reconstruct applies to VAE runs" in capsys.readouterr().err


def test_the_diffusion_paths_refuse_a_vae_run_by_name(vae_run):
    with pytest.raises(CheckpointError, match="the run is a VAE"):
        load_trained(vae_run)
    with pytest.raises(CheckpointError, match="the run is a VAE"):
        next(sample_batches(vae_run, 2, progress=False))


@pytest.mark.parametrize("argv, message", [
    (["--mean-type", "x0"], "--mean-type is a diffusion setting; --model vae has no diffusion"),
    (["--timesteps", "50"], "--timesteps is a diffusion setting"),
])
def test_train_refuses_diffusion_flags_with_model_vae(tmp_path, capsys, argv, message):
    assert train_cli.main(["--preset", "tiny", "--model", "vae", "--out", str(tmp_path / "run"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_resume_refuses_a_changed_model_type(vae_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(vae_run, run)
    assert train_cli.main(["--out", str(run), "--resume", "--model", "ddpm", "--steps", "8"]) == 2
    assert "--model ddpm: the run" in capsys.readouterr().err


def test_an_old_config_without_model_type_is_a_ddpm(tiny_run, tmp_path):
    d = preset_config("tiny").to_dict()
    del d["model_type"]
    assert TrainConfig.from_dict(d).model_type == "ddpm"
    run = tmp_path / "old"
    shutil.copytree(tiny_run, run)
    manifest = json.loads((run / "checkpoint.json").read_text())
    del manifest["meta"]["config"]["model_type"]
    (run / "checkpoint.json").write_text(json.dumps(manifest))
    cfg, _, diffusion, _ = load_trained(run)
    assert cfg.model_type == "ddpm" and diffusion is not None
    assert sample(run, 1, progress=False).shape == (1, 1, 16, 16)


def test_the_digits_preset_shapes_and_size():
    """A smoke check of the digits preset's shapes: encode and decode 16x16 digits to (B, 32) and back."""
    model = VAE.from_preset("digits")
    x = to_model_range(make_digits(2, seed=0)[0])
    with no_grad():
        mu, logvar = model.encode(x)
        means, log_scales = model.decode(mu.data)
    assert mu.shape == logvar.shape == (2, 32) and means.shape == log_scales.shape == (2, 1, 16, 16)
    assert 300_000 < model.num_parameters() < 1_200_000
