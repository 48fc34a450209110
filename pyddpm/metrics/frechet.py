"""The Fréchet distance between two Gaussians fitted to feature sets: the FID's formula (Heusel et al. 2017).

    FD = |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))

with each mean and covariance estimated in float64 from N feature vectors (the covariance with N - 1, as
numpy.cov and the FID reference code do). The matrix square root is scipy's; S_1 S_2 is not symmetric, so
its root can come back with a tiny imaginary part from rounding, which is dropped, and for a singular
product (fewer samples than dimensions) a small multiple of the identity is added first, as in the FID
reference implementation.
"""

import warnings

import numpy as np
from scipy import linalg


def gaussian_stats(features):
    """Mean (D,) and covariance (D, D), in float64, of features (N, D) with N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"gaussian_stats: features must be (N, D) with N >= 2, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError("gaussian_stats: the features hold NaN or inf")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); a float >= 0 (up to rounding)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"frechet_distance: means (D,) and covariances (D, D) of one D, got {mu1.shape}, "
                         f"{sigma1.shape}, {mu2.shape}, {sigma2.shape}")
    root = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(root).all():
        offset = eps * np.eye(sigma1.shape[0])
        root = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    root = root.real  # the imaginary part is rounding: S1 S2 is similar to a PSD matrix
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root))


def _sqrtm(a):
    """scipy's square root of a; a singular a gives NaN or inf, which the caller checks, not a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return linalg.sqrtm(a)


def frechet_distance_of(features1, features2):
    """The Fréchet distance between the Gaussians fitted to two feature sets (N1, D) and (N2, D)."""
    return frechet_distance(*gaussian_stats(features1), *gaussian_stats(features2))
