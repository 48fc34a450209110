"""pyddpm's benchmarks, run from the repository root as modules of this package:

    python -m benchmarks                                  # every kernel and config A's steps, one table
    python -m benchmarks.kernels.group_norm --small       # one kernel's full output
    python -m benchmarks.e2e.bench --config A --what train

pyddpm does not import this package (and does not install it): it is run from a source checkout.
"""

# First, before anything here loads NumPy or PyTorch: the thread settings OpenBLAS reads once, when it
# loads (waiting.py). Every `python -m benchmarks...` imports this package before running its module.
from benchmarks import waiting  # noqa: F401
