"""Thread pools that sleep, not spin, while they wait: imported first, before NumPy or PyTorch loads.

The benchmarks time pyddpm (numpy and cpu backends) and PyTorch in turn in one process. OpenBLAS's worker
threads spin for about 2^28 cycles (~0.1 s) after every BLAS call before sleeping; OpenMP's spin unless
OMP_WAIT_POLICY is PASSIVE. Interleaved in one process, a spinning pool takes one of the two cores from
whichever implementation runs next: measured on config A's training step, PyTorch took 165 ms right after
a pyddpm step and 102 ms alone. So a benchmark process sets both variables itself, as a command line may
(pyddpm does not: importing it changes nothing, and its cpu backend holds NumPy's BLAS at one thread at
run time instead, which is what a user's process gets; see pyddpm/ops/backend.py). Both libraries read
them once, when they load, so this module must be imported before numpy and torch; ``applied`` says
whether it was (False when NumPy was already loaded and the variables were not already set). A value
set in the environment is kept. Then it calls pyddpm.tune_process(), as the command lines do.
"""

import os
import sys

SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}  # 4: spin 2^4 cycles

_numpy_loaded, _set_before = "numpy" in sys.modules, set(os.environ)
for _name, _value in SETTINGS.items():
    os.environ.setdefault(_name, _value)

applied = not _numpy_loaded or set(SETTINGS) <= _set_before

import pyddpm  # noqa: E402  (after the variables: it loads NumPy)

TUNED = pyddpm.tune_process()  # malloc's thresholds, as the command lines have them (kernels timed alone
#                                with backend= never start a run's backend, which would set them)


def describe():
    """The settings in force, as "NAME=value" pairs (what the library read if ``applied``)."""
    return " ".join(f"{k}={os.environ[k]}" for k in SETTINGS) + ("" if applied else " (set after NumPy loaded)")
