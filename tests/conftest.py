"""Every test starts on the NumPy reference backend, whatever an earlier test (or a training run) chose.

A process's own default is "auto" (pyddpm/ops/backend.py: the fastest backend built, as on the command
lines); the tests choose numpy so that each one computes the same way whatever ran before it, and choosing
it also gives NumPy's BLAS back any threads the cpu backend held (tests/test_process_settings.py).
"""

import pytest

from pyddpm.ops import backend


@pytest.fixture(autouse=True)
def reference_backend():
    backend.set_backend("numpy")
    yield
    backend.set_backend("numpy")
