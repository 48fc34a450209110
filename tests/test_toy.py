"""The 2-D toy: the MLP eps-model (shapes, float64 gradients through L_simple), the toy data sets and their
closeness measures, a short training run that learns the mixture's weights, and the command line."""

import sys

import numpy as np
import pytest

from pyddpm import toy as toy_cli
from pyddpm.autograd import Tensor, no_grad
from pyddpm.diffusion.gaussian_diffusion import GaussianDiffusion
from pyddpm.diffusion.samplers import ddim
from pyddpm.diffusion.schedules import make_beta_schedule
from pyddpm.diffusion.toy_data import DATASETS, SPIRAL_COMPONENTS, SPIRAL_STD, mixture, weight_tv, within
from pyddpm.models.mlp import MLP
from pyddpm.train.builders import model_fn_arrays


def test_mlp_output_shape_and_near_zero_start():
    model = MLP()
    x = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    out = model(x, np.array([0, 1, 50, 98, 99]))
    assert out.shape == (5, 2) and out.dtype == np.float32
    # The output layer starts at scale 1e-10, as the U-Net's conv_out: eps_theta = 0 at step 0.
    assert np.abs(out.data).max() < 1e-3
    with pytest.raises(ValueError, match="x must be"):
        model(np.zeros((5, 3), np.float32), np.zeros(5, np.int64))
    with pytest.raises(ValueError, match="t must be"):
        model(x, np.zeros(4, np.int64))


def test_input_scale_widens_only_the_first_layer():
    narrow, wide = MLP(input_scale=1.0, seed=3), MLP(input_scale=40.0, seed=3)
    ratio = np.abs(wide.layers[0].weight.data).max() / np.abs(narrow.layers[0].weight.data).max()
    assert 30 < ratio < 50
    np.testing.assert_array_equal(narrow.layers[1].weight.data, wide.layers[1].weight.data)


def test_every_parameter_gradient_through_training_losses_in_float64():
    """L_simple (Eq. 14) of the MLP, backward to every parameter element, against central differences."""
    diffusion = GaussianDiffusion(make_beta_schedule("linear", 50), "eps", "fixedlarge", "simple")
    model = MLP(hidden=6, depth=2, emb_dim=6, input_scale=3.0, seed=1).astype(np.float64)
    rng = np.random.default_rng(2)
    for p in model.parameters():  # away from the ~zero output layer, where the gradients below it vanish
        p.data = p.data + 0.3 * rng.standard_normal(p.shape)
    x0, noise = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    t = np.array([0, 7, 31, 49])

    def loss():
        return diffusion.training_losses(model, x0, t, noise)["loss"].mean()
    model.zero_grad()
    loss().backward()
    h, checked = 1e-6, 0
    for name, p in model.named_parameters():
        numeric = np.zeros_like(p.data)
        for idx in np.ndindex(p.shape):
            p.data[idx] += h
            up = loss().item()
            p.data[idx] -= 2 * h
            down = loss().item()
            p.data[idx] += h
            numeric[idx] = (up - down) / (2 * h)
            checked += 1
        np.testing.assert_allclose(p.grad, numeric, rtol=1e-5, atol=1e-9, err_msg=name)
    assert checked == model.num_parameters()


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_toy_data_sample_shapes_and_density_integrating_to_one(name):
    gm = DATASETS[name]()
    x, labels = gm.sample(500, np.random.default_rng(0))
    assert x.shape == (500, 2) and labels.shape == (500,) and 0 <= labels.min() <= labels.max() < len(gm.weights)
    assert np.abs(gm.means).max() < 1.0  # the data lie in about [-1, 1]^2, the chain's range
    axis = np.linspace(-1.5, 1.5, 201)  # spacing 0.015: the sum is exact far below 1e-3 for stds >= 0.03
    points = np.stack([a.ravel() for a in np.meshgrid(axis, axis)], axis=1)
    mass = np.exp(gm.log_density(points)).sum() * (axis[1] - axis[0]) ** 2
    assert abs(mass - 1.0) < 1e-3


def test_the_two_sets_are_what_their_docstrings_say():
    gm = mixture()
    np.testing.assert_allclose(gm.weights, [0.5, 0.3, 0.2])
    gaps = [np.linalg.norm(gm.means[a] - gm.means[b]) for a, b in ((0, 1), (1, 2), (0, 2))]
    largest_std = np.sqrt(np.linalg.eigvalsh(gm.covs).max())
    assert min(gaps) > 6 * largest_std  # well separated
    spiral = DATASETS["spiral"]()
    assert len(spiral.weights) == SPIRAL_COMPONENTS
    np.testing.assert_allclose(spiral.covs, np.broadcast_to(SPIRAL_STD ** 2 * np.eye(2), spiral.covs.shape))
    steps = np.linalg.norm(np.diff(spiral.means, axis=0), axis=1)
    np.testing.assert_allclose(steps, steps.mean(), rtol=0.02)  # evenly spaced along the curve


