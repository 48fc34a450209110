"""Thread pools that sleep, not spin, while they wait: imported first, before NumPy or PyTorch loads.

OpenBLAS's worker threads spin for about 2^28 cycles (~0.1 s) after every BLAS call before sleeping;
OpenMP's spin unless OMP_WAIT_POLICY is PASSIVE. Interleaved in one process, a spinning pool takes one
of the two cores from whichever implementation runs next: measured on config A's training step, PyTorch
took 165 ms right after a pyddpm step and 102 ms alone, while pyddpm itself ran 5-10% faster with
sleeping OpenBLAS threads (201-205 ms against 214-227 ms alone). Both libraries read these variables
once, when they load, so this module must be imported before numpy and torch; ``applied`` says whether it
was (False when NumPy was already loaded and the variables were not already set).
"""

import os
import sys

_numpy_loaded, _set_before = "numpy" in sys.modules, set(os.environ)

import pyddpm  # noqa: E402  (sets them, where the user did not, and imports nothing that reads them)

SETTINGS = pyddpm.THREAD_SETTINGS
applied = not _numpy_loaded or set(SETTINGS) <= _set_before


def describe():
    """The settings in force, as "NAME=value" pairs (what the library read if ``applied``)."""
    return " ".join(f"{k}={os.environ[k]}" for k in SETTINGS) + ("" if applied else " (set after NumPy loaded)")
