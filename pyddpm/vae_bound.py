"""The one-latent VAE's bound, its importance-weighted tightening, prior samples and reconstructions.

The ELBO (Definition 1.1 and Eq. 1.4, seed 004), as a loss in bits per dimension:

    -ELBO(x) = E_{z ~ q(z|x)} [-log p(x|z)]  +  KL(q(z|x) || N(0, I))
               reconstruction, one z by Eq. 1.5   the latent term, closed form by Eq. 1.2

with q(z|x) = N(mu(x), diag sigma^2(x)) (Eq. 1.1) and p(x|z) the discretized Gaussian of Eq. 13 (Ho et al.
2020) with a mean and a scale per pixel. Both terms are in nats summed over the image, divided by
D ln 2 (D = C H W): bits/dim, the unit of the DDPM's bound.

From this ELBO to the diffusion bound (Eq. 5, Ho et al. 2020; Proposition 2.3, seed 004), term by term:
the one latent z becomes T latents x_1..x_T of the image's own shape, and the learned encoder q_phi(z|x)
becomes a fixed one, q(x_t|x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I) (Eq. 2.4, seed 004), with
nothing left to learn in it. Then
- the reconstruction term E_q[-log p(x|z)] becomes L_0 = E_q[-log p_theta(x_0|x_1)]: the same
  discretized Gaussian (Eq. 13), now decoding from x_1, a slightly noisy copy of x_0, instead of from z;
- the latent term KL(q(z|x) || p(z)) becomes L_T = KL(q(x_T|x_0) || N(0, I)): still a KL to the standard
  normal prior in closed form (Eq. 1.2), but with nothing to train, since q(x_T|x_0) is fixed by the
  schedule (and is ~0 for beta_1..beta_T of the paper);
- the new terms L_{t-1} = KL(q(x_{t-1}|x_t, x_0) || p_theta(x_{t-1}|x_t)), t = 2..T, the consistency
  terms, exist because there are now T decoders in a chain: each reverse step must match the Bayes-reversed
  encoder step (Eq. 6-7), a Gaussian KL in closed form again (Eq. 1.2's Proposition 1.5).
So the VAE learns its encoder and spends its bound on one reconstruction and one KL; the diffusion fixes its
encoder and spends its bound on T - 1 matching terms. pyddpm.evaluate reports the VAE's terms under the
DDPM's names: the reconstruction as decoder_bpd (L_0), the KL as prior_bpd (L_T), and kl_bpd (the sum of
the L_{t-1}) as 0: there are none.

The IWAE bound (Burda et al. 2016) log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x), is a lower bound
on log p(x) too, never below the ELBO's expectation and rising to log p(x) as K grows; it is computed in
float64 with a log-sum-exp. Shapes: x (B, C, H, W) in [-1, 1] on the 256-level grid; z, eps (B, Z); the
model has encode(x) -> (mu, logvar) and decode(z) -> (means, log_scales) (pyddpm.models.vae).
"""

import math

import numpy as np

from pyddpm import autograd as ag
from pyddpm import likelihood
from pyddpm.arrays import array_module, to_host

_LOG_2PI = math.log(2.0 * math.pi)


def reparameterize(mu, logvar, eps):
    """z = mu + sigma * eps with sigma = exp(logvar / 2) (Eq. 1.5, seed 004): a draw from q(z|x) through
    which gradients reach mu and logvar. mu, logvar: Tensors (B, Z); eps: N(0, I) array (B, Z)."""
    return mu + (logvar * 0.5).exp() * eps


def kl_to_prior(mu, logvar):
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per sample in nats, (B,) (Eq. 1.2, seed 004):
    0.5 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j). mu, logvar: Tensors (B, Z)."""
    return ((mu ** 2 + logvar.exp() - 1.0 - logvar) * 0.5).sum(axis=1)


def decoder_nll(x, means, log_scales):
    """-log p(x|z) per sample in nats, (B,): the discretized Gaussian of Eq. 13 (Ho et al. 2020) summed over
    the pixels. x: array (B, C, H, W); means, log_scales: Tensors of x's shape."""
    return -ag.discretized_gaussian_log_likelihood(x, means, log_scales).reshape(x.shape[0], -1).sum(axis=1)


