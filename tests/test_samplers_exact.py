"""Every sampler driven by the exact eps*(x_t, t) of data whose optimal denoiser is known in closed form.

Data: a 2-D Gaussian with a non-identity covariance, and a mixture of two well-separated Gaussians
(pyddpm.diffusion.gaussian_mixture). With the exact score each sampler must reproduce the data: mean and
covariance within 4 Monte-Carlo standard errors at 4,000 samples, mixture weights within 3 points. The same
check must fail when one sign or coefficient of the sampler is changed (the mutation tests below), so it can
catch a wrong sampler.
"""

import importlib
import math

import numpy as np
import pytest

from pyddpm.diffusion import samplers
from pyddpm.diffusion.gaussian_diffusion import GaussianDiffusion
from pyddpm.diffusion.gaussian_mixture import GaussianMixture
from pyddpm.diffusion.schedules import make_beta_schedule
from pyddpm.diffusion.score import score_coefs

# The modules, not the functions of the same name that the package exports.
ancestral_module, ddim_module, langevin_module, ode_module, sde_module = (
    importlib.import_module(f"pyddpm.diffusion.samplers.{name}") for name in ("ancestral", "ddim", "langevin", "ode",
                                                                             "sde"))
# The originals, kept before any test replaces them.
DDIM_COEFS, EULER_MARUYAMA_COEFS, HEUN_COEFS = (ddim_module.ddim_coefs, sde_module.euler_maruyama_coefs,
                                                ode_module.heun_coefs)

N = 4000
DIFFUSION = GaussianDiffusion(make_beta_schedule("linear", 1000))
MEAN = np.array([0.3, -0.2])
COV = np.array([[0.2, 0.1], [0.1, 0.15]])
GAUSSIAN = GaussianMixture([1.0], [MEAN], [COV])
MIXTURE = GaussianMixture([0.25, 0.75], [[-1.0, 0.0], [1.0, 0.5]], [np.eye(2) * 0.01, np.eye(2) * 0.02])

# Each sampler with a step count at which its discretisation error is well under the Monte-Carlo error.
CONFIGS = {
    "ancestral": ("ancestral", dict(steps=1000)),
    "ancestral-strided": ("ancestral", dict(steps=100)),
    "ddim": ("ddim", dict(steps=1000)),
    "ddim-eta1": ("ddim", dict(steps=1000, eta=1.0)),
    "sde": ("sde", dict(steps=1000)),
    "pc": ("pc", dict(steps=200)),
    "ode": ("ode", dict(steps=100)),
    "annealed-langevin": ("annealed-langevin", dict(steps=1000, inner_steps=3, epsilon=5e-5)),
}


def run(config, data, seed=1, diffusion=DIFFUSION):
    name, kwargs = CONFIGS[config]
    return samplers.SAMPLERS[name](data.eps_model(diffusion.alphas_cumprod), diffusion, (N, 2),
                                   np.random.default_rng(seed), clip_denoised=False, progress=False,
                                   dtype=np.float64, **kwargs)


def assert_gaussian(x, mean, cov):
    """Sample mean and covariance of x (n, D) within 4 standard errors of (mean, cov)."""
    n = x.shape[0]
    mean_err = np.abs(x.mean(axis=0) - mean)
    assert np.all(mean_err < 4 * np.sqrt(np.diag(cov) / n)), f"mean off by {mean_err}"
    cov_se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / n)
    cov_err = np.abs(np.cov(x.T) - cov)
    assert np.all(cov_err < 4 * cov_se), f"covariance off by {cov_err.ravel()} (4 s.e. {4 * cov_se.ravel()})"


def assert_mixture(x, data):
    weights = data.responsibilities(x).mean(axis=0)
    assert np.all(np.abs(weights - data.weights) < 0.03), f"weights {weights}, want {data.weights}"
    labels = data.responsibilities(x).argmax(axis=1)
    for k in range(len(data.weights)):
        err = np.abs(x[labels == k].mean(axis=0) - data.means[k])
        assert np.all(err < 0.02), f"component {k} mean off by {err}"


@pytest.mark.parametrize("config", CONFIGS)
def test_exact_score_reproduces_a_gaussian(config):
    assert_gaussian(run(config, GAUSSIAN), MEAN, COV)


@pytest.mark.parametrize("config", CONFIGS)
def test_exact_score_reproduces_a_mixture(config):
    assert_mixture(run(config, MIXTURE), MIXTURE)


