"""Turn a TrainConfig into the objects a run needs: data, U-Net (or the VAE of --model vae), diffusion; and load
a trained run back.

Used by training, sampling and evaluation alike, so all three build the same model from the same config.
"""

import numpy as np

from pyddpm.arrays import array_module
from pyddpm.autograd import Tensor
from pyddpm.checkpoint import CheckpointError, load_checkpoint, read_checkpoint_meta
from pyddpm.data import load_data
from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule
from pyddpm.diffusion.settings import LEARNED_VAR_TYPES
from pyddpm.models import VAE, UNet
from pyddpm.ops.backend import array_library
from pyddpm.train.config import TrainConfig


def build_diffusion(cfg):
    """The GaussianDiffusion of cfg; None for a VAE run (--model vae), which has none."""
    if cfg.model_type == "vae":
        return None
    betas = make_beta_schedule(cfg.schedule, cfg.timesteps)
    return GaussianDiffusion(betas, mean_type=cfg.mean_type, var_type=cfg.var_type, loss_type=cfg.loss_type,
                             x0_weight=cfg.x0_weight, hybrid_lambda=cfg.hybrid_lambda)


def build_model(cfg, image_shape):
    """The U-Net of cfg.model, sized to the data: image_shape is (C, H, W). A learned variance doubles its output
    channels (the mean part, then the variance part)."""
    kwargs = dict(cfg.model)
    name = kwargs.pop("name", "digits")
    C, H, W = image_shape
    if H != W:
        raise ValueError(f"the {'VAE' if cfg.model_type == 'vae' else 'U-Net'} takes square images; the data is "
                         f"{H}x{W}")
    if cfg.model_type == "vae":  # the one-latent VAE of the same preset name (pyddpm.models.vae.PRESETS)
        return VAE.from_preset(name, **{**kwargs, "image_size": H, "in_ch": C})
    out_ch = 2 * C if cfg.var_type in LEARNED_VAR_TYPES else C
    return UNet.from_preset(name, **{**kwargs, "image_size": H, "in_ch": C, "out_ch": out_ch})


def load_split(cfg, split):
    return load_data(cfg.data, split)


def run_config(ckpt, meta=None):
    """(cfg, image shape, meta) of the run in ``ckpt``; meta read from the manifest alone unless given."""
    meta = read_checkpoint_meta(ckpt) if meta is None else meta
    try:
        return TrainConfig.from_dict(meta["config"]), tuple(meta["image_shape"]), meta
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{ckpt}: the checkpoint's config is not a pyddpm training config ({e})") from e


def load_trained(ckpt, weights="ema", model_type="ddpm"):
    """Load a run's config, its U-Net (or VAE) with the EMA (default) or raw weights, and its diffusion.

    Returns (cfg, model in eval mode on the current backend's array library, diffusion, meta); diffusion is
    None for a VAE run. ``model_type`` is what the caller can use ("ddpm" or "vae"): a run of the other kind is
    refused with a CheckpointError naming it.
    """
    arrays, meta = load_checkpoint(ckpt)
    cfg, image_shape, meta = run_config(ckpt, meta)
    if cfg.model_type != model_type:
        raise CheckpointError(f"{ckpt}: the run is a {cfg.model_type.upper()} (trained with --model "
                              f"{cfg.model_type}); this needs a {model_type.upper()} run")
    model = build_model(cfg, image_shape)
    prefix = weights + "/"
    state = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    bad = [k for k, v in state.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{ckpt}: the {weights} weights hold inf or NaN ({prefix}{bad[0]}"
                              f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}): the run that wrote "
                              f"them had diverged")
    try:
        model.load_state_dict(state)
    except ValueError as e:
        raise CheckpointError(f"{ckpt}: {e}") from e
    return cfg, model.to(array_library()).eval(), build_diffusion(cfg), meta


def model_fn_arrays(model):
    """A model_fn for sampling and evaluation: arrays in, arrays out (call it under no_grad)."""
    return lambda x, t: model(x, np.asarray(t)).data


def model_vjp_arrays(model):
    """vjp_fn(x, t, v) -> (output, v^T d output / dx), arrays in and out (in the model's dtype): the network's
    vector-Jacobian product with respect to its input, by one backward pass through the autograd, for the
    probability-flow likelihood (pyddpm.diffusion.ode_likelihood). The parameters are kept off the tape, so
    no weight gradient is computed or left behind."""
    params = model.parameters()
    dtype = params[0].data.dtype

    def vjp_fn(x, t, v):
        xp = array_module(params[0].data)
        v = xp.asarray(v, dtype=dtype)
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad = False
        try:
            inputs = Tensor(xp.asarray(x, dtype=dtype), requires_grad=True)
            out = model(inputs, np.asarray(t))
            if out.shape[1] > v.shape[1]:  # a learned variance's channels: the product is of the mean part only
                v = xp.concatenate([v, xp.zeros((v.shape[0], out.shape[1] - v.shape[1], *v.shape[2:]), dtype)], 1)
            (out * v).sum().backward()
            return out.data, inputs.grad
        finally:
            for p, flag in zip(params, flags):
                p.requires_grad = flag
    return vjp_fn
