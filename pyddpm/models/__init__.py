"""Models built from pyddpm.nn: the DDPM U-Net."""

from pyddpm.models.unet import PRESETS, UNet

__all__ = ["UNet", "PRESETS"]
