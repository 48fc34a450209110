"""make_beta_schedule: endpoints, shapes, monotonicity, the cosine cap, and argument errors."""

import math

import numpy as np
import pytest

from pyddpm.diffusion import make_beta_schedule


def test_linear_is_the_papers_schedule():
    betas = make_beta_schedule("linear", 1000)
    assert betas.shape == (1000,) and betas.dtype == np.float64
    assert betas[0] == 1e-4 and betas[-1] == 0.02  # beta_1 and beta_T (App. B)
    np.testing.assert_allclose(np.diff(betas), (0.02 - 1e-4) / 999, rtol=1e-9)


def test_linear_and_quad_take_endpoints():
    for kind in ("linear", "quad"):
        betas = make_beta_schedule(kind, 7, beta_start=0.001, beta_end=0.3)
        np.testing.assert_allclose(betas[[0, -1]], [0.001, 0.3], rtol=1e-14)
        assert betas.shape == (7,) and np.all(np.diff(betas) > 0)


def test_quad_is_linear_in_sqrt_beta():
    betas = make_beta_schedule("quad", 50)
    assert betas.dtype == np.float64
    np.testing.assert_allclose(betas[[0, -1]], [1e-4, 0.02], rtol=1e-14)
    np.testing.assert_allclose(np.diff(np.sqrt(betas)), (math.sqrt(0.02) - 0.01) / 49, rtol=1e-9)
    linear = make_beta_schedule("linear", 50)
    assert np.all(betas[1:-1] < linear[1:-1])  # the square of a chord lies below the chord


def test_cosine_follows_alpha_bar_and_is_capped():
    T, s = 1000, 0.008
    betas = make_beta_schedule("cosine", T)
    assert betas.shape == (T,) and betas.dtype == np.float64
    assert np.all(np.diff(betas) >= 0) and betas.max() == 0.999  # f(T) = 0 would give beta_T = 1: capped
    f = np.cos((np.arange(T + 1) / T + s) / (1 + s) * math.pi / 2) ** 2
    # Below the cap, the cumulative product reproduces alpha-bar(t) = f(t) / f(0) (Nichol & Dhariwal Eq. 17).
    uncapped = betas < 0.999
    assert uncapped.sum() >= T - 2
    np.testing.assert_allclose(np.cumprod(1 - betas)[uncapped], (f[1:] / f[0])[uncapped], rtol=1e-10)
    assert make_beta_schedule("cosine", T, max_beta=0.5).max() == 0.5


def test_const():
    np.testing.assert_array_equal(make_beta_schedule("const", 5), np.full(5, 0.02))
    np.testing.assert_array_equal(make_beta_schedule("const", 3, beta=0.1), np.full(3, 0.1))


def test_single_step():
    assert make_beta_schedule("linear", 1).tolist() == [1e-4]


@pytest.mark.parametrize("kind, T, kw, error", [
    ("lineer", 10, {}, ValueError),
    ("linear", 0, {}, ValueError),
    ("linear", -3, {}, ValueError),
    ("linear", 2.5, {}, ValueError),
    ("linear", 10, {"beta_end": 1.0}, ValueError),  # alpha_T = 0 would destroy x_T entirely
    ("linear", 10, {"beta_start": 0.0}, ValueError),
    ("quad", 10, {"beta_end": -0.1}, ValueError),
    ("const", 10, {"beta": 1.5}, ValueError),
    ("cosine", 10, {"max_beta": 1.0}, ValueError),
    ("linear", 10, {"beta": 0.1}, TypeError),  # a keyword of another schedule
])
def test_bad_arguments(kind, T, kw, error):
    with pytest.raises(error):
        make_beta_schedule(kind, T, **kw)
