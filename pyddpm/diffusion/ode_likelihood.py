"""Exact likelihood through the probability-flow ODE (Song et al. 2021, Sec. 4.3 and App. D.2).

The probability-flow ODE in the variables of pyddpm.diffusion.samplers.ode, x~ = x / sqrt(abar) and
sigma = sqrt(1/abar - 1), reads dx~/dsigma = eps_hat(x, sigma), a continuous normalising flow from the data
(sigma ~ 0) to the prior, and the instantaneous change of variables (Chen et al. 2018, Thm. 1) gives
    log p(x~ at sigma_0) = log p(x~ at sigma_max) + int div_x~ eps_hat dsigma,
    div_x~ eps_hat = sqrt(abar) div_x eps_hat = sqrt(abar / (1 - abar)) (D - sqrt(abar) (from_x D + from_out div out)),
with eps_hat = (x - sqrt(abar) x0_hat) / sqrt(1 - abar), x0_hat = from_x x + from_out out (an eps-model gives
div_x eps_hat = div out), and div out = E_v[v^T (d out/dx) v] (Hutchinson 1989) with a Rademacher probe v, one
per sample, fixed along the path (FFJORD). Path and integral are solved together with Heun's method. Near
data that sit on a grid, as 8-bit pixels do, the flow changes fastest at small sigma, so the K chain indices
follow Karras et al. 2022's spacing (Eq. 5, rho = 7: dense at small sigma), rounded to the chain's indices.
The data enter as x at index 0 (abar_0 = 1 - beta_1, as score_sde starts at t = eps), so
log p(x) = log p(x~) - D/2 log abar_0; at the top, x ~ N(0, I) means x~ ~ N(0, (1 + sigma_max^2) I).

Bits/dim for 8-bit data in [-1, 1] (the values k / 127.5 - 1): uniform dequantisation within each value's bin of
width 2/255 (the bins of Eq. 13), y = x_0 + u 2/255 with u ~ U(-1/2, 1/2)^D, bounds the discrete NLL,
    bpd <= -log p_0(y) / (D ln 2) + log2(127.5),
beside the variational bound (Eq. 5) that evaluate reports.
"""

import math

import numpy as np
from tqdm import tqdm

from pyddpm.arrays import array_module, to_host
from pyddpm.diffusion.samplers.ode import sigma_of
from pyddpm.diffusion.samplers.steps import check_steps
from pyddpm.diffusion.score import alpha_bar, x0_coefs

TRACES = ("hutchinson", "exact")


def likelihood_indices(diffusion, steps):
    """At most K = ``steps`` ascending chain indices from 0 to T-1 whose sigma follow Karras et al. 2022's
    schedule (Eq. 5, rho = 7) between sigma at index 0 and at T-1 (duplicates after rounding dropped)."""
    steps = check_steps(steps, diffusion.num_timesteps)
    sigmas = np.sqrt(1.0 / diffusion.alphas_cumprod - 1.0)
    if steps == 1:
        return np.array([0, diffusion.num_timesteps - 1])
    rho = 7.0
    lo, hi = sigmas[0] ** (1 / rho), sigmas[-1] ** (1 / rho)
    targets = (lo + np.linspace(0.0, 1.0, steps) * (hi - lo)) ** rho
    indices = np.clip(np.searchsorted(sigmas, targets), 0, diffusion.num_timesteps - 1)
    return np.unique(np.concatenate([[0], indices, [diffusion.num_timesteps - 1]]))


