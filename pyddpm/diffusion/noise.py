"""Noise that belongs to a sample, not to a batch: the same seed gives the same images at any batch size.

PerSampleNoise stands in for the numpy Generator that the diffusion loops draw from (p_sample_loop,
calc_bpd_loop call ``rng.standard_normal(shape)`` with shape (B, ...)): row b of every draw comes from
generator numpy.random.default_rng([seed, first + b]), so sample i sees the same x_T and the same z at every
step of Alg. 2 whichever batch it is drawn in.
"""

import numpy as np


class PerSampleNoise:
    def __init__(self, seed, first, count):
        self.generators = [np.random.default_rng([seed, i]) for i in range(first, first + count)]

    def standard_normal(self, shape, dtype=np.float64):
        """(B, ...) standard normal values, row b from sample b's generator; B must be the sample count."""
        if shape[0] != len(self.generators):
            raise ValueError(f"PerSampleNoise: draws for {len(self.generators)} samples, asked for shape {shape}")
        return np.stack([g.standard_normal(tuple(shape[1:]), dtype=dtype) for g in self.generators])
