"""The official DDPM initialisation: variance scaling, fan_avg, uniform (nn.default_init in diffusion_tf).

Weights are drawn from U(-limit, limit) with limit = sqrt(3 * scale / fan_avg), fan_avg = (fan_in +
fan_out) / 2, counting the receptive field for convolutions. The official code maps scale 0 to 1e-10,
so layers "initialised to zero" (each residual branch's last conv, the output conv) start tiny but not
exactly zero; we do the same. Biases start at zero.
"""

import numpy as np


def variance_scaling(shape, fan_in, fan_out, scale, rng, dtype=np.float32):
    scale = 1e-10 if scale == 0 else scale
    limit = np.sqrt(3.0 * scale / ((fan_in + fan_out) / 2.0))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)
