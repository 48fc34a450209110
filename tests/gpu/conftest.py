"""The GPU suite: the real pyddpm._cuda kernels and the CuPy training path, on a machine with a GPU.

Run it there with
    PYDDPM_CUDA=1 pip install -e ".[test]"   (needs nvcc, and the CuPy wheel of the CUDA version:
                                             cupy-cuda12x or cupy-cuda13x)
    python -m pytest -q tests/gpu tests -k "gpu or cuda"
The second path also runs the kernel oracle tests of tests/test_kernels_*.py, whose "cuda" cases are the
awkward-shape checks; this folder adds the U-Net-sized kernels and train / sample / evaluate end to end.
Everywhere else (every machine of this project) each test here skips, saying why.
"""

import pytest

from pyddpm.ops import backend as backends

NO_GPU = "no GPU visible to CuPy, or pyddpm._cuda not built (PYDDPM_CUDA=1 pip install -e .)"


def pytest_collection_modifyitems(items):
    if backends.available("cuda"):
        return
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.skip(reason=NO_GPU))
