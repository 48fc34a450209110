"""pyddpm: Denoising Diffusion Probabilistic Models (Ho, Jain, Abbeel 2020) from scratch.

Layers, each importing only from those below it (see DESIGN.md):
cli -> train -> diffusion -> models -> nn -> autograd -> ops -> backends.
"""

import os

# Thread pools that sleep, not spin, while they wait. On 2 cores a spinning pool takes the other core
# from whatever runs next: OpenMP's (the _cpu kernels) unless OMP_WAIT_POLICY is PASSIVE, and OpenBLAS's
# (NumPy's matmul), which spins ~0.1 s after every call. Measured on the digits training step: 5-10%
# faster with both asleep (benchmarks/RESULTS.md). Each library reads its variable when it loads, so this
# must run before NumPy does (true for `python -m pyddpm...`); a value the user set is kept.
THREAD_SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}  # 4: spin 2^4 cycles
for _name, _value in THREAD_SETTINGS.items():
    os.environ.setdefault(_name, _value)

__version__ = "0.1.0"
