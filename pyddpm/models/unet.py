"""The DDPM U-Net (Ho et al. 2020, App. B), following the official diffusion_tf/models/unet.py.

A PixelCNN++-style U-Net: `num_res_blocks` residual blocks per resolution, self-attention at the
resolutions in `attn_resolutions`, a strided-conv downsample between levels, and on the way up one more
residual block per level, each fed the concatenation of the current features and a stored skip. Every
residual block adds a projection of the sinusoidal time embedding. Output: GroupNorm -> swish -> conv
initialised to ~zero, predicting epsilon (or x0) with the input's shape.

Shapes: x (B, in_ch, H, W) float32 in [-1, 1]; t int (B,) array indices 0..T-1; output (B, out_ch, H, W).
"""

import numpy as np

from pyddpm import autograd as ag
from pyddpm.nn.blocks import AttentionBlock, Downsample, Upsample, timestep_embedding
from pyddpm.nn.layers import Conv2d, Dropout, GroupNorm, Linear
from pyddpm.nn.module import Module

PRESETS = {
    # A smoke-test model: seconds per step on one core.
    "tiny": dict(image_size=16, in_ch=1, ch=8, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(8,),
                 dropout=0.0),
    # The default CPU model for the built-in 16x16 digits (benchmark configuration A).
    "digits": dict(image_size=16, in_ch=1, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1,
                   attn_resolutions=(8,), dropout=0.0),
    # The paper's CIFAR-10 model (35.7M parameters).
    "cifar10": dict(image_size=32, in_ch=3, ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2,
                    attn_resolutions=(16,), dropout=0.1),
}


class ResBlock(Module):
    """h = conv2(dropout(swish(norm2(conv1(swish(norm1(x))) + dense(swish(temb)))))); return shortcut(x) + h."""

    def __init__(self, in_ch, out_ch, temb_ch, dropout, rng):
        self.norm1 = GroupNorm(in_ch, silu=True)
        self.conv1 = Conv2d(in_ch, out_ch, 3, rng)
        self.temb_proj = Linear(temb_ch, out_ch, rng)
        self.norm2 = GroupNorm(out_ch, silu=True)
        self.dropout = Dropout(dropout, rng)
        self.conv2 = Conv2d(out_ch, out_ch, 3, rng, init_scale=0.0)
        # The official code's `nin_shortcut`: a dense layer over channels, i.e. a 1x1 convolution.
        self.nin_shortcut = Conv2d(in_ch, out_ch, 1, rng) if in_ch != out_ch else None

    def forward(self, x, temb_act):
        B = x.shape[0]
        h = self.conv1(self.norm1(x))
        h = h + self.temb_proj(temb_act).reshape(B, -1, 1, 1)
        h = self.conv2(self.dropout(self.norm2(h)))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class UNet(Module):
    def __init__(self, image_size=32, in_ch=3, ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2,
                 attn_resolutions=(16,), dropout=0.1, out_ch=None, seed=0):
        if image_size % 2 ** (len(ch_mult) - 1):
            raise ValueError(f"UNet: image_size {image_size} must be divisible by 2^{len(ch_mult) - 1} "
                             f"for {len(ch_mult)} resolutions")
        self.config = dict(image_size=image_size, in_ch=in_ch, ch=ch, ch_mult=tuple(ch_mult),
                           num_res_blocks=num_res_blocks, attn_resolutions=tuple(attn_resolutions),
                           dropout=dropout, out_ch=out_ch or in_ch, seed=seed)
        # One generator for initialisation and, afterwards, for dropout masks (see set_rng).
        rng = np.random.default_rng(seed)
        self.ch, temb_ch = ch, 4 * ch
        self.temb_dense0 = Linear(ch, temb_ch, rng)
        self.temb_dense1 = Linear(temb_ch, temb_ch, rng)
        self.conv_in = Conv2d(in_ch, ch, 3, rng)

        # Down: remember the channel count of every stored skip, to size the up path's inputs.
        self.down, skips, cur, res = [], [ch], ch, image_size
        for level, mult in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(cur, ch * mult, temb_ch, dropout, rng))
                cur = ch * mult
                if res in attn_resolutions:
                    self.down.append(AttentionBlock(cur, rng))
                skips.append(cur)
            if level != len(ch_mult) - 1:
                self.down.append(Downsample(cur, rng))
                res //= 2
                skips.append(cur)

        self.mid = [ResBlock(cur, cur, temb_ch, dropout, rng), AttentionBlock(cur, rng),
                    ResBlock(cur, cur, temb_ch, dropout, rng)]

        self.up = []
        for level, mult in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(cur + skips.pop(), ch * mult, temb_ch, dropout, rng))
                cur = ch * mult
                if res in attn_resolutions:
                    self.up.append(AttentionBlock(cur, rng))
            if level != 0:
                self.up.append(Upsample(cur, rng))
                res *= 2
        assert not skips

        self.norm_out = GroupNorm(cur, silu=True)
        self.conv_out = Conv2d(cur, self.config["out_ch"], 3, rng, init_scale=0.0)
        self.set_rng(rng)

    @classmethod
    def from_preset(cls, name, **overrides):
        if name not in PRESETS:
            raise ValueError(f"unknown U-Net preset {name!r}; choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def set_rng(self, rng):
        """Give every Dropout the run's generator, so a checkpoint of it makes resuming exact."""
        for m in self.modules():
            if isinstance(m, Dropout):
                m.rng = rng

    def forward(self, x, t):
        if x.ndim != 4 or x.shape[1] != self.config["in_ch"]:
            raise ValueError(f"UNet: x must be (B, {self.config['in_ch']}, H, W), got {x.shape}")
        if np.shape(t) != (x.shape[0],):
            raise ValueError(f"UNet: t must be an int array of shape ({x.shape[0]},), got {np.shape(t)}")
        # t is small host data (B,): embed it there and move the (B, ch) result to x's array library.
        emb = self.conv_in.weight.xp.asarray(timestep_embedding(t, self.ch).astype(self._dtype()))
        temb = self.temb_dense0(ag.Tensor(emb))
        temb_act = ag.silu(self.temb_dense1(ag.silu(temb)))  # every block applies swish(temb) first

        hs = [self.conv_in(x)]
        for block in self.down:
            if isinstance(block, AttentionBlock):
                hs[-1] = block(hs[-1])  # attention refines the skip just stored
            else:
                hs.append(block(hs[-1], temb_act) if isinstance(block, ResBlock) else block(hs[-1]))
        h = hs[-1]
        for block in self.mid:
            h = block(h, temb_act) if isinstance(block, ResBlock) else block(h)
        for block in self.up:
            if isinstance(block, ResBlock):
                h = block(ag.concat([h, hs.pop()], axis=1), temb_act)
            else:
                h = block(h)
        assert not hs
        return self.conv_out(self.norm_out(h))

    def _dtype(self):
        return self.conv_in.weight.dtype
