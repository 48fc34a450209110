"""Precision and recall of generated samples against real data (Kynkäänniemi et al. 2019).

Each set's manifold is the union of balls around its feature vectors, each ball reaching the point's k-th
nearest neighbour in its own set (k = 3, the paper's choice). Precision is the fraction of generated points
inside the real manifold: are the samples realistic? Recall is the fraction of real points inside the
generated manifold: do the samples cover the data? A mode-collapsed model keeps its precision and loses
its recall.

Distances are Euclidean, computed in float64 in row blocks so that memory stays at a block of N2 values.
"""

import numpy as np

BLOCK = 1024


def _squared_distances(a, b):
    """|a_i - b_j|^2 (len(a), len(b)) for feature rows a and b, clipped at 0 against rounding."""
    d = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def knn_radii(features, k=3):
    """Squared distance from each row of features (N, D) to its k-th nearest other row; (N,)."""
    f = np.asarray(features, np.float64)
    if f.shape[0] <= k:
        raise ValueError(f"knn_radii: need more than k = {k} feature vectors, got {f.shape[0]}")
    radii = np.empty(f.shape[0])
    for start in range(0, f.shape[0], BLOCK):
        d = _squared_distances(f[start:start + BLOCK], f)
        radii[start:start + BLOCK] = np.partition(d, k, axis=1)[:, k]  # index 0 is the point itself
    return radii


def coverage(points, centres, radii):
    """The fraction of points (N, D) inside at least one ball (centre_j, radius_j); radii squared."""
    points, centres = np.asarray(points, np.float64), np.asarray(centres, np.float64)
    inside = np.zeros(points.shape[0], bool)
    for start in range(0, points.shape[0], BLOCK):
        d = _squared_distances(points[start:start + BLOCK], centres)
        inside[start:start + BLOCK] = (d <= radii[None, :]).any(axis=1)
    return float(inside.mean())


def precision_recall(real, fake, k=3):
    """(precision, recall) of the fake features (M, D) against the real ones (N, D)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"precision_recall: features (N, D) and (M, D) of one D, got {real.shape}, {fake.shape}")
    return coverage(fake, real, knn_radii(real, k)), coverage(real, fake, knn_radii(fake, k))
