"""Helpers of the emulated-kernel tests (tests/emu): the coverage registry and poisoned outputs.

Every ``__global__`` kernel in csrc/cuda/*.cu needs a test decorated with ``@covers("<kernel name>")``;
test_emu_coverage.py fails for a kernel without one, and the conftest checks that each decorated test
really launched the kernels it names.
"""

import os
import re

import numpy as np
import pytest

# Which build of _cuda_emu this process tests: plain | tsan | asan (tests/emu/emu_build.py).
FLAVOUR = os.environ.get("PYDDPM_EMU_FLAVOUR", "plain")


def covers(*kernels):
    """Marks a test as the emulated test of these __global__ kernels (their names as in the source)."""
    return pytest.mark.covers(*kernels)


def kernel_name(launched):
    """The bare name of a kernel as PYDDPM_LAUNCH spelled it: no parentheses, namespace or template."""
    name = launched.strip().strip("()")
    name = re.sub(r"<.*>", "", name)
    return name.split("::")[-1].strip()


def nan_like(shape, dtype=np.float32):
    """An output buffer every element of which the kernel must write (NaN shows one it missed)."""
    return np.full(shape, np.nan, dtype)
