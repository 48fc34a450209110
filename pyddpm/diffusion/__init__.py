"""The diffusion layer: schedules, the forward and reverse processes, losses and the bound (bits/dim).

Pure functions of arrays; it knows nothing of the U-Net. Time indices are 0..T-1, index i = paper's t = i + 1.
"""

from pyddpm.diffusion.gaussian_diffusion import GaussianDiffusion
from pyddpm.diffusion.schedules import make_beta_schedule

__all__ = ["GaussianDiffusion", "make_beta_schedule"]
