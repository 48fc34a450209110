"""The U-Net's building blocks from the official DDPM code: self-attention, resampling, time embedding.

Shapes are NCHW throughout; ``temb`` is (B, temb_ch).
"""

import math

import numpy as np

from pyddpm import autograd as ag
from pyddpm.arrays import to_host
from pyddpm.nn.layers import Conv2d, GroupNorm
from pyddpm.nn.module import Module


def timestep_embedding(t, dim):
    """Sinusoidal embedding of the time index (as get_timestep_embedding in the official code).

    t: int array (B,) of array indices 0..T-1 (the official code embeds the index, not the paper's t = i+1).
    Returns float32 (B, dim): [sin(t * f_j), cos(t * f_j)] with f_j = 10000^(-j / (dim/2 - 1)).
    """
    half = dim // 2
    freqs = np.exp(-math.log(10000.0) / (half - 1) * np.arange(half, dtype=np.float32))
    args = to_host(t).astype(np.float32)[:, None] * freqs[None, :]
    emb = np.concatenate([np.sin(args), np.cos(args)], axis=1)
    return np.pad(emb, ((0, 0), (0, dim % 2))) if dim % 2 else emb


class AttentionBlock(Module):
    """Single-head self-attention over the H*W positions, with a residual: x + proj(attn(norm(x))).

    q, k, v come from one 1x1 convolution with 3C outputs (the official code's three `nin` layers,
    stacked so that they run as one matmul); the output projection starts at ~zero.
    """

    def __init__(self, channels, rng):
        self.norm = GroupNorm(channels)
        self.qkv = Conv2d(channels, 3 * channels, 1, rng)
        self.proj_out = Conv2d(channels, channels, 1, rng, init_scale=0.0)

    def forward(self, x):
        B, C, H, W = x.shape
        qkv = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).transpose(1, 0, 3, 2)  # (3, B, N, C)
        q, k, v = (qkv[i].reshape(B, 1, H * W, C) for i in range(3))
        h = ag.attention(q, k, v)  # (B, 1, N, C), scale C ** -0.5
        h = h.reshape(B, H * W, C).transpose(0, 2, 1).reshape(B, C, H, W)
        return x + self.proj_out(h)


class Downsample(Module):
    """3x3 convolution with stride 2: (B, C, H, W) -> (B, C, H/2, W/2)."""

    def __init__(self, channels, rng):
        self.conv = Conv2d(channels, channels, 3, rng, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample(Module):
    """Nearest-neighbour 2x upsampling then a 3x3 convolution: (B, C, H, W) -> (B, C, 2H, 2W)."""

    def __init__(self, channels, rng):
        self.conv = Conv2d(channels, channels, 3, rng)

    def forward(self, x):
        return self.conv(ag.upsample_nearest2x(x))
