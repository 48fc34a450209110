"""The Trainer of --model vae: the DDPM's loop (pyddpm.train.loop: checkpoints, exact resume, Ctrl-C, the
EMA, the log) with the one-latent VAE's loss and samples in its two hooks.

losses(): the negative ELBO in bits/dim averaged over the batch (Eq. 1.4, seed 004; pyddpm.vae_bound), one
z per image by Eq. 1.5 with eps drawn from the run's generator, so a resumed run draws the same eps.
generate(): the EMA decoder's means at z ~ N(0, I), for the run's sample grids.
"""

import numpy as np

from pyddpm.train.loop import Trainer
from pyddpm.vae_bound import elbo_terms, prior_samples


class VAETrainer(Trainer):
    summary = property(lambda self: f"VAE {self.model.num_parameters():,} parameters, latent z of "
                                    f"{self.model.latent_shape[0]} dimensions")

    def losses(self):
        """The batch's mean negative ELBO (a 0-d Tensor, bits/dim) and None (nothing for update() to learn)."""
        # The DDPM's batch: the same images and flips from the same generator; its t and noise go unused.
        x0, _, _, _ = self.batch()
        eps = self.rng.standard_normal((x0.shape[0], *self.model.latent_shape), dtype=np.float32)
        return elbo_terms(self.model, x0, self.xp.asarray(eps))["loss"].mean(), None

    def generate(self, shape, rng):
        """Images of ``shape`` (N, C, H, W): the EMA decoder's means at N latents z ~ N(0, I) drawn from rng."""
        z = rng.standard_normal((shape[0], *self.ema_model.latent_shape), dtype=np.float32)
        return prior_samples(self.ema_model, self.xp.asarray(z))


Trainer.families["vae"] = VAETrainer
