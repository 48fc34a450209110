"""The one-latent VAE baseline: a convolutional Gaussian encoder and a discretized-Gaussian decoder.

Encoder q_phi(z|x) = N(mu_phi(x), diag sigma_phi^2(x)) (Eq. 1.1, seed 004): convolutions and residual blocks
down to H/2^(L-1), GroupNorm + SiLU, then one dense layer to (mu, log sigma^2). Decoder p_theta(x|z): one dense
layer up to the smallest feature map, residual blocks and upsampling back to H, then per pixel a mean and a
log standard deviation for the same discretized Gaussian as the DDPM's decoder L_0 (Eq. 13, Ho et al. 2020).

Choices, and why:
- The latent is a vector z (z_dim,), not a spatial map: the dense layers let every latent coordinate reach
  every pixel, so independent N(0, 1) coordinates decode to a whole digit rather than to independent patches.
- The means are unconstrained, not squashed by tanh: the edge bins of Eq. 13 are open to -inf and +inf, so a
  pixel certainly at -1 (the digits' background) is best explained by a mean below -1, which tanh forbids.
  Images shown are the means clipped to [-1, 1].
- The log-scale is per pixel (C more output channels), not one learned scalar: a background pixel can then be
  near-certain while a stroke's edge stays uncertain; a single scale would have to cover both.
The output layers start at ~zero (as the U-Net's), so training starts from q(z|x) = N(0, I) (KL = 0) and a
decoder of mean 0 and scale 1.

Shapes: x (B, C, H, W) in [-1, 1]; encode -> mu, logvar (B, z_dim); decode z (B, z_dim) -> means, log_scales
(B, C, H, W). Both accept arrays or Tensors and return Tensors. The math of the bound is in pyddpm.vae_bound.
"""

import numpy as np

from pyddpm.nn.blocks import Downsample, Upsample
from pyddpm.nn.layers import Conv2d, GroupNorm, Linear
from pyddpm.nn.module import Module

PRESETS = {
    # Seconds, for tests.
    "tiny": dict(image_size=16, in_ch=1, ch=8, ch_mult=(1, 2), num_res_blocks=1, z_dim=4),
    # The built-in 16x16 digits: three resolutions (16, 8, 4) as the digits U-Net, a 32-dimensional latent.
    "digits": dict(image_size=16, in_ch=1, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, z_dim=32),
}


class ResBlock(Module):
    """The U-Net's residual block without the time embedding:
    shortcut(x) + conv2(swish(norm2(conv1(swish(norm1(x))))))."""

    def __init__(self, in_ch, out_ch, rng):
        self.norm1 = GroupNorm(in_ch, silu=True)
        self.conv1 = Conv2d(in_ch, out_ch, 3, rng)
        self.norm2 = GroupNorm(out_ch, silu=True)
        self.conv2 = Conv2d(out_ch, out_ch, 3, rng, init_scale=0.0)
        self.nin_shortcut = Conv2d(in_ch, out_ch, 1, rng) if in_ch != out_ch else None

    def forward(self, x):
        h = self.conv2(self.norm2(self.conv1(self.norm1(x))))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class VAE(Module):
    def __init__(self, image_size=16, in_ch=1, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, z_dim=32, seed=0):
        if image_size % 2 ** (len(ch_mult) - 1):
            raise ValueError(f"VAE: image_size {image_size} must be divisible by 2^{len(ch_mult) - 1} "
                             f"for {len(ch_mult)} resolutions")
        if z_dim < 1:
            raise ValueError(f"VAE: z_dim must be >= 1, got {z_dim}")
        self.config = dict(image_size=image_size, in_ch=in_ch, ch=ch, ch_mult=tuple(ch_mult),
                           num_res_blocks=num_res_blocks, z_dim=z_dim, seed=seed)
        rng = np.random.default_rng(seed)
        self.latent_shape = (z_dim,)
        self.bottom = image_size // 2 ** (len(ch_mult) - 1)  # side of the smallest feature map
        self.bottom_ch = ch * ch_mult[-1]
        flat = self.bottom_ch * self.bottom ** 2

        self.enc_in = Conv2d(in_ch, ch, 3, rng)
        self.enc, cur = [], ch
        for level, mult in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                self.enc.append(ResBlock(cur, ch * mult, rng))
                cur = ch * mult
            if level != len(ch_mult) - 1:
                self.enc.append(Downsample(cur, rng))
        self.enc_norm = GroupNorm(cur, silu=True)
        self.enc_out = Linear(flat, 2 * z_dim, rng, init_scale=0.0)  # (mu, log sigma^2)

        self.dec_in = Linear(z_dim, flat, rng)
        self.dec = []
        for level, mult in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res_blocks):
                self.dec.append(ResBlock(cur, ch * mult, rng))
                cur = ch * mult
            if level != 0:
                self.dec.append(Upsample(cur, rng))
        self.dec_norm = GroupNorm(cur, silu=True)
        self.dec_out = Conv2d(cur, 2 * in_ch, 3, rng, init_scale=0.0)  # (means, log_scales) per pixel

    @classmethod
    def from_preset(cls, name, **overrides):
        if name not in PRESETS:
            raise ValueError(f"unknown VAE preset {name!r}; choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def set_rng(self, rng):
        """The Trainer hands every model its generator; the VAE draws nothing itself (eps comes in as an array)."""

    def encode(self, x):
        """mu, logvar (B, z_dim) of q(z|x) (Eq. 1.1, seed 004) for images x (B, C, H, W)."""
        c = self.config
        if x.ndim != 4 or tuple(x.shape[1:]) != (c["in_ch"], c["image_size"], c["image_size"]):
            raise ValueError(f"VAE: x must be (B, {c['in_ch']}, {c['image_size']}, {c['image_size']}), "
                             f"got {tuple(x.shape)}")
        h = self.enc_in(x)
        for block in self.enc:
            h = block(h)
        h = self.enc_out(self.enc_norm(h).reshape(x.shape[0], -1))
        z = c["z_dim"]
        return h[:, :z], h[:, z:]

    def decode(self, z):
        """means, log_scales (B, C, H, W) of the discretized Gaussian p(x|z) (Eq. 13, Ho et al. 2020)."""
        if z.ndim != 2 or z.shape[1] != self.config["z_dim"]:
            raise ValueError(f"VAE: z must be (B, {self.config['z_dim']}), got {tuple(z.shape)}")
        h = self.dec_in(z).reshape(z.shape[0], self.bottom_ch, self.bottom, self.bottom)
        for block in self.dec:
            h = block(h)
        h = self.dec_out(self.dec_norm(h))
        C = self.config["in_ch"]
        return h[:, :C], h[:, C:]
