"""The kernel microbenchmarks' correctness checks, at small sizes: a fast but wrong implementation fails here
before any table could report it. Every script in benchmarks/kernels/ is run through the harness's check
(every impl against the case's reference; no timing), torch's impls included when torch is installed.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted((BENCHMARKS / "kernels").glob("*.py"))
sys.path.insert(0, str(BENCHMARKS))  # the scripts import the shared harness as a top-level module

import harness  # noqa: E402
from pyddpm.bench import load_script  # noqa: E402
from pyddpm.ops import allocator  # noqa: E402



def test_every_kernel_has_a_script():
    assert {s.stem for s in SCRIPTS} >= {"group_norm", "attention", "q_sample", "p_sample_step",
                                         "discretized_gaussian_log_likelihood", "normal_kl", "im2col"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.stem)
def test_every_impl_agrees_with_the_reference(script):
    cases = list(load_script(script).cases(small=True))  # all built before any runs: each keeps its own arrays
    assert cases
    for case in cases:
        assert case.reference in case.impls and len(case.impls) > 1 and case.bytes_moved > 0
        harness.check_case(case)


def test_torch_impls_are_checked():
    torch = pytest.importorskip("torch", reason="torch not installed: the torch impls go unchecked (optional)")
    assert harness.torch_or_none() is torch
    for script in SCRIPTS:
        assert all("torch" in case.impls for case in load_script(script).cases(small=True)), script.stem


def test_the_check_catches_a_wrong_impl():
    x = np.arange(6, dtype=np.float32)
    case = harness.Case("doubling", "test", {"numpy": lambda: 2 * x, "fast": lambda: 2 * x + 1e-3},
                        atol=1e-4, rtol=0.0, bytes_moved=8 * x.size)
    with pytest.raises(AssertionError, match=r"doubling \[fast\]: output 0 differs"):
        harness.check_case(case)
    harness.check_case(case, impls=["numpy"])  # the reference alone agrees with itself



SCRIPTS_THAT_TIME = [*SCRIPTS, BENCHMARKS / "adam_ema.py", BENCHMARKS / "machine.py",
                     *(BENCHMARKS / "e2e" / f"{name}.py" for name in ("bench", "memory", "profile_step"))]


@pytest.mark.parametrize("script", SCRIPTS_THAT_TIME, ids=lambda s: s.stem)
def test_thread_settings_are_applied_before_numpy_loads(script):
    """The benchmarks time pyddpm and PyTorch in turn in one process, so each sets OpenBLAS's threads to
    sleep between calls (benchmarks/waiting.py: OPENBLAS_THREAD_TIMEOUT) and tunes the
    process as the command lines do (pyddpm.tune_process()); importing pyddpm sets nothing. OpenBLAS reads
    OPENBLAS_THREAD_TIMEOUT once, when NumPy loads it: a script that imports NumPy before waiting.py leaves
    OpenBLAS's threads spinning into the next implementation's turn (it once made PyTorch's attention look
    twice as slow as it is). Each script is imported in a fresh process whose environment lacks the
    settings, the way a user runs it."""
    code = ("import importlib.util, sys\n"
            f"sys.path.insert(0, {str(BENCHMARKS)!r})\n"
            f"spec = importlib.util.spec_from_file_location('script_under_test', {str(script)!r})\n"
            "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
            "import waiting\n"
            "print(waiting.applied, waiting.TUNED['malloc_tuned'])\n")
    env = {k: v for k, v in os.environ.items() if k not in (*waiting_settings(), "PYDDPM_MALLOC")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    applied, tuned = out.stdout.strip().splitlines()[-1].split()
    assert applied == "True", f"{script.name} loads NumPy before benchmarks/waiting.py"
    assert tuned == str(allocator.AVAILABLE), f"{script.name}: malloc not tuned in the benchmark's process"


def waiting_settings():
    import waiting
    return tuple(waiting.SETTINGS)
