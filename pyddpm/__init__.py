"""pyddpm: Denoising Diffusion Probabilistic Models (Ho, Jain, Abbeel 2020) from scratch.

Layers, each importing only from those below it (docs/design.md, "Layers", with the order of reading):
cli -> train -> diffusion -> models -> nn -> autograd -> ops -> math -> base.

Importing pyddpm changes nothing in the process (no environment variables, no malloc settings). What a
run's speed needs, the run's backend does when it starts (pyddpm/ops/backend.py); ``tune_process`` does
the process-wide part at once, for a program that wants it settled before any work (the command lines).
"""

__version__ = "0.1.0"


def tune_process():
    """Settle the process-wide settings a pyddpm run uses, now; returns what is in force.

    glibc's malloc keeps freed memory for the next step (pyddpm/ops/allocator.py; PYDDPM_MALLOC=default:
    not). The thread pools are not touched here: while the cpu backend is the run's backend, NumPy's BLAS
    runs on one thread (pyddpm/ops/backend.py), whatever was imported first. Safe to call more than once.
    """
    from pyddpm.ops import allocator

    return {"malloc_tuned": allocator.tune_once()}