def test_one_level_langevin_samples_the_noised_data_at_that_level():
    i = 300
    abar = DIFFUSION.alphas_cumprod[i]
    x = samplers.langevin(GAUSSIAN.eps_model(DIFFUSION.alphas_cumprod), DIFFUSION, (N, 2), np.random.default_rng(2),
                          steps=400, index=i, step_size=0.02, denoise=False, clip_denoised=False, progress=False,
                          dtype=np.float64)
    assert_gaussian(x, math.sqrt(abar) * MEAN, abar * COV + (1 - abar) * np.eye(2))


def test_one_level_langevin_misses_mixture_weights_that_annealing_recovers():
    # The seed's point (003_b3aca02c5cb86363.txt, "Mode Collapse"): at one low noise level the chain stays in the
    # mode whose basin it started in, so the weights follow the start, not the data.
    x = samplers.langevin(MIXTURE.eps_model(DIFFUSION.alphas_cumprod), DIFFUSION, (N, 2), np.random.default_rng(3),
                          steps=300, index=0, clip_denoised=False, progress=False, dtype=np.float64)
    weights = MIXTURE.responsibilities(x).mean(axis=0)
    assert abs(weights[0] - MIXTURE.weights[0]) > 0.1, weights


def _seed_pairing(abar, step_size):
    """The seed's Langevin update x + (eps/2) s + sqrt(2 eps) z, with eps = step_size."""
    from_x0, from_x = score_coefs(abar)
    return 0.5 * step_size * from_x0, 1.0 + 0.5 * step_size * from_x, math.sqrt(2.0 * step_size)


def _no_recomputed_betas(diffusion, indices):
    """Respacing without recomputing the betas: the visited indices' own betas (a classic mistake)."""
    betas = diffusion.betas[np.asarray(indices)[::-1]]
    return GaussianDiffusion(betas, diffusion.mean_type, diffusion.var_type)


def _ddim_direction_without_sigma(abar_i, abar_j, eta):
    x0, _, sigma = DDIM_COEFS(abar_i, abar_j, eta)
    from_x = math.sqrt(1.0 - abar_j) / math.sqrt(1.0 - abar_i)
    return math.sqrt(abar_j) - from_x * math.sqrt(abar_i), from_x, sigma


def _ddim_sign(abar_i, abar_j, eta):
    x0, from_x, sigma = DDIM_COEFS(abar_i, abar_j, eta)
    return math.sqrt(abar_j) + from_x * math.sqrt(abar_i), from_x, sigma


def _sde_drift_sign(abar_i, abar_j, last):
    x0, from_x, noise = EULER_MARUYAMA_COEFS(abar_i, abar_j, last)
    return x0, from_x - math.log(abar_j / abar_i), noise  # -1/2 x dtau instead of +1/2 x dtau


def _sde_noise(abar_i, abar_j, last):
    x0, from_x, noise = EULER_MARUYAMA_COEFS(abar_i, abar_j, last)
    return x0, from_x, noise * math.sqrt(2.0)


def _heun_without_rescaling(abar_i, abar_j):
    x0, from_x, from_x_i = HEUN_COEFS(abar_i, abar_j)
    return x0, from_x, 0.5  # x_i taken as x~_i, without its 1/sqrt(abar_i) scale


# (config, module, attribute, replacement): one changed sign or coefficient each.
MUTATIONS = [
    ("ancestral-strided", ancestral_module, "respaced", _no_recomputed_betas),
    ("ddim", ddim_module, "ddim_coefs", _ddim_sign),
    ("ddim-eta1", ddim_module, "ddim_coefs", _ddim_direction_without_sigma),
    ("sde", sde_module, "euler_maruyama_coefs", _sde_drift_sign),
    ("pc", sde_module, "euler_maruyama_coefs", _sde_noise),
    ("pc", sde_module, "langevin_coefs", _seed_pairing),
    ("ode", ode_module, "heun_coefs", _heun_without_rescaling),
    ("annealed-langevin", langevin_module, "langevin_coefs", _seed_pairing),
]


@pytest.mark.parametrize("config, module, attribute, replacement", MUTATIONS,
                         ids=[f"{m[0]}-{m[3].__name__.strip('_')}" for m in MUTATIONS])
def test_the_gaussian_check_fails_on_a_changed_sampler(monkeypatch, config, module, attribute, replacement):
    monkeypatch.setattr(module, attribute, replacement)
    with pytest.raises(AssertionError):
        assert_gaussian(run(config, GAUSSIAN), MEAN, COV)


def test_the_one_level_check_fails_with_the_seeds_langevin_pairing(monkeypatch):
    monkeypatch.setattr(langevin_module, "langevin_coefs", _seed_pairing)
    with pytest.raises(AssertionError, match="covariance"):
        test_one_level_langevin_samples_the_noised_data_at_that_level()
