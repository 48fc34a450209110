"""Which timesteps a training batch sees: uniform (Alg. 1, Ho et al. 2020) or importance-sampled.

Training on the bound, L_vlb = sum_t L_t = T E_{t ~ U}[L_t], the terms differ by orders of magnitude (L_0
and the first few L_t dominate), so a uniform t gives a gradient of high variance. Nichol & Dhariwal 2021
(Sec. 3.3, Eq. 17) draw t with p_t proportional to sqrt(E[L_t^2]), estimated from the last 10 values of L_t
seen in training, and weight each term by 1 / (T p_t), which keeps the estimate of L_vlb / T unbiased:
    E_{t ~ p}[L_t / (T p_t)] = (1/T) sum_t L_t.
Until every t has 10 values the draw stays uniform. A small uniform share (1e-3 of the mass, as their code)
is mixed in, so no t ever has probability 0: a term that once looked small is still revisited.

Shapes: t int64 (B,) chain indices 0..T-1 (index i is the paper's t = i + 1); weights float64 (B,).
"""

import numpy as np

HISTORY = 10
UNIFORM_SHARE = 1e-3


class UniformTimesteps:
    """t ~ U{0..T-1}, every weight 1 (Alg. 1)."""

    def __init__(self, num_timesteps):
        self.num_timesteps = num_timesteps

    def probabilities(self):
        return np.full(self.num_timesteps, 1.0 / self.num_timesteps)

    def sample(self, rng, batch_size):
        """(t, weights) for one batch, drawn from the numpy Generator ``rng``."""
        return rng.integers(0, self.num_timesteps, batch_size), np.ones(batch_size)

    def update(self, t, losses):
        """Nothing to learn from the losses."""

    def state(self):
        return {}

    def load_state(self, arrays):
        """Nothing saved."""


class ImportanceTimesteps(UniformTimesteps):
    """t ~ p_t with p_t proportional to sqrt(mean of the last 10 L_t^2), weight 1 / (T p_t) (Eq. 17,
    Nichol & Dhariwal 2021); uniform until every t has 10 values."""

    def __init__(self, num_timesteps):
        super().__init__(num_timesteps)
        self.history = np.zeros((num_timesteps, HISTORY))  # the newest value of L_t last in each row
        self.counts = np.zeros(num_timesteps, dtype=np.int64)

    def warmed_up(self):
        return bool((self.counts == HISTORY).all())

    def probabilities(self):
        """p (T,): uniform until warmed up; then (1 - u) sqrt(E[L_t^2]) / sum + u / T, u = UNIFORM_SHARE."""
        if not self.warmed_up():
            return super().probabilities()
        root_mean_square = np.sqrt((self.history ** 2).mean(axis=1))
        total = root_mean_square.sum()
        if not np.isfinite(total) or total <= 0:
            return super().probabilities()
        return (1.0 - UNIFORM_SHARE) * root_mean_square / total + UNIFORM_SHARE / self.num_timesteps

    def sample(self, rng, batch_size):
        p = self.probabilities()
        t = rng.choice(self.num_timesteps, size=batch_size, p=p)
        return t.astype(np.int64), 1.0 / (self.num_timesteps * p[t])

    def update(self, t, losses):
        """Record the per-sample losses L_t (B,) at indices t (B,): each t keeps its last HISTORY values."""
        for i, loss in zip(np.asarray(t), np.asarray(losses, dtype=np.float64)):
            if self.counts[i] == HISTORY:
                self.history[i, :-1] = self.history[i, 1:]
                self.history[i, -1] = loss
            else:
                self.history[i, self.counts[i]] = loss
                self.counts[i] += 1

    def state(self):
        """The arrays a checkpoint keeps, so a resumed run draws the same timesteps."""
        return {"history": self.history.copy(), "counts": self.counts.copy()}

    def load_state(self, arrays):
        history, counts = np.asarray(arrays["history"]), np.asarray(arrays["counts"])
        if history.shape != self.history.shape or counts.shape != self.counts.shape:
            raise ValueError(f"the timestep sampler's history has shape {history.shape}, this run needs "
                             f"{self.history.shape}")
        self.history, self.counts = history.astype(np.float64), counts.astype(np.int64)


def timestep_sampler(kind, num_timesteps):
    """"uniform" or "importance" (TrainConfig.t_sampling) for a chain of T = num_timesteps steps."""
    return {"uniform": UniformTimesteps, "importance": ImportanceTimesteps}[kind](num_timesteps)
