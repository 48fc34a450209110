"""Drawing samples from a trained run with any sampler of pyddpm.diffusion.samplers, batch by batch, for the
command lines (python -m pyddpm.sample, its strips, and the sample metrics of evaluate).

Image i of a seed is the same at any batch size (its noise comes from its own generator (seed, i),
pyddpm.diffusion.noise.PerSampleNoise), except with the pc sampler, whose Langevin step size is shared by the
batch.
"""

import numpy as np

from pyddpm.arrays import to_host
from pyddpm.autograd import no_grad
from pyddpm.data import to_uint8
from pyddpm.diffusion.noise import PerSampleNoise
from pyddpm.diffusion.samplers import SAMPLERS
from pyddpm.diffusion.samplers.ddim import check_eta
from pyddpm.diffusion.samplers.steps import check_steps
from pyddpm.ops.backend import array_library
from pyddpm.train.builders import load_trained, model_fn_arrays
from pyddpm.vae_cli import is_vae_run, vae_samples


def check_counts(**flags):
    """ValueError naming the flag for a count below its minimum: n, batch_size >= 1; seed >= 0."""
    for name, value in flags.items():
        low = 0 if name == "seed" else 1
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}")


def sampler_options(sampler, steps, eta, num_timesteps):
    """The keyword arguments of SAMPLERS[sampler] for --steps (default T) and --eta (DDIM only), checked."""
    if sampler not in SAMPLERS:
        raise ValueError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    options = {"steps": num_timesteps if steps is None else check_steps(steps, num_timesteps)}
    if eta is not None:
        if sampler != "ddim":
            raise ValueError(f"--eta applies to --sampler ddim only, not {sampler}")
        options["eta"] = check_eta(eta)
    return options


def sample_batches(ckpt, n, seed=0, batch_size=64, weights="ema", progress=True, sampler="ancestral", steps=None,
                   eta=None, callback=None):
    """Yields (first index, float samples (count, C, H, W) on the host) batch by batch from the run in ``ckpt``.
    callback(start) -> a sampler callback(i, x, pred_x0) for the batch starting at image ``start``, or None."""
    check_counts(n=n, seed=seed, batch_size=batch_size)
    cfg, model, diffusion, meta = load_trained(ckpt, weights)
    options = sampler_options(sampler, steps, eta, diffusion.num_timesteps)
    # Allocated first, as the batch itself would be: a batch too large for memory fails here, at once.
    np.empty((min(n, batch_size), *meta["image_shape"]), np.float32)
    with no_grad():
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            x = SAMPLERS[sampler](model_fn_arrays(model), diffusion, (count, *meta["image_shape"]),
                                  PerSampleNoise(seed, start, count), progress=progress, xp=array_library(),
                                  callback=None if callback is None else callback(start), **options)
            x = to_host(x)
            if not np.isfinite(x).all():
                raise ValueError(f"{ckpt}: sampling gave inf or NaN values (images {start}..{start + count - 1})")
            yield start, x


def sample(ckpt, n, seed=0, batch_size=64, weights="ema", progress=True, sampler="ancestral", steps=None, eta=None):
    """uint8 samples (n, C, H, W) from the run in ``ckpt``; image i depends on (seed, i) only (but for pc)."""
    if is_vae_run(ckpt):  # --model vae: the decoder means at z ~ N(0, I); there is no sampler to choose
        check_counts(n=n, seed=seed, batch_size=batch_size)
        return vae_samples(ckpt, n, seed, batch_size, weights, progress)
    return np.concatenate([to_uint8(x) for _, x in sample_batches(ckpt, n, seed, batch_size, weights, progress,
                                                                 sampler, steps, eta)])
