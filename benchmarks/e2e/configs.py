"""The three fixed end-to-end configurations (issue 5), as U-Net presets plus overrides, with batch sizes.

A: 16x16x1, ch 32, ch_mult (1, 2, 2), 1 res block, attention at 8, batch 32 (the "digits" preset).
B: 32x32x3, ch 64, ch_mult (1, 2, 2, 2), 2 res blocks, attention at 16, batch 16 (the CIFAR-10 model at
   half the width).
C: the paper's CIFAR-10 model (35.7M parameters, Ho et al. 2020, App. B), batch 8; sampling at batch 16.

Dropout is what the preset says (0 for A, 0.1 for B and C, as the paper's CIFAR-10 run); the PyTorch
reference reads the same rate from the model's config.
"""

from dataclasses import dataclass, field

from pyddpm.models.unet import PRESETS, UNet


@dataclass(frozen=True)
class Config:
    name: str
    preset: str
    overrides: dict = field(default_factory=dict)
    train_batch: int = 8
    sample_batch: int = 8

    def unet_kwargs(self):
        """UNet's keyword arguments for this configuration: the preset's, then the overrides."""
        return {**PRESETS[self.preset], **self.overrides}

    def build(self, seed=0):
        """pyddpm's U-Net for this configuration (float32, training mode)."""
        return UNet(**self.unet_kwargs(), seed=seed)

    def image_shape(self):
        """(C, H, W) of the images."""
        kw = self.unet_kwargs()
        return kw["in_ch"], kw["image_size"], kw["image_size"]

    def batch(self, what):
        """The batch size of a "train" or "sample" step."""
        return {"train": self.train_batch, "sample": self.sample_batch}[what]


CONFIGS = {
    "A": Config("A", "digits", {}, train_batch=32, sample_batch=32),
    "B": Config("B", "cifar10", dict(ch=64), train_batch=16, sample_batch=16),
    "C": Config("C", "cifar10", {}, train_batch=8, sample_batch=16),
}
