"""What python -m pyddpm.sample and evaluate do on a run of the one-latent VAE (--model vae).

Samples: the decoder means at z ~ N(0, I) (pyddpm.vae_bound.prior_samples), image i's latent from its own
generator (seed, i) as the DDPM's samples, so the images do not depend on --batch-size. Reconstructions: the
decoder means at z = mu(x) of test images. The bound: the ELBO in bits/dim (reconstruction, averaged over the
K draws, plus the closed-form KL) and the IWAE bound with the same K draws per image (pyddpm.vae_bound); image
i's draws come from generator (seed, i). A VAE has no diffusion, so the DDPM's sampler and likelihood flags
are refused on its runs by name (refuse_diffusion_flags).
"""

import math

import numpy as np
from tqdm import tqdm

from pyddpm.arrays import to_host
from pyddpm.autograd import no_grad
from pyddpm.data import DataError, load_data, to_model_range, to_uint8
from pyddpm.diffusion.noise import PerSampleNoise
from pyddpm.ops.backend import array_library
from pyddpm.train.builders import load_trained, run_config
from pyddpm.vae_bound import iwae_bpd, iwae_log_weights, kl_to_prior, prior_samples, reconstructions


def is_vae_run(ckpt):
    """True when the run in ``ckpt`` was trained with --model vae (a config without model_type is a DDPM's)."""
    return run_config(ckpt)[0].model_type == "vae"


def refuse_diffusion_flags(ckpt, **flags):
    """ValueError naming the first flag given (neither None nor False): it has no meaning for the VAE in ckpt."""
    for name, value in flags.items():
        if value is not None and value is not False:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} is a diffusion setting, and {ckpt} is a VAE run (--model vae): it samples "
                             f"by decoding z ~ N(0, I) and has no diffusion steps (drop {flag})")


def vae_samples(ckpt, n, seed=0, batch_size=64, weights="ema", progress=True):
    """uint8 prior samples (n, C, H, W) of the VAE run in ``ckpt``: decoder means at z ~ N(0, I), z of image i
    from generator (seed, i)."""
    _, model, _, meta = load_trained(ckpt, weights, model_type="vae")
    xp, out = array_library(), []
    with no_grad():
        for start in tqdm(range(0, n, batch_size), desc="decode", disable=not progress):
            count = min(batch_size, n - start)
            z = PerSampleNoise(seed, start, count).standard_normal((count, *model.latent_shape), dtype=np.float32)
            x = to_host(prior_samples(model, xp.asarray(z)))
            if not np.isfinite(x).all():
                raise ValueError(f"{ckpt}: decoding gave inf or NaN values (images {start}..{start + count - 1})")
            out.append(to_uint8(x))
    return np.concatenate(out)


def vae_reconstructions(ckpt, n, data=None, weights="ema", per_row=8):
    """(uint8 images, per_row): the first n test images and their reconstructions (the decoder means at
    z = mu(x)), in groups of ``per_row``: a row of test images, then the row of their reconstructions (a short
    last group filled with black images)."""
    cfg, model, _, meta = load_trained(ckpt, weights, model_type="vae")
    images = _images(cfg, data, "test", meta)[:n]
    with no_grad():
        recon = to_uint8(to_host(reconstructions(model, array_library().asarray(to_model_range(images)))))
    per_row, rows = min(per_row, len(images)), []
    for start in range(0, len(images), per_row):
        for row in (images[start:start + per_row], recon[start:start + per_row]):
            rows += [row, np.zeros((per_row - len(row), *row.shape[1:]), np.uint8)]  # a short last row: black
    return np.concatenate(rows), per_row


def vae_evaluate(ckpt, split="test", n=None, batch_size=100, seed=0, data=None, weights="ema", iwae_k=64,
                 progress=True):
    """The VAE run's bound on the first ``n`` images of ``split``, bits/dim averaged over the images: a dict.

    total_bpd: -ELBO = decoder_bpd (-log p(x|z), the mean over the K draws z_k) + prior_bpd (KL(q(z|x) || N(0, I)),
    closed form); kl_bpd: 0 (the DDPM's sum of L_{t-1}: a VAE has none); iwae_bpd: the IWAE bound with the same K
    draws, below total_bpd in expectation. Image i's draws depend on (seed, i) only, not on batch_size, and the
    first k of K draws are those of --iwae k.
    """
    if isinstance(iwae_k, bool) or not isinstance(iwae_k, int) or iwae_k < 1:
        raise ValueError(f"--iwae must be an integer >= 1 (the number of importance samples K), got {iwae_k!r}")
    cfg, model, _, meta = load_trained(ckpt, weights, model_type="vae")
    images = _images(cfg, data, split, meta)
    images = images[:n] if n else images
    dims, xp = math.prod(images.shape[1:]), array_library()
    parts = {"decoder_bpd": [], "prior_bpd": [], "iwae_bpd": []}
    with no_grad():
        for start in tqdm(range(0, len(images), batch_size), desc="bound", disable=not progress):
            x = xp.asarray(to_model_range(images[start:start + batch_size]))
            noise = PerSampleNoise(seed, start, len(x))
            eps = noise.standard_normal((len(x), iwae_k, *model.latent_shape), dtype=np.float32).swapaxes(0, 1)
            log_w, recon = iwae_log_weights(model, x, eps)
            mu, logvar = model.encode(x)
            kl = to_host(kl_to_prior(mu, logvar).data).astype(np.float64)
            parts["decoder_bpd"].append(recon.mean(axis=0) / (dims * math.log(2.0)))
            parts["prior_bpd"].append(kl / (dims * math.log(2.0)))
            parts["iwae_bpd"].append(iwae_bpd(log_w, dims))
    result = {k: float(np.concatenate(v).mean()) for k, v in parts.items()}
    result.update(total_bpd=result["decoder_bpd"] + result["prior_bpd"], kl_bpd=0.0, iwae_k=iwae_k,
                  model_type="vae", n=len(images), split=split, data=data or cfg.data, step=meta["step"],
                  weights=weights)
    if not all(np.isfinite(result[k]) for k in ("total_bpd", "iwae_bpd")):
        raise ValueError(f"{ckpt}: the bound came out as {result['total_bpd']} (ELBO) and {result['iwae_bpd']} "
                         f"(IWAE) bits/dim")
    return result


def format_vae_bpd(r):
    """The VAE's bound as text, as evaluate prints it."""
    return (f"bits/dim on {r['n']} {r['split']} images (VAE): -ELBO {r['total_bpd']:.4f} (reconstruction "
            f"{r['decoder_bpd']:.4f}, KL to the prior {r['prior_bpd']:.4f}); IWAE with K = {r['iwae_k']}: "
            f"{r['iwae_bpd']:.4f}")


def _images(cfg, data, split, meta):
    images = load_data(data or cfg.data, split).images
    if tuple(images.shape[1:]) != tuple(meta["image_shape"]):
        raise DataError(f"{data or cfg.data}: images are {images.shape[1:]}, the model was trained on "
                        f"{tuple(meta['image_shape'])}")
    return images
