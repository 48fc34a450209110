"""OpenBLAS's idle threads sleep, not spin: imported first, before NumPy or PyTorch loads.

The benchmarks time pyddpm (numpy and cpu backends) and PyTorch in turn in one process. OpenBLAS's worker
threads spin for about 2^28 cycles (~0.1 s) after every BLAS call before sleeping: interleaved in one
process, that spin takes one of the two cores from whichever implementation runs next (on config A's
training step PyTorch once took 165 ms right after a pyddpm numpy-backend step, 102 ms alone). So a
benchmark process sets OPENBLAS_THREAD_TIMEOUT itself, as a command line may (pyddpm does not: importing it
changes nothing, and its cpu backend holds NumPy's BLAS at one thread at run time instead, which is what a
user's process gets; see pyddpm/ops/backend.py). OpenMP's waiters keep their default (a short spin, then
sleep), as every user's process has them: OMP_WAIT_POLICY=PASSIVE slows PyTorch's training step far more
than pyddpm's (benchmarks/RESULTS.md, "Latest"). OpenBLAS reads the variable once, when it loads, so this
module must be imported before numpy and torch: benchmarks/__init__.py imports it first, so importing any
module of the package does. ``applied`` says whether it was (False when NumPy was already loaded and the
variable was not already set). A value set in the environment is kept; ``ADDED`` names the variables this
module set, for a benchmark whose child processes must start from the user's environment
(import_order.py). Then it calls pyddpm.tune_process(), as the command lines do.
"""

import os
import sys

SETTINGS = {"OPENBLAS_THREAD_TIMEOUT": "4"}  # 4: spin 2^4 cycles

_numpy_loaded, _set_before = "numpy" in sys.modules, set(os.environ)
for _name, _value in SETTINGS.items():
    os.environ.setdefault(_name, _value)

ADDED = frozenset(SETTINGS) - _set_before
applied = not _numpy_loaded or not ADDED

import pyddpm  # noqa: E402  (after the variables: it loads NumPy)

TUNED = pyddpm.tune_process()  # malloc's thresholds, as the command lines have them (kernels timed alone
#                                with backend= never start a run's backend, which would set them)


def describe():
    """The settings in force, as "NAME=value" pairs (what the library read if ``applied``)."""
    return " ".join(f"{k}={os.environ[k]}" for k in SETTINGS) + ("" if applied else " (set after NumPy loaded)")
