"""pyddpm: Denoising Diffusion Probabilistic Models (Ho, Jain, Abbeel 2020) from scratch.

Layers, each importing only from those below it (see DESIGN.md):
cli -> train -> diffusion -> models -> nn -> autograd -> ops -> backends.
"""

__version__ = "0.1.0"
