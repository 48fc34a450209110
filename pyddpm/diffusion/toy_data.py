"""The 2-D toy's data sets, each a GaussianMixture, so their density and score are exact at every noise level.

With q(x_0) a mixture, q(x_t) is one too (pyddpm.diffusion.gaussian_mixture), so the true score field
grad log q(x_t) of Song & Ermon 2019 (Sec. 2-3) can be drawn beside the learned one, and every sample can
be scored by the true log-density. Both sets lie in about [-1, 1]^2, the range the chain's N(0, I) prior
and its linear schedule were made for (Ho et al. 2020, Sec. 4).

  mixture  three well-separated Gaussians of unequal weights (0.5, 0.3, 0.2) and covariances (one round,
           two elongated), so a sampler's balance between the modes can be read off its samples;
  spiral   SPIRAL_COMPONENTS small isotropic Gaussians (std SPIRAL_STD) evenly spaced in arc length along
           an Archimedean spiral: a thin, curved one-dimensional set that a score field must follow.

How close samples are to the data, each measure exact because the data's law is known:
  log_density(x)   the true log q(x_0) of each sample (mixture.log_density): a sample off the data is punished
                   quadratically in its distance;
  within(x, k)     the fraction of samples within k standard deviations of some component, in that
                   component's own metric (the Mahalanobis distance); for data in 2-D, 1 - exp(-k^2 / 2) of
                   them, 0.989 at k = 3;
  weight_tv(x)     the total variation 1/2 sum_k |f_k - w_k| between the fractions f_k of samples nearest
                   each component (by the posterior over components) and the weights w_k: whether the
                   modes get their share. Its floor for n true samples is the sampling noise, not 0.

Shapes: every mixture has dim 2; sample(n, rng) gives (x (n, 2), component labels (n,)).
"""

import numpy as np

from pyddpm.diffusion.gaussian_mixture import GaussianMixture

SPIRAL_COMPONENTS = 100
SPIRAL_STD = 0.03


def _rotated_cov(std_major, std_minor, angle):
    """The (2, 2) covariance with these standard deviations along axes turned by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([std_major ** 2, std_minor ** 2]) @ rot.T


def mixture():
    """Three Gaussians at the corners of a triangle of radius 0.6, weights 0.5, 0.3, 0.2."""
    angles = np.pi / 2 + 2 * np.pi / 3 * np.arange(3)
    means = 0.6 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    covs = np.stack([_rotated_cov(0.10, 0.10, 0.0),
                     _rotated_cov(0.15, 0.05, np.pi / 4),
                     _rotated_cov(0.12, 0.04, -np.pi / 3)])
    return GaussianMixture([0.5, 0.3, 0.2], means, covs)


def spiral(components=SPIRAL_COMPONENTS, std=SPIRAL_STD, turns=1.75, r_min=0.15, r_max=0.9):
    """Equal-weight isotropic Gaussians along r = r_min + (r_max - r_min) theta / theta_max, theta in
    [0, theta_max = 2 pi turns], their means evenly spaced in arc length (so the curve is evenly dense)."""
    theta = np.linspace(0.0, 2 * np.pi * turns, 4096)
    r = r_min + (r_max - r_min) * theta / theta[-1]
    curve = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
    at = np.linspace(0.0, arc[-1], components)
    means = np.stack([np.interp(at, arc, curve[:, 0]), np.interp(at, arc, curve[:, 1])], axis=1)
    covs = np.broadcast_to(std ** 2 * np.eye(2), (components, 2, 2))
    return GaussianMixture(np.ones(components), means, covs)


DATASETS = {"mixture": mixture, "spiral": spiral}


def mahalanobis(gm, x):
    """The Mahalanobis distance (n,) of each point of x (n, D) to its nearest component of the mixture gm."""
    diff = np.asarray(x, dtype=np.float64)[:, None, :] - gm.means[None]
    return np.sqrt(np.einsum("nki,kij,nkj->nk", diff, np.linalg.inv(gm.covs), diff).min(axis=1))


def within(gm, x, k=3.0):
    """The fraction of the points x (n, D) within k standard deviations of some component: a float."""
    return float(np.mean(mahalanobis(gm, x) <= k))


def weight_tv(gm, x):
    """1/2 sum_k |f_k - w_k|, f_k the fraction of the points x (n, D) whose likeliest component is k: a float."""
    nearest = gm.responsibilities(x).argmax(axis=1)
    return 0.5 * float(np.abs(np.bincount(nearest, minlength=len(gm.weights)) / len(x) - gm.weights).sum())
