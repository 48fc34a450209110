"""Layers built from autograd ops: Module, Parameter, and the U-Net's blocks."""

from pyddpm.nn.blocks import AttentionBlock, Downsample, Upsample, timestep_embedding
from pyddpm.nn.layers import Conv2d, Dropout, GroupNorm, Linear
from pyddpm.nn.module import Module, Parameter

__all__ = ["Module", "Parameter", "Linear", "Conv2d", "GroupNorm", "Dropout", "AttentionBlock",
           "Downsample", "Upsample", "timestep_embedding"]
