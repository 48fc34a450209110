"""The kernel layer: the only place that knows which array library (backend) runs the math.

Everything above this layer writes ``xp = array_module(x)`` and uses ``xp`` in place of numpy, so the
same code runs on NumPy arrays (CPU) and CuPy arrays (GPU) without naming either.

Importing it changes nothing in the process: what the backends tune (malloc's thresholds, NumPy's BLAS
threads while the cpu backend runs) they tune when the run's backend starts (pyddpm/ops/backend.py).
"""

import numpy as np


def array_module(*arrays):
    """Return the array library (numpy or cupy) that owns ``arrays``; numpy for plain Python values."""
    for a in arrays:
        mod = type(a).__module__
        if mod.startswith("cupy"):
            import cupy  # only imported when a CuPy array is actually passed in

            return cupy
    return np


def to_host(a):
    """``a`` as a NumPy array: a CuPy array is copied to the host (the one place arrays leave the GPU)."""
    return a.get() if type(a).__module__.startswith("cupy") else np.asarray(a)


# The kernels, callable as pyddpm.ops.<name>(..., backend="numpy" | "cpu" | "cuda"). Each lives in the
# module of its name (pyddpm/ops/<name>.py, beside its NumPy reference); the function bound here takes
# that name in the package. Imported last: the modules import array_module from here.
from pyddpm.ops.adam_ema import adam_ema  # noqa: E402
from pyddpm.ops.attention import attention, attention_backward  # noqa: E402
from pyddpm.ops.discretized_gaussian_log_likelihood import discretized_gaussian_log_likelihood  # noqa: E402
from pyddpm.ops.group_norm import group_norm, group_norm_backward  # noqa: E402
from pyddpm.ops.normal_kl import normal_kl  # noqa: E402
from pyddpm.ops.p_sample_step import p_sample_step  # noqa: E402
from pyddpm.ops.q_sample import q_sample  # noqa: E402

__all__ = ["array_module", "to_host", "group_norm", "group_norm_backward", "attention", "attention_backward", "q_sample",
           "p_sample_step", "discretized_gaussian_log_likelihood", "normal_kl",
           "adam_ema"]
