"""Data whose optimal denoiser is known in closed form: a mixture of Gaussians, and its exact eps*(x_t, t).

For data x_0 ~ sum_k w_k N(mu_k, S_k), x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps (Eq. 4) is again a mixture,
    q(x_t) = sum_k w_k N(m_k, C_k),   m_k = sqrt(abar) mu_k,   C_k = abar S_k + (1 - abar) I,
with the score s(x) = sum_k r_k(x) s_k(x), s_k = -C_k^{-1} (x - m_k), r_k the posterior over components, and
the minimiser of L_simple (Eq. 14) is eps*(x_t, t) = E[eps | x_t] = -sqrt(1 - abar) s(x_t) (the score relation of
pyddpm.diffusion.score). Its Jacobian, for the exact divergence: ds/dx = sum_k r_k (s_k s_k^T - C_k^{-1}) - s s^T.
The samplers' exact-score tests, the probability-flow likelihood's test and the 2-D toy use it.
Shapes: x (n, D) float64; weights (K,), means (K, D), covs (K, D, D) symmetric positive definite.
"""

import numpy as np
from scipy.special import logsumexp


class GaussianMixture:
    def __init__(self, weights, means, covs):
        self.weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
        self.means = np.asarray(means, dtype=np.float64)
        self.covs = np.asarray(covs, dtype=np.float64)
        self.dim = self.means.shape[1]
        if self.covs.shape != (len(self.weights), self.dim, self.dim) or self.means.shape[0] != len(self.weights):
            raise ValueError("GaussianMixture: weights (K,), means (K, D) and covs (K, D, D) must agree")

    def sample(self, n, rng):
        """(x (n, D), component labels (n,)) from the data distribution."""
        labels = rng.choice(len(self.weights), size=n, p=self.weights)
        chol = np.linalg.cholesky(self.covs)
        x = self.means[labels] + np.einsum("nij,nj->ni", chol[labels], rng.standard_normal((n, self.dim)))
        return x, labels

    def _noised(self, abar):
        """Means (K, D), inverse covariances (K, D, D) and log-determinants (K,) of q(x_t) at level abar."""
        covs = abar * self.covs + (1.0 - abar) * np.eye(self.dim)
        return np.sqrt(abar) * self.means, np.linalg.inv(covs), np.linalg.slogdet(covs)[1]

    def _components(self, x, abar):
        """Log of w_k N(x; m_k, C_k) (n, K) and the component scores s_k (n, K, D)."""
        means, precisions, logdets = self._noised(abar)
        diff = x[:, None, :] - means[None]
        scores = -np.einsum("kij,nkj->nki", precisions, diff)
        log_joint = (np.log(self.weights) - 0.5 * (logdets + self.dim * np.log(2 * np.pi))
                     + 0.5 * np.einsum("nki,nki->nk", diff, scores))
        return log_joint, scores

    def log_density(self, x, abar=1.0):
        """log q(x_t) (n,) at level abar (1: the data)."""
        return logsumexp(self._components(np.asarray(x, dtype=np.float64), abar)[0], axis=1)

    def responsibilities(self, x, abar=1.0):
        """The posterior over components (n, K) at level abar."""
        log_joint = self._components(np.asarray(x, dtype=np.float64), abar)[0]
        return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))

    def score(self, x, abar):
        """grad log q(x_t) (n, D) at level abar < 1."""
        log_joint, scores = self._components(np.asarray(x, dtype=np.float64), abar)
        r = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
        return np.einsum("nk,nki->ni", r, scores)

    def score_jacobian(self, x, abar):
        """d score / dx (n, D, D), symmetric."""
        log_joint, scores = self._components(np.asarray(x, dtype=np.float64), abar)
        r = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
        s = np.einsum("nk,nki->ni", r, scores)
        precisions = self._noised(abar)[1]
        outer = np.einsum("nk,nki,nkj->nij", r, scores, scores)
        return outer - np.einsum("nk,kij->nij", r, precisions) - np.einsum("ni,nj->nij", s, s)

    def eps_model(self, alphas_cumprod, dtype=np.float64):
        """model_fn(x, t) -> eps*(x, t) (n, D) for a chain with these abar (T,): the exact eps-model."""
        def model_fn(x, t):
            out = np.empty(x.shape, dtype=np.float64)
            for i in np.unique(t):
                rows = t == i
                out[rows] = -np.sqrt(1.0 - alphas_cumprod[i]) * self.score(np.asarray(x)[rows], alphas_cumprod[i])
            return out.astype(dtype)
        return model_fn

    def x0_model(self, alphas_cumprod, dtype=np.float64):
        """model_fn(x, t) -> x0*(x, t) = E[x_0 | x_t] = (x + (1 - abar) s) / sqrt(abar) (Tweedie's formula): the
        exact x0-model."""
        eps_fn = self.eps_model(alphas_cumprod)

        def model_fn(x, t):
            abar = alphas_cumprod[np.asarray(t)][:, None]
            return ((np.asarray(x) - np.sqrt(1.0 - abar) * eps_fn(x, t)) / np.sqrt(abar)).astype(dtype)
        return model_fn

    def eps_vjp(self, alphas_cumprod):
        """vjp_fn(x, t, v) -> (eps*, v^T d eps*/dx), both (n, D): the exact model and its vector-Jacobian product."""
        model_fn = self.eps_model(alphas_cumprod)

        def vjp_fn(x, t, v):
            out = np.empty(x.shape, dtype=np.float64)
            for i in np.unique(t):
                rows = t == i
                jac = self.score_jacobian(np.asarray(x)[rows], alphas_cumprod[i])
                out[rows] = -np.sqrt(1.0 - alphas_cumprod[i]) * np.einsum("nij,ni->nj", jac, np.asarray(v)[rows])
            return model_fn(x, t), out
        return vjp_fn
