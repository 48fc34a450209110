"""The kernel microbenchmarks' correctness checks, at small sizes: a fast but wrong implementation fails here
before any table could report it. Every module in benchmarks/kernels/ is run through the harness's check
(every impl against the case's reference; no timing), torch's impls included when torch is installed.
"""

import importlib
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import harness, waiting
from pyddpm.ops import allocator

ROOT = pathlib.Path(__file__).resolve().parents[1]  # the source checkout: python -m benchmarks... runs here
KERNELS = sorted(p.stem for p in (ROOT / "benchmarks" / "kernels").glob("*.py") if p.stem != "__init__")


def kernel_module(name):
    return importlib.import_module(f"benchmarks.kernels.{name}")


def test_every_kernel_has_a_module():
    assert set(KERNELS) >= {"group_norm", "attention", "q_sample", "sampler_step",
                            "discretized_gaussian_log_likelihood", "normal_kl", "im2col"}


@pytest.mark.parametrize("name", KERNELS)
def test_every_impl_agrees_with_the_reference(name):
    cases = list(kernel_module(name).cases(small=True))  # all built before any runs: each keeps its own arrays
    assert cases
    for case in cases:
        assert case.reference in case.impls and len(case.impls) > 1 and case.bytes_moved > 0
        harness.check_case(case)


def test_torch_impls_are_checked():
    torch = pytest.importorskip("torch", reason="torch not installed: the torch impls go unchecked (optional)")
    assert harness.torch_or_none() is torch
    for name in KERNELS:
        assert all("torch" in case.impls for case in kernel_module(name).cases(small=True)), name


def test_the_check_catches_a_wrong_impl():
    x = np.arange(6, dtype=np.float32)
    case = harness.Case("doubling", "test", {"numpy": lambda: 2 * x, "fast": lambda: 2 * x + 1e-3},
                        atol=1e-4, rtol=0.0, bytes_moved=8 * x.size)
    with pytest.raises(AssertionError, match=r"doubling \[fast\]: output 0 differs"):
        harness.check_case(case)
    harness.check_case(case, impls=["numpy"])  # the reference alone agrees with itself



MODULES_THAT_TIME = ["benchmarks.__main__", *(f"benchmarks.kernels.{name}" for name in KERNELS),
                     "benchmarks.adam_ema", "benchmarks.machine",
                     *(f"benchmarks.e2e.{name}" for name in ("bench", "floor", "memory", "profile_step"))]


def settings_after_importing(module, before=""):
    """(waiting.applied, str(waiting.TUNED["malloc_tuned"])) in a fresh process that runs ``before``, imports
    ``module`` as ``python -m`` does (the package first) and then benchmarks.waiting, from the repository root.
    Its environment lacks the settings, the way a user runs a benchmark."""
    code = (f"{before}\n"
            "import importlib\n"
            f"importlib.import_module({module!r})\n"
            "from benchmarks import waiting\n"  # imported here, after NumPy, if the module never imported it
            "print(waiting.applied, waiting.TUNED['malloc_tuned'])\n")
    env = {k: v for k, v in os.environ.items() if k not in (*waiting.SETTINGS, "PYDDPM_MALLOC")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    applied, tuned = out.stdout.strip().splitlines()[-1].split()
    return applied == "True", tuned


@pytest.mark.parametrize("module", MODULES_THAT_TIME)
def test_thread_settings_are_applied_before_numpy_loads(module):
    """The benchmarks time pyddpm and PyTorch in turn in one process, so each sets OpenBLAS's threads to
    sleep between calls (benchmarks/waiting.py: OPENBLAS_THREAD_TIMEOUT) and tunes the
    process as the command lines do (pyddpm.tune_process()); importing pyddpm sets nothing. OpenBLAS reads
    OPENBLAS_THREAD_TIMEOUT once, when NumPy loads it: a module whose imports load NumPy before
    waiting.py (benchmarks/__init__.py imports it first) leaves OpenBLAS's threads spinning into the next
    implementation's turn."""
    applied, tuned = settings_after_importing(module)
    assert applied, f"{module} loads NumPy before benchmarks/waiting.py"
    assert tuned == str(allocator.AVAILABLE), f"{module}: malloc not tuned in the benchmark's process"


def test_the_settings_check_sees_numpy_loaded_first():
    """The check above fails for a process that loads NumPy before the benchmarks package."""
    applied, _ = settings_after_importing("benchmarks.kernels.q_sample", before="import numpy")
    assert not applied
