"""The basic layers: Linear, Conv2d, GroupNorm (optionally fused with SiLU), Dropout.

Each holds its Parameters and calls one autograd op. ``rng`` is a numpy Generator for initialisation.
"""

import numpy as np

from pyddpm import autograd as ag
from pyddpm.nn.init import variance_scaling
from pyddpm.nn.module import Module, Parameter


class Linear(Module):
    """y = x @ weight + bias; x (B, in_features), weight (in_features, out_features)."""

    def __init__(self, in_features, out_features, rng, init_scale=1.0):
        self.weight = Parameter(variance_scaling((in_features, out_features), in_features, out_features,
                                                 init_scale, rng))
        self.bias = Parameter(np.zeros(out_features, np.float32))

    def forward(self, x):
        return ag.linear(x, self.weight, self.bias)


class Conv2d(Module):
    """k x k convolution; weight (out_ch, in_ch, k, k), bias (out_ch,). padding defaults to k // 2."""

    def __init__(self, in_ch, out_ch, k, rng, stride=1, padding=None, init_scale=1.0):
        self.stride, self.padding = stride, k // 2 if padding is None else padding
        self.weight = Parameter(variance_scaling((out_ch, in_ch, k, k), in_ch * k * k, out_ch * k * k,
                                                 init_scale, rng))
        self.bias = Parameter(np.zeros(out_ch, np.float32))

    def forward(self, x):
        return ag.conv2d(x, self.weight, self.bias, self.stride, self.padding)


class GroupNorm(Module):
    """GroupNorm over min(32, C) groups (the official code's 32), optionally followed by SiLU in one op."""

    def __init__(self, channels, silu=False, max_groups=32):
        self.num_groups = min(max_groups, channels)
        if channels % self.num_groups:
            raise ValueError(f"GroupNorm: {channels} channels do not split into {self.num_groups} groups")
        self.silu = silu
        self.weight = Parameter(np.ones(channels, np.float32))
        self.bias = Parameter(np.zeros(channels, np.float32))

    def forward(self, x):
        return ag.group_norm(x, self.weight, self.bias, self.num_groups, silu=self.silu)


class Dropout(Module):
    """Inverted dropout in training mode, identity in eval mode. ``rng`` is shared with the run (resumable)."""

    def __init__(self, rate, rng):
        self.rate, self.rng = rate, rng

    def forward(self, x):
        if not self.training or self.rate == 0.0:
            return x
        return ag.dropout(x, self.rate, self.rng)