def _velocity_and_divergence(vjp_fn, diffusion, x_tilde, index, probe, trace):
    """eps_hat (B, ...) and div_x~ eps_hat (B,) float64 at chain index ``index``, for x~ (B, ...)."""
    xp = array_module(x_tilde)
    B, D = x_tilde.shape[0], x_tilde[0].size
    t = np.full(B, index, dtype=np.int64)
    abar = alpha_bar(diffusion, index)
    x = math.sqrt(abar) * x_tilde
    from_x, from_out = x0_coefs(diffusion, index)
    axes = tuple(range(1, x.ndim))
    if trace == "hutchinson":
        out, vjp = vjp_fn(x, t, probe)
        div_out = (xp.asarray(vjp, dtype=np.float64) * probe).sum(axis=axes)
    else:  # the exact trace: one vector-Jacobian product per dimension (small D only)
        div_out = xp.zeros(B)
        for k in range(D):
            unit = xp.zeros(x.shape)
            unit.reshape(B, D)[:, k] = 1.0
            out, vjp = vjp_fn(x, t, unit)
            div_out = div_out + xp.asarray(vjp, dtype=np.float64).reshape(B, D)[:, k]
    out = diffusion.split_output(out, x)[0]  # a learned variance's channels play no part in the ODE
    x0_hat = from_x * x + from_out * xp.asarray(out, dtype=np.float64)
    eps_hat = (x - math.sqrt(abar) * x0_hat) / math.sqrt(1.0 - abar)
    div = math.sqrt(abar / (1.0 - abar)) * (D - math.sqrt(abar) * (from_x * D + from_out * div_out))
    return eps_hat, div


def ode_log_likelihood(vjp_fn, diffusion, x0, rng, steps=None, *, trace="hutchinson", probe=None, progress=True):
    """log p_0(x0) (B,) in nats, float64, by the probability-flow ODE over at most K = ``steps`` (default T)
    chain indices (likelihood_indices).

    vjp_fn(x, t, v) -> (model_output, v^T d model_output / dx), both like x (B, ...): the trained network and its
    vector-Jacobian product at int64 chain indices t (B,). x0: (B, ...) float. rng: a numpy Generator for the
    Rademacher probes, or ``probe`` (B, ...) of +-1 given. trace: "hutchinson" (one probe per sample) or "exact"
    (D products per step). Returns dict: log_likelihood (B,), prior (B,) = log N(x~_T; 0, (1 + sigma_max^2) I),
    x_T (B, ...)."""
    if trace not in TRACES:
        raise ValueError(f"trace must be one of {TRACES}, got {trace!r}")
    xp = array_module(x0)
    indices = likelihood_indices(diffusion, diffusion.num_timesteps if steps is None else steps)
    abar_0 = alpha_bar(diffusion, int(indices[0]))
    x = xp.asarray(x0, dtype=np.float64) / math.sqrt(abar_0)  # x~ at index 0
    probe = xp.asarray(rng.choice([-1.0, 1.0], size=x.shape) if probe is None else probe, dtype=np.float64)
    B, D = x.shape[0], x[0].size
    integral = xp.zeros(B)
    velocity, div = _velocity_and_divergence(vjp_fn, diffusion, x, int(indices[0]), probe, trace)
    for i, j in tqdm(list(zip(indices[:-1], indices[1:])), desc="ode likelihood", disable=not progress):
        h = sigma_of(alpha_bar(diffusion, int(j))) - sigma_of(alpha_bar(diffusion, int(i)))
        velocity_j, div_j = _velocity_and_divergence(vjp_fn, diffusion, x + h * velocity, int(j), probe, trace)
        x = x + 0.5 * h * (velocity + velocity_j)
        integral = integral + 0.5 * h * (div + div_j)
        velocity, div = _velocity_and_divergence(vjp_fn, diffusion, x, int(j), probe, trace)
    top = 1.0 / alpha_bar(diffusion, int(indices[-1]))  # the variance of x~ when x ~ N(0, I)
    prior = -0.5 * (x.reshape(B, -1) ** 2).sum(axis=1) / top - 0.5 * D * math.log(2 * math.pi * top)
    return {"log_likelihood": prior + integral - 0.5 * D * math.log(abar_0), "prior": prior,
            "x_T": x * math.sqrt(alpha_bar(diffusion, int(indices[-1])))}


def dequantize(x0, rng):
    """x0 (values k / 127.5 - 1) plus uniform noise across each value's bin of width 2/255 (float64)."""
    xp = array_module(x0)
    return xp.asarray(x0, dtype=np.float64) + xp.asarray(rng.uniform(-0.5, 0.5, size=x0.shape)) * (2.0 / 255.0)


def bits_per_dim(log_likelihood, dim):
    """The bound on the discrete NLL (B,) in bits/dim from log p_0 of a dequantised sample (see the module)."""
    return -to_host(log_likelihood) / (dim * math.log(2.0)) + math.log2(127.5)
