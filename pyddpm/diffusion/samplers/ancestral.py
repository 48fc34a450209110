"""Ancestral sampling (Alg. 2, Ho et al. 2020) on K of the T timesteps, and interpolation through x_t (Fig. 8).

With K < T the chain is respaced (pyddpm.diffusion.samplers.steps.respaced): the betas are recomputed for
the visited indices, so each of the K steps is a step of a valid K-step chain with its own posterior (Eq. 7)
and its own fixed variance (beta' or beta-tilde', the run's var_type). At K = T it is Alg. 2 exactly.
"""

import numpy as np

from pyddpm import reverse_step
from pyddpm.arrays import array_module
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
    if diffusion.mean_type == "mean" and len(indices) < top + 1:
        # A mean-model's output is the mean of one step of the original chain, not of a respaced jump; the x_0 it
        # implies (Eq. 7 solved for x_0, on the original chain) carries over to any chain.
        model_fn, chain = _as_x0_model(model_fn, diffusion), respaced(diffusion, indices, mean_type="x0")
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


def _as_x0_model(model_fn, diffusion):
    """model_fn of a mean-model turned into an x0-model's: x0_hat = from_x x + from_out mean (x0_coefs), the
    variance part, if any, passed on unchanged."""
    def x0_model(x, t):
        mean, var = diffusion.split_output(model_fn(x, t), x)
        xp, per_sample = array_module(x), (-1,) + (1,) * (x.ndim - 1)
        from_x, from_out = (xp.asarray(c.reshape(per_sample).astype(x.dtype))
                            for c in reverse_step.x0_coefs(diffusion.step_tables, t, "mean"))
        x0 = from_x * x + from_out * mean
        return x0 if var is None else xp.concatenate([x0, var], axis=1)
    return x0_model


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
