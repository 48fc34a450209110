"""The emulated kernel tests under ThreadSanitizer and under AddressSanitizer + UndefinedBehaviorSanitizer,
each in a subprocess with the sanitizer runtime preloaded into Python (tests/emu/emu_build.py), and the
planted bugs that only a sanitizer pinpoints: the missing-__syncthreads race (even where the emulated
schedule happens to give the right number) and an out-of-bounds read.

About 2 minutes on 2 cores (two more builds, and the runs are 3-5 times slower), so opt-in:
    PYDDPM_EMU_SANITIZERS=1 python -m pytest -q tests/emu/test_emu_sanitizers.py
"""

from pathlib import Path

import pytest

import emu_build
import sanitizers
from emulation import FLAVOUR

HERE = Path(__file__).resolve().parent

pytestmark = [pytest.mark.skipif(FLAVOUR != "plain", reason="runs the sanitizer flavours itself"), *sanitizers.OPT_IN]

# One launch of a planted kernel, in a fresh interpreter.
PLANTED = """
import sys
import numpy as np
sys.path.insert(0, {here!r})
import emu_build
emu = emu_build.load(emu_build.build({flavour!r})[0])
x = np.random.default_rng(0).standard_normal((2, 300)).astype(np.float32)
{call}
print("finished without a report")
"""


def run(flavour, args):
    emu_build.build(flavour)  # here, not in the child: the compiler must not run with a sanitizer preloaded
    return sanitizers.run_python(flavour, args, PYDDPM_EMU_FLAVOUR=flavour)


def run_tests(flavour):
    # One thread order is enough: the sanitizers see unordered accesses whichever order runs.
    sanitizers.assert_clean(*run(flavour, ["-m", "pytest", *sanitizers.PYTEST_OPTIONS, str(HERE), "-k", "not highest",
                                           f"--ignore={HERE / 'test_emu_sanitizers.py'}"]))


def run_planted(flavour, call):
    return run(flavour, ["-c", PLANTED.format(here=str(HERE), flavour=flavour, call=call)])


def test_emulated_tests_are_clean_under_thread_sanitizer():
    run_tests("tsan")


def test_emulated_tests_are_clean_under_address_and_ub_sanitizers():
    run_tests("asan")


def test_thread_sanitizer_pinpoints_the_missing_syncthreads():
    """Variant 2: no barrier after block_sum reads its scratch, so the next reduction's write (line 17)
    races with this one's read (line 19), between two named emulated threads."""
    rc, out = run_planted("tsan", "emu.planted_two_sums_cuda(x, np.zeros((2, 2), np.float32), 2, 300, 2, None)")
    assert rc != 0 and "WARNING: ThreadSanitizer: data race" in out, out[-4000:]
    assert "planted.cu:17" in out and "planted.cu:19" in out, out[-4000:]
    assert "'block (0,0,0) thread (" in out, out[-4000:]


def test_thread_sanitizer_is_quiet_on_the_correct_reduction():
    rc, out = run_planted("tsan", "emu.planted_two_sums_cuda(x, np.zeros((2, 2), np.float32), 2, 300, 0, None)")
    assert rc == 0 and "finished without a report" in out and "ThreadSanitizer" not in out, out[-4000:]


def test_address_sanitizer_catches_an_out_of_bounds_read():
    """Variant 2 reads x[i + 1]: x[n] at the end, one past the input (guard bytes cannot see reads)."""
    rc, out = run_planted("asan", "emu.planted_off_by_one_cuda(x[0].copy(), np.zeros(300, np.float32), 300, 2, None)")
    assert rc != 0 and "heap-buffer-overflow" in out and "READ of size 4" in out, out[-4000:]
    assert "planted.cu:" in out, out[-4000:]
    assert "the faulting access was made by off_by_one_kernel" in out, out[-4000:]


def test_address_sanitizer_catches_an_out_of_bounds_write():
    rc, out = run_planted("asan", "emu.planted_off_by_one_cuda(x[0].copy(), np.zeros(300, np.float32), 300, 1, None)")
    assert rc != 0 and "heap-buffer-overflow" in out and "WRITE of size 4" in out, out[-4000:]


def test_sanitizers_catch_a_static_shared_memory_overflow():
    """UBSan's bounds check reports tile[32] of a float[32] (ASan's global redzone would be next)."""
    rc, out = run_planted("asan", "emu.planted_static_shared_overflow_cuda(np.zeros(32, np.float32), None)")
    assert rc != 0 and "static_shared_overflow_kernel" in out, out[-4000:]
    assert "index 32 out of bounds for type 'float [32]'" in out or "global-buffer-overflow" in out, out[-4000:]