def test_closeness_measures_on_data_and_off_it():
    gm = mixture()
    x = gm.sample(20_000, np.random.default_rng(1))[0]
    assert abs(within(gm, x) - (1 - np.exp(-4.5))) < 0.005  # P(chi_2 <= 3) for data in 2-D
    assert weight_tv(gm, x) < 0.02
    far = np.full((10, 2), 5.0)
    assert within(gm, far) == 0.0
    one_mode = gm.means[0] + 0.01 * np.random.default_rng(2).standard_normal((100, 2))
    assert weight_tv(gm, one_mode) == pytest.approx(0.5)  # all in the 0.5-weight mode: half the mass misplaced


def test_a_few_seconds_of_training_lowers_the_loss_and_ddim_recovers_the_weights():
    gm, diffusion = mixture(), toy_cli.toy_diffusion(100)
    rng = np.random.default_rng(7)
    x0 = gm.sample(2000, rng)[0].astype(np.float32)
    t, noise = rng.integers(0, 100, 2000), rng.standard_normal((2000, 2)).astype(np.float32)

    def held_out_loss(model_fn):
        with no_grad():
            loss = diffusion.training_losses(model_fn, x0, t, noise)["loss"].mean()
        return float(loss.data if isinstance(loss, Tensor) else loss)
    # The exact eps* = E[eps | x_t] is L_simple's minimiser: its loss is the floor no network goes below.
    floor = held_out_loss(gm.eps_model(diffusion.alphas_cumprod))
    assert held_out_loss(MLP(seed=0)) > floor + 0.5  # eps_theta ~ 0 at the start
    model, losses = toy_cli.train_mlp(gm, diffusion, steps=800, progress=False)
    assert losses.shape == (800,) and np.isfinite(losses).all()
    assert held_out_loss(model) < floor + 0.01
    with no_grad():
        x = ddim(model_fn_arrays(model), diffusion, (2000, 2), np.random.default_rng(8), 50, clip_denoised=False,
                 progress=False)
    # Shares alone would pass for samples spread over the plane, which fall by regions roughly as the weights:
    # most samples must also lie on a component.
    assert within(gm, x) > 0.8
    shares = np.bincount(gm.responsibilities(x).argmax(axis=1), minlength=3) / len(x)
    np.testing.assert_allclose(shares, gm.weights, atol=0.05)


def main(*argv):
    return toy_cli.main([str(a) for a in argv])


def test_the_command_line_writes_a_png_and_the_table(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="pyddpm.toy draws with matplotlib (pip install -e '.[report]')")
    out = tmp_path / "pictures" / "toy.png"
    assert main("--data", "mixture", "--out", out, "--steps", 20, "--batch-size", 32, "--samples", 40,
                "--sample-steps", 4) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["toy.png"]  # no temporary file left beside it
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["data (reference)", *toy_cli.SAMPLERS]
    assert "trained 20 steps" in printed


@pytest.mark.parametrize("argv, flag", [
    (["--steps", "0"], "--steps"),
    (["--sample-steps", "101"], "--sample-steps"),
    (["--timesteps", "20"], "--timesteps"),
    (["--lr", "nan"], "--lr"),
    (["--seed", "-1"], "--seed"),
])
def test_bad_flags_are_refused_by_name(tmp_path, capsys, argv, flag):
    assert main("--out", tmp_path / "toy.png", *argv) == 2
    assert flag in capsys.readouterr().err
    assert not (tmp_path / "toy.png").exists()


def test_a_folder_as_out_and_an_unknown_data_set_are_refused(tmp_path, capsys):
    assert main("--out", tmp_path) == 2
    assert "--out" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main("--data", "moons")
    assert e.value.code == 2 and "--data" in capsys.readouterr().err


def test_without_matplotlib_it_says_what_to_install_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what `import matplotlib` meets where it is absent

    def no_training(*args, **kwargs):
        raise AssertionError("trained before finding that matplotlib is missing")
    monkeypatch.setattr(toy_cli, "train_mlp", no_training)
    assert main("--out", tmp_path / "toy.png") == 2
    assert "pip install -e '.[report]'" in capsys.readouterr().err
