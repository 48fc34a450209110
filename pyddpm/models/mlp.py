"""A small time-conditioned MLP eps-model for points in the plane: the 2-D toy's network (pyddpm.toy).

The U-Net's idea without the convolutions: the sinusoidal embedding of the chain index t (the U-Net's,
pyddpm.nn.blocks.timestep_embedding), projected and added before every hidden activation, so each layer
knows the noise level it denoises at:

    e   = timestep_embedding(t, emb_dim)                         (B, emb_dim)
    h_1 = silu(x W_in + e E_1)                                    (B, hidden)
    h_k = silu(h_{k-1} W_k + e E_k),   k = 2..depth                (B, hidden)
    out = h_depth W_out                                          (B, dim), ~0 at initialisation

It predicts eps (Ho et al. 2020, Eq. 11 and 14); its score is -out / sqrt(1 - abar_t)
(pyddpm.diffusion.score). The output layer starts near zero, as the U-Net's conv_out does, so training
begins from eps_theta = 0, the minimiser for pure noise.

W_in is drawn ``input_scale`` times wider than the variance-scaling init of the other layers. An MLP on a
low-dimensional input learns the low frequencies of its target first and the high ones very slowly
(spectral bias: Rahaman et al. 2019; Tancik et al. 2020, who lift the input to random Fourier features for
it). With the default init the first SiLUs bend on a length scale of ~1, the size of the whole plane, while
a toy's components are a few hundredths wide; a wider W_in bends them at that scale from the start and
keeps W_in trainable (benchmarks/RESULTS.md, "The 2-D toy", compares the scales).

Shapes: x (B, dim) float32 (or float64 after .astype); t int (B,) array indices 0..T-1; output (B, dim).
"""

import numpy as np

from pyddpm import autograd as ag
from pyddpm.nn.blocks import timestep_embedding
from pyddpm.nn.layers import Linear
from pyddpm.nn.module import Module


class MLP(Module):
    def __init__(self, dim=2, hidden=128, depth=3, emb_dim=64, input_scale=40.0, seed=0):
        if depth < 1:
            raise ValueError(f"MLP: depth must be >= 1, got {depth}")
        self.config = dict(dim=dim, hidden=hidden, depth=depth, emb_dim=emb_dim, input_scale=input_scale, seed=seed)
        rng = np.random.default_rng(seed)
        self.emb_dim = emb_dim
        # init_scale is a variance factor: the square widens the weights' range input_scale times.
        self.layers = [Linear(dim, hidden, rng, init_scale=input_scale ** 2)]
        self.layers += [Linear(hidden, hidden, rng) for _ in range(depth - 1)]
        self.temb = [Linear(emb_dim, hidden, rng) for _ in range(depth)]
        self.out = Linear(hidden, dim, rng, init_scale=0.0)

    def forward(self, x, t):
        dim = self.config["dim"]
        if x.ndim != 2 or x.shape[1] != dim:
            raise ValueError(f"MLP: x must be (B, {dim}), got {x.shape}")
        if np.shape(t) != (x.shape[0],):
            raise ValueError(f"MLP: t must be an int array of shape ({x.shape[0]},), got {np.shape(t)}")
        weight = self.out.weight
        emb = ag.Tensor(weight.xp.asarray(timestep_embedding(t, self.emb_dim).astype(weight.dtype)))
        h = x
        for layer, temb in zip(self.layers, self.temb):
            h = ag.silu(layer(h) + temb(emb))
        return self.out(h)
