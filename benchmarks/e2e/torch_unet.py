"""The PyTorch reference: the DDPM U-Net (Ho et al. 2020, App. B) built to pyddpm's exact architecture.

Block for block the same as pyddpm/models/unet.py and pyddpm/nn/blocks.py, with the same attribute names,
so that every parameter has the same name ("down.0.conv1.weight", ...) and ``copy_from_pyddpm`` can copy
the weights across one by one. What PyTorch stores differently: a dense layer's weight is (out, in) here
and (in, out) in pyddpm. Attention uses F.scaled_dot_product_attention (PyTorch's fused CPU kernel), the
way one would write this model in PyTorch; its default scale d ** -0.5 is the official one.

Shapes: x (B, in_ch, H, W) float32; t int64 (B,) indices 0..T-1; output (B, out_ch, H, W).
PyTorch is a benchmark-only dependency: nothing in pyddpm imports this file.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

GROUP_NORM_EPS = 1e-6  # tf.contrib.layers.group_norm's epsilon, as pyddpm.ops.group_norm.EPS


def group_norm(channels):
    return nn.GroupNorm(min(32, channels), channels, eps=GROUP_NORM_EPS)


def timestep_embedding(t, dim):
    """Sinusoidal embedding of the index t (B,): [sin(t f_j), cos(t f_j)], f_j = 10000^(-j / (dim/2 - 1))."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) / (half - 1) * torch.arange(half, dtype=torch.float32))
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    return F.pad(torch.cat([torch.sin(args), torch.cos(args)], dim=1), (0, dim % 2))


class ResBlock(nn.Module):
    """h = conv2(dropout(swish(norm2(conv1(swish(norm1(x))) + temb_proj(temb_act))))); shortcut(x) + h."""

    def __init__(self, in_ch, out_ch, temb_ch, dropout):
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.temb_proj = nn.Linear(temb_ch, out_ch)
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x, temb_act):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(temb_act)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttentionBlock(nn.Module):
    """x + proj_out(attention(q, k, v)), q k v from one 1x1 conv of norm(x) with 3C outputs (q, k, v order)."""

    def __init__(self, channels):
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).transpose(2, 3).unbind(1)  # (B, N, C) each
        h = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]  # one head, scale C^-0.5
        return x + self.proj_out(h.transpose(1, 2).reshape(B, C, H, W))


class Downsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TorchUNet(nn.Module):
    """The same constructor arguments as pyddpm.models.UNet (its ``config`` dict fits)."""

    def __init__(self, image_size=32, in_ch=3, ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2,
                 attn_resolutions=(16,), dropout=0.1, out_ch=None, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.ch, temb_ch = ch, 4 * ch
        self.temb_dense0 = nn.Linear(ch, temb_ch)
        self.temb_dense1 = nn.Linear(temb_ch, temb_ch)
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)

        self.down, skips, cur, res = nn.ModuleList(), [ch], ch, image_size
        for level, mult in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(cur, ch * mult, temb_ch, dropout))
                cur = ch * mult
                if res in attn_resolutions:
                    self.down.append(AttentionBlock(cur))
                skips.append(cur)
            if level != len(ch_mult) - 1:
                self.down.append(Downsample(cur))
                res //= 2
                skips.append(cur)

        self.mid = nn.ModuleList([ResBlock(cur, cur, temb_ch, dropout), AttentionBlock(cur),
                                  ResBlock(cur, cur, temb_ch, dropout)])

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(cur + skips.pop(), ch * mult, temb_ch, dropout))
                cur = ch * mult
                if res in attn_resolutions:
                    self.up.append(AttentionBlock(cur))
            if level != 0:
                self.up.append(Upsample(cur))
                res *= 2
        assert not skips

        self.norm_out = group_norm(cur)
        self.conv_out = nn.Conv2d(cur, out_ch or in_ch, 3, padding=1)

    def forward(self, x, t):
        temb = self.temb_dense0(timestep_embedding(t, self.ch))
        temb_act = F.silu(self.temb_dense1(F.silu(temb)))

        hs = [self.conv_in(x)]
        for block in self.down:
            if isinstance(block, AttentionBlock):
                hs[-1] = block(hs[-1])
            else:
                hs.append(block(hs[-1], temb_act) if isinstance(block, ResBlock) else block(hs[-1]))
        h = hs[-1]
        for block in self.mid:
            h = block(h, temb_act) if isinstance(block, ResBlock) else block(h)
        for block in self.up:
            h = block(torch.cat([h, hs.pop()], dim=1), temb_act) if isinstance(block, ResBlock) else block(h)
        assert not hs
        return self.conv_out(F.silu(self.norm_out(h)))


def copy_from_pyddpm(torch_model, pyddpm_model):
    """Copy every parameter of a pyddpm U-Net into the TorchUNet of the same config, matched by name.

    Raises ValueError when the two models' parameter names or shapes differ (so a mismatch in the
    architecture cannot pass unnoticed). Returns ``torch_model``.
    """
    src = dict(pyddpm_model.named_parameters())
    dst = dict(torch_model.named_parameters())
    if set(src) != set(dst):
        raise ValueError(f"parameter names differ: only pyddpm {sorted(set(src) - set(dst))[:5]}, "
                         f"only torch {sorted(set(dst) - set(src))[:5]}")
    with torch.no_grad():
        for name, p in dst.items():
            value = src[name].data
            if isinstance(torch_model.get_submodule(name.rsplit(".", 1)[0]), nn.Linear) and value.ndim == 2:
                value = value.T  # pyddpm's dense weight is (in, out)
            if tuple(value.shape) != tuple(p.shape):
                raise ValueError(f"{name}: pyddpm shape {value.shape}, torch shape {tuple(p.shape)}")
            p.copy_(torch.from_numpy(value.copy()))
    return torch_model


def from_pyddpm(pyddpm_model):
    """A TorchUNet with the architecture and the weights of a pyddpm U-Net."""
    return copy_from_pyddpm(TorchUNet(**pyddpm_model.config), pyddpm_model)
