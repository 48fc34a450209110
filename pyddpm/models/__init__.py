"""Models built from pyddpm.nn: the DDPM U-Net and the one-latent VAE baseline."""

from pyddpm.models.unet import PRESETS, UNet
from pyddpm.models.vae import PRESETS as VAE_PRESETS
from pyddpm.models.vae import VAE

__all__ = ["UNet", "PRESETS", "VAE", "VAE_PRESETS"]