def elbo_terms(model, x, eps):
    """The negative ELBO per image in bits/dim (Eq. 1.4, seed 004), one z per image (Eq. 1.5).

    x: array (B, C, H, W); eps: N(0, I) array (B, Z). Returns Tensors (B,): "recon" (-log p(x|z)),
    "kl" (KL(q(z|x) || N(0, I)), closed form) and "loss" = recon + kl, the quantity training minimises.
    """
    dims = math.prod(x.shape[1:]) * math.log(2.0)
    mu, logvar = model.encode(x)
    means, log_scales = model.decode(reparameterize(mu, logvar, eps))
    recon = decoder_nll(x, means, log_scales) * (1.0 / dims)
    kl = kl_to_prior(mu, logvar) * (1.0 / dims)
    return {"recon": recon, "kl": kl, "loss": recon + kl}


def iwae_log_weights(model, x, eps):
    """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x) in nats, float64 host array (K, B), for the K draws
    z_k = mu + sigma eps_k (Eq. 1.5); eps: N(0, I) array (K, B, Z). Call under no_grad.

    Also returns the reconstruction term -log p(x|z_k), float64 (K, B). log q uses eps itself, which is
    exactly (z_k - mu) / sigma: no division by a small sigma.
    """
    mu, logvar = (t.data for t in model.encode(x))
    log_q_const = to_host(-0.5 * logvar.astype(np.float64).sum(axis=1)) - 0.5 * _LOG_2PI * mu.shape[1]
    xp, log_w, recon = array_module(mu), [], []
    for e in eps:
        e = xp.asarray(e, dtype=mu.dtype)
        z = mu + xp.exp(0.5 * logvar) * e
        means, log_scales = (t.data for t in model.decode(z))
        nll = likelihood.discretized_gaussian_log_likelihood(x, means, log_scales)
        nll = -to_host(nll).astype(np.float64).reshape(len(x), -1).sum(axis=1)
        z64, e64 = to_host(z).astype(np.float64), to_host(e).astype(np.float64)
        log_p_z = -0.5 * (z64 ** 2).sum(axis=1) - 0.5 * _LOG_2PI * z64.shape[1]
        log_q_z = -0.5 * (e64 ** 2).sum(axis=1) + log_q_const
        log_w.append(-nll + log_p_z - log_q_z)
        recon.append(nll)
    return np.stack(log_w), np.stack(recon)


def iwae_bpd(log_w, dims):
    """-log (1/K) sum_k w_k / (dims ln 2): the IWAE bound (Burda et al. 2016) as bits/dim, (B,), from log
    weights (K, B) in nats, by a float64 log-sum-exp (the largest weight factored out, so nothing overflows)."""
    log_w = np.asarray(log_w, dtype=np.float64)
    top = log_w.max(axis=0)
    log_mean = top + np.log(np.exp(log_w - top).mean(axis=0))
    return -log_mean / (dims * math.log(2.0))


def decoded_images(means, log_scales, noise=None):
    """Images in [-1, 1] from p(x|z): the means clipped to [-1, 1] (noise None), or a draw from the
    discretized Gaussian: mean + sigma * noise, clipped and rounded to the 256-level grid (Eq. 13's bins).
    means, log_scales: arrays (B, C, H, W); noise: N(0, I) array of their shape or None."""
    xp = array_module(means)
    x = means if noise is None else means + xp.exp(log_scales) * xp.asarray(noise, dtype=means.dtype)
    x = xp.clip(x, -1.0, 1.0)
    return x if noise is None else xp.rint((x + 1.0) * 127.5) / 127.5 - 1.0


def prior_samples(model, z, noise=None):
    """Images (B, C, H, W) decoded from latents z ~ N(0, I) (B, Z): the decoder means (noise None, what pyddpm
    shows: a draw adds independent per-pixel noise that no image has) or a draw (decoded_images). Under no_grad."""
    means, log_scales = (t.data for t in model.decode(z))
    return decoded_images(means, log_scales, noise)


def reconstructions(model, x):
    """The decoder means at z = mu(x), the posterior mean, clipped to [-1, 1]: the VAE's deterministic
    reconstruction of images x (B, C, H, W). Under no_grad."""
    mu, _ = model.encode(x)
    means, log_scales = (t.data for t in model.decode(mu.data))
    return decoded_images(means, log_scales)
