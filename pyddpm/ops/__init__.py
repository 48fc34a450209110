"""The kernel layer: the only place that knows which array library (backend) runs the math.

Each kernel is a module of its name here (pyddpm/ops/<name>.py): its argument check, its NumPy reference,
its glue to the extensions and its row of the kernel table (registry.py), through which every call goes.
Kernel modules import only the leaves (pyddpm.arrays, pyddpm.likelihood, checks, backend, cuda_args,
registry), never each other, except that the whole Winograd convolution (winograd_conv.py) is built from
the transforms (winograd.py) and batched_matmul (docs/design.md, "Layers"; tests/test_import_graph.py).

Importing it changes nothing in the process: what the backends tune (malloc's thresholds, NumPy's BLAS
threads while the cpu backend runs) they tune when the run's backend starts (pyddpm/ops/backend.py).
"""

from pyddpm.arrays import array_module, to_host

# The kernels, callable as pyddpm.ops.<name>(..., backend="numpy" | "cpu" | "cuda"). Each lives in the
# module of its name (pyddpm/ops/<name>.py, beside its NumPy reference); the function bound here takes
# that name in the package. array_module and to_host (pyddpm.arrays) are here for the layers above.
from pyddpm.ops.adam_ema import adam_ema
from pyddpm.ops.attention import attention, attention_backward
from pyddpm.ops.discretized_gaussian_log_likelihood import discretized_gaussian_log_likelihood
from pyddpm.ops.group_norm import group_norm, group_norm_backward
from pyddpm.ops.normal_kl import normal_kl
from pyddpm.ops.q_sample import q_sample
from pyddpm.ops.sampler_step import StepCoefs, sampler_step

__all__ = ["array_module", "to_host", "group_norm", "group_norm_backward", "attention", "attention_backward",
           "q_sample", "sampler_step", "StepCoefs", "discretized_gaussian_log_likelihood", "normal_kl", "adam_ema"]
