"""PyTorch's two timed steps, doing the same work as pyddpm's (pyddpm_runner.py) line for line.

train_step: a batch of the same uint8 images scaled to [-1, 1] with random flips (RGB only, as pyddpm's
    Trainer), t uniform over 0..T-1, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Eq. 4), forward,
    MSE on eps (Eq. 14), backward, clip_grad_norm_(1.0), Adam(2e-4, 0.9, 0.999, 1e-8), and the EMA with
    pyddpm's warm-up decay min(0.9999, (1 + n) / (10 + n)), in place with torch._foreach_*.
sample_step: one network evaluation of the EMA model under no_grad, then x_{t-1} = posterior mean at
    the clipped predicted x_0 plus sigma_t z (Alg. 2 with Eq. 7 and 15; fixedlarge variances), at t = T/2.
The coefficient tables come from pyddpm's GaussianDiffusion (float64, cast to float32 once).
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.e2e.pyddpm_runner import EMA_DECAY, GRAD_CLIP, LR, TIMESTEPS
from benchmarks.e2e.torch_unet import TorchUNet, copy_from_pyddpm
from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule


class TorchRunner:
    """``init_from``: a PyddpmRunner whose model and EMA weights to start from (else PyTorch's own init)."""

    def __init__(self, config, images, seed=0, init_from=None):
        self.model = TorchUNet(**config.unet_kwargs(), seed=seed)
        self.ema_model = TorchUNet(**config.unet_kwargs(), seed=seed).eval()
        if init_from is not None:
            copy_from_pyddpm(self.model, init_from.model)
            copy_from_pyddpm(self.ema_model, init_from.ema_model)
        else:
            self.ema_model.load_state_dict(self.model.state_dict())
        self.ema_model.requires_grad_(False)
        self.params = list(self.model.parameters())
        self.ema_params = list(self.ema_model.parameters())
        self.opt = torch.optim.Adam(self.params, lr=LR, betas=(0.9, 0.999), eps=1e-8)
        self.ema_updates = 0

        self.images = torch.from_numpy(images)
        self.hflip = images.shape[1] == 3
        self.batch_size = config.train_batch
        self.tables = Tables.from_diffusion(GaussianDiffusion(make_beta_schedule("linear", TIMESTEPS)))

        self.gen = torch.Generator().manual_seed(seed)
        self.sample_shape = (config.sample_batch, *images.shape[1:])
        self.x = torch.randn(self.sample_shape, generator=self.gen)
        self.t = torch.full((config.sample_batch,), TIMESTEPS // 2, dtype=torch.int64)

    def batch(self):
        """x_0 (B, C, H, W) in [-1, 1], t int64 (B,), noise like x_0: as pyddpm's Trainer.batch."""
        B = self.batch_size
        idx = torch.randint(0, len(self.images), (B,), generator=self.gen)
        x0 = self.images[idx].to(torch.float32) / 127.5 - 1.0
        if self.hflip:
            flip = torch.rand(B, generator=self.gen) < 0.5
            x0[flip] = x0[flip].flip(-1)
        t = torch.randint(0, TIMESTEPS, (B,), generator=self.gen)
        return x0, t, torch.randn(x0.shape, generator=self.gen)

    def train_step(self):
        """One training step; returns the loss."""
        x0, t, noise = self.batch()
        xt = q_sample(self.tables, x0, t, noise)
        self.model.train()
        loss = F.mse_loss(self.model(xt, t), noise)  # the mean of per-sample means: equal sizes
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, GRAD_CLIP)
        self.opt.step()
        d = min(EMA_DECAY, (1.0 + self.ema_updates) / (10.0 + self.ema_updates))
        self.ema_updates += 1
        with torch.no_grad():
            torch._foreach_mul_(self.ema_params, d)
            torch._foreach_add_(self.ema_params, self.params, alpha=1.0 - d)
        return loss.item()

    def sample_step(self):
        """One reverse step from the fixed x_t; returns x_{t-1} (B, C, H, W)."""
        noise = torch.randn(self.sample_shape, generator=self.gen)
        with torch.no_grad():
            eps = self.ema_model(self.x, self.t)
            return reverse_step(self.tables, eps, self.x, self.t, noise)


@dataclass(frozen=True)
class Tables:
    """Coefficient tables (T,) of pyddpm's GaussianDiffusion (float64 there), as float32 tensors."""
    sqrt_ac: torch.Tensor
    sqrt_1mac: torch.Tensor
    recip: torch.Tensor
    recipm1: torch.Tensor
    coef1: torch.Tensor
    coef2: torch.Tensor
    sigma: torch.Tensor

    @classmethod
    def from_diffusion(cls, d):
        arrays = (d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod, d.sqrt_recip_alphas_cumprod,
                  d.sqrt_recipm1_alphas_cumprod, d.posterior_mean_coef1, d.posterior_mean_coef2,
                  np.exp(0.5 * d.model_log_variance))
        return cls(*(torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in arrays))


def q_sample(tables, x0, t, noise):
    """Eq. 4: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise; x0, noise (B, C, H, W), t int64 (B,)."""
    return _at(tables.sqrt_ac, t) * x0 + _at(tables.sqrt_1mac, t) * noise


def reverse_step(tables, eps, xt, t, noise):
    """x_{t-1} = coef1 clip(x0_hat) + coef2 x_t + sigma_t z, x0_hat = recip x_t - recipm1 eps; z = 0 at t = 0."""
    x0 = (_at(tables.recip, t) * xt - _at(tables.recipm1, t) * eps).clamp_(-1.0, 1.0)
    mean = _at(tables.coef1, t) * x0 + _at(tables.coef2, t) * xt
    return mean + _at(tables.sigma, t) * (t != 0).to(xt.dtype)[:, None, None, None] * noise


def _at(table, t):
    """table[t] as (B, 1, 1, 1)."""
    return table[t][:, None, None, None]
