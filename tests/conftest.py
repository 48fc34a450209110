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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A run of the tiny preset on the built-in digits, trained for 2 steps (T = 20), for the command lines'
    tests. Read it, do not write into it: the session shares it."""
    from pyddpm.train import preset_config, train

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    train(preset_config("tiny", out=str(out), steps=2, ckpt_every=2, sample_every=0, n_samples=1),
          log=lambda *_: None)
    return out
