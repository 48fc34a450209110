"""pyddpm's two timed steps on one backend: a training step and a sampling step.

train_step: pyddpm.train.Trainer.train_step itself (Alg. 1 of Ho et al. 2020): draw a batch, flips, t and
    noise; x_t by q_sample (Eq. 4); forward; L_simple (Eq. 14); backward; clip the global gradient norm
    to 1; Adam; EMA update.
sample_step: one step of Alg. 2 with the EMA model: one network evaluation without a tape, then the
    fused reverse step (GaussianDiffusion.p_sample) with fresh noise, at a fixed index t = T/2.
Images are (N, C, H, W) uint8, handed to the Trainer through a temporary .npz (its ordinary data path).
"""

import tempfile
from pathlib import Path

import numpy as np

from pyddpm.autograd import no_grad
from pyddpm.ops.backend import set_backend
from pyddpm.train import Trainer, TrainConfig

LR, GRAD_CLIP, EMA_DECAY, TIMESTEPS = 2e-4, 1.0, 0.9999, 1000  # the paper's CIFAR-10 settings (App. B)


class PyddpmRunner:
    def __init__(self, config, backend, images, seed=0):
        self.backend = backend
        with tempfile.TemporaryDirectory() as tmp:
            np.savez(Path(tmp) / "images.npz", images=images)
            cfg = TrainConfig(model=dict(name=config.preset, **config.overrides), data=f"npz:{tmp}/images.npz",
                              batch_size=config.train_batch, lr=LR, warmup=0, grad_clip=GRAD_CLIP,
                              ema_decay=EMA_DECAY, timesteps=TIMESTEPS, seed=seed, backend=backend,
                              out=f"{tmp}/run")
            self.trainer = Trainer(cfg, log=lambda *_: None)
        self.model, self.ema_model = self.trainer.model, self.trainer.ema_model
        self.diffusion = self.trainer.diffusion
        self.rng = np.random.default_rng(seed + 1)
        self.sample_shape = (config.sample_batch, *images.shape[1:])
        self.x = self.rng.standard_normal(self.sample_shape).astype(np.float32)
        self.t = np.full(config.sample_batch, TIMESTEPS // 2, dtype=np.int64)

    def train_step(self):
        """One training step; returns the loss."""
        set_backend(self.backend)
        return self.trainer.train_step()[0]

    def sample_step(self):
        """One reverse step from the fixed x_t; returns x_{t-1} (B, C, H, W)."""
        set_backend(self.backend)
        noise = self.rng.standard_normal(self.sample_shape).astype(np.float32)
        with no_grad():
            eps = self.ema_model(self.x, self.t).data
        return self.diffusion.p_sample(eps, self.x, self.t, noise)["sample"]
