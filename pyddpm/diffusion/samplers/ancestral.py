"""Ancestral sampling (Alg. 2, Ho et al. 2020) on K of the T timesteps, and interpolation through x_t (Fig. 8).

With K < T the chain is respaced (pyddpm.diffusion.samplers.steps.respaced): the betas are recomputed for
the visited indices, so each of the K steps is a step of a valid K-step chain with its own posterior (Eq. 7)
and its own fixed variance (beta' or beta-tilde', the run's var_type). At K = T it is Alg. 2 exactly.
"""

import numpy as np

from pyddpm.diffusion.samplers.steps import draw, respaced, strided_indices, walk


def ancestral(model_fn, diffusion, shape, rng, steps=None, *, clip_denoised=True, progress=True, dtype=np.float32,
              xp=np, callback=None, x_start=None, start_index=None):
    """x_0 (``shape``, on ``xp``) by Alg. 2 over K = ``steps`` (default T) evenly spaced indices.

    model_fn(x, t): the model output at int64 indices t (B,) of the original chain. rng: a numpy Generator (or
    PerSampleNoise): x_T first, then one draw per step (unused at the last), in that order, as
    GaussianDiffusion.p_sample_loop. callback(i, x_next, pred_x0), if given, after each step at original index i.
    x_start, start_index: start from x_start at that index instead of x_T ~ N(0, I) (interpolation; K then
    counts the indices start_index..0)."""
    top = diffusion.num_timesteps - 1 if start_index is None else int(start_index)
    indices = strided_indices(top + 1, top + 1 if steps is None else steps)
    chain = respaced(diffusion, indices)
    ascending = indices[::-1]
    x = draw(rng, shape, dtype, xp) if x_start is None else x_start
    for k, (i, _) in enumerate(walk(indices, progress, "ancestral")):
        t = np.full(shape[0], len(indices) - 1 - k, dtype=np.int64)  # index into the respaced chain
        noise = draw(rng, shape, dtype, xp)
        out = chain.p_sample(model_fn(x, ascending[t]), x, t, noise, clip_denoised)
        x = out["sample"]
        if callback is not None:
            callback(i, x, out["pred_x0"])
    return x


def interpolate(model_fn, diffusion, x_a, x_b, index, lambdas, rng, *, steps=None, clip_denoised=True, progress=True,
                xp=np):
    """Fig. 8 of Ho et al. 2020: encode x_a and x_b (C, H, W) to x_t by q (Eq. 4, each with its own noise),
    decode (1 - lam) x_t^a + lam x_t^b for each lam in ``lambdas`` by Alg. 2 from ``index`` down (over K =
    ``steps`` of the indices index..0, default all), with one reverse-noise stream for every lam (the images
    differ only by lam). Returns (len(lambdas), C, H, W)."""
    x_a, x_b = (xp.asarray(v, dtype=np.float32)[None] for v in (x_a, x_b))
    t = np.full(1, int(index), dtype=np.int64)
    xt_a = diffusion.q_sample(x_a, t, draw(rng, x_a.shape, np.float32, xp))
    xt_b = diffusion.q_sample(x_b, t, draw(rng, x_b.shape, np.float32, xp))
    lam = xp.asarray(np.asarray(lambdas, dtype=np.float32).reshape(-1, 1, 1, 1))
    start = (1 - lam) * xt_a + lam * xt_b
    # One stream for every image: each draw is repeated across the lambdas.
    shared = _Repeated(rng, len(lambdas))
    return ancestral(model_fn, diffusion, start.shape, shared, steps, clip_denoised=clip_denoised, progress=progress,
                     xp=xp, x_start=xp.ascontiguousarray(start), start_index=index)


class _Repeated:
    """Draws one (1, ...) normal array from ``rng`` and repeats it for ``count`` samples."""

    def __init__(self, rng, count):
        self.rng, self.count = rng, count

    def standard_normal(self, shape):
        return np.repeat(self.rng.standard_normal((1, *shape[1:])), self.count, axis=0)
