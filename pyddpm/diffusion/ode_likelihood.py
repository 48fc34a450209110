"""Exact likelihood through the probability-flow ODE (Song et al. 2021, Sec. 4.3 and App. D.2).

The ODE dx/dtau = d(x) = -1/2 (x + s(x, tau)) (pyddpm.diffusion.score) is a continuous normalising flow from
the data to the prior, and the instantaneous change of variables (Chen et al. 2018, Thm. 1) gives
    log p_0(x_0) = log N(x_T; 0, I) + int_0^tau_T div d(x(tau)) dtau,
    div d = -1/2 (D + div s),   s = score_from_x0 x0_hat + score_from_x x,   x0_hat = from_x x + from_out out,
so div s = score_from_x0 (from_x D + from_out div out) + score_from_x D, and div out = E_v[v^T (d out/dx) v]
(Hutchinson 1989) with a Rademacher probe v, one per sample, fixed along the path (FFJORD). The path and the
integral are solved together with Heun's method on K evenly spaced chain indices from 0 up to T-1, starting
from x_0 at index 0 (abar_0 = 1 - beta_1, as score_sde starts at t = eps). Run forwards from the data, Heun's
second stage is evaluated at the larger tau, so the stiffness that makes the sampler step in other variables
(pyddpm.diffusion.samplers.ode) does not arise here.

Bits/dim for 8-bit data in [-1, 1] (the values k / 127.5 - 1): uniform dequantisation within each value's bin of
width 2/255 (the bins of Eq. 13), y = x_0 + u 2/255 with u ~ U(-1/2, 1/2)^D, bounds the discrete NLL,
    bpd <= -log p_0(y) / (D ln 2) + log2(127.5),
beside the variational bound (Eq. 5) that evaluate reports.
"""

import math

import numpy as np
from tqdm import tqdm

from pyddpm.arrays import array_module, to_host
from pyddpm.diffusion.samplers.steps import strided_indices
from pyddpm.diffusion.score import alpha_bar, score_coefs, x0_coefs

TRACES = ("hutchinson", "exact")


def _drift_and_divergence(vjp_fn, diffusion, x, index, probe, trace):
    """d(x) (B, ...) and div d (B,) float64 at chain index ``index``."""
    xp = array_module(x)
    B, D = x.shape[0], x[0].size
    t = np.full(B, index, dtype=np.int64)
    from_x, from_out = x0_coefs(diffusion, index)
    score_x0, score_x = score_coefs(alpha_bar(diffusion, index))
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
    out = xp.asarray(out, dtype=np.float64)
    score = score_x0 * (from_x * x + from_out * out) + score_x * x
    div_score = score_x0 * (from_x * D + from_out * div_out) + score_x * D
    return -0.5 * (x + score), -0.5 * (D + div_score)


def ode_log_likelihood(vjp_fn, diffusion, x0, rng, steps=None, *, trace="hutchinson", probe=None, progress=True):
    """log p_0(x0) (B,) in nats, float64, by the probability-flow ODE over K = ``steps`` (default T) indices.

    vjp_fn(x, t, v) -> (model_output, v^T d model_output / dx), both like x (B, ...): the trained network and its
    vector-Jacobian product at int64 chain indices t (B,). x0: (B, ...) float. rng: a numpy Generator for the
    Rademacher probes, or ``probe`` (B, ...) of +-1 given. trace: "hutchinson" (one probe per sample) or "exact"
    (D products per step).
    Returns dict: log_likelihood (B,), prior (B,) = log N(x_T; 0, I), x_T (B, ...)."""
    if trace not in TRACES:
        raise ValueError(f"trace must be one of {TRACES}, got {trace!r}")
    xp = array_module(x0)
    x = xp.asarray(x0, dtype=np.float64)
    probe = xp.asarray(rng.choice([-1.0, 1.0], size=x.shape) if probe is None else probe, dtype=np.float64)
    indices = strided_indices(diffusion.num_timesteps, diffusion.num_timesteps if steps is None else steps)[::-1]
    integral = xp.zeros(x.shape[0])
    drift, div = _drift_and_divergence(vjp_fn, diffusion, x, int(indices[0]), probe, trace)
    for i, j in tqdm(list(zip(indices[:-1], indices[1:])), desc="ode likelihood", disable=not progress):
        dtau = math.log(alpha_bar(diffusion, int(i)) / alpha_bar(diffusion, int(j)))
        x_euler = x + dtau * drift
        drift_j, div_j = _drift_and_divergence(vjp_fn, diffusion, x_euler, int(j), probe, trace)
        x = x + 0.5 * dtau * (drift + drift_j)
        integral = integral + 0.5 * dtau * (div + div_j)
        drift, div = _drift_and_divergence(vjp_fn, diffusion, x, int(j), probe, trace)
    D = x[0].size
    prior = -0.5 * (x.reshape(x.shape[0], -1) ** 2).sum(axis=1) - 0.5 * D * math.log(2 * math.pi)
    return {"log_likelihood": prior + integral, "prior": prior, "x_T": x}


def dequantize(x0, rng):
    """x0 (values k / 127.5 - 1) plus uniform noise across each value's bin of width 2/255 (float64)."""
    xp = array_module(x0)
    return xp.asarray(x0, dtype=np.float64) + xp.asarray(rng.uniform(-0.5, 0.5, size=x0.shape)) * (2.0 / 255.0)


def bits_per_dim(log_likelihood, dim):
    """The bound on the discrete NLL (B,) in bits/dim from log p_0 of a dequantised sample (see the module)."""
    return -to_host(log_likelihood) / (dim * math.log(2.0)) + math.log2(127.5)
