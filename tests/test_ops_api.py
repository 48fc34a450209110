"""The kernels are callable by their fixed names as pyddpm.ops.<name>(..., backend=...)."""

import inspect

import numpy as np
import pytest

import pyddpm.ops as ops
from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule
from pyddpm.reverse_step import step_coefs

NAMES = ["group_norm", "group_norm_backward", "attention", "attention_backward", "q_sample", "sampler_step",
         "discretized_gaussian_log_likelihood", "normal_kl", "adam_ema"]


@pytest.mark.parametrize("name", NAMES)
def test_fixed_names_are_the_dispatch_functions(name):
    fn = getattr(ops, name)
    assert callable(fn) and fn.__module__.startswith("pyddpm.ops.")
    assert "backend" in fn.__code__.co_varnames


def test_sampler_step_signature():
    """log_variance after the two flags and before backend, so that the positional calls of before still mean
    what they meant."""
    assert list(inspect.signature(ops.sampler_step).parameters) == [
        "model_output", "x", "noise", "coefs", "clip_denoised", "return_pred_x0", "log_variance", "backend"]
    assert inspect.signature(ops.sampler_step).parameters["log_variance"].default is None


def test_calls_through_the_package_match_the_references():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 3, 3))
    g, b = rng.standard_normal(4), rng.standard_normal(4)
    y, mean, rstd = ops.group_norm(x, g, b, 2, silu=True, backend="numpy")
    dx, _, _ = ops.group_norm_backward(np.ones_like(x), x, g, b, mean, rstd, 2, silu=True, backend="numpy")
    assert y.shape == dx.shape == x.shape
    q = rng.standard_normal((1, 1, 5, 3))
    out, p = ops.attention(q, q, q, backend="numpy")
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    assert all(a.shape == q.shape for a in ops.attention_backward(out, q, q, q, p, backend="numpy"))
    d = GaussianDiffusion(make_beta_schedule("linear", 10))
    t = np.array([0, 9])
    xt = ops.q_sample(x, t, x, d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod, backend="numpy")
    coefs = ops.StepCoefs(*step_coefs(d.step_tables, t, "eps"))
    x_next, _ = ops.sampler_step(x, xt, x, coefs, backend="numpy")
    assert x_next.shape == x.shape
    sigma_one, _ = ops.sampler_step(x, xt, x, coefs, log_variance=np.zeros_like(x), backend="numpy")
    np.testing.assert_array_equal(sigma_one, x_next)  # exp(0.5 * 0) = 1: the step without one
    data = np.clip(np.round((x * 0.3) * 127.5) / 127.5, -1, 1)
    bpd = ops.discretized_gaussian_log_likelihood(data, data, np.full(2, -3.0), per_sample_bpd=True, backend="numpy")
    kl = ops.normal_kl(x, np.zeros(2), x, np.zeros(2), per_sample_bpd=True, backend="numpy")
    assert bpd.shape == kl.shape == (2,) and np.all(bpd > 0) and np.allclose(kl, 0.0)
