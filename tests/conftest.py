"""Every test starts on the NumPy reference backend, whatever an earlier test (or a training run) chose."""

import pytest

from pyddpm.ops import backend


@pytest.fixture(autouse=True)
def reference_backend():
    backend.set_backend("numpy")
    yield
    backend.set_backend("numpy")
