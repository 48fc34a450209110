"""The 2-D toy: the MLP eps-model (shapes, float64 gradients through L_simple), the toy data sets and their
closeness measures."""

import numpy as np
import pytest

from pyddpm.diffusion.gaussian_diffusion import GaussianDiffusion
from pyddpm.diffusion.schedules import make_beta_schedule
from pyddpm.diffusion.toy_data import DATASETS, SPIRAL_COMPONENTS, SPIRAL_STD, mixture, weight_tv, within
from pyddpm.models.mlp import MLP


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
