"""Running tests under a sanitizer: an uninstrumented Python with the sanitizer's runtime preloaded, importing
an instrumented build of one of our modules, in a subprocess.

Shared by the sanitizer runs of the emulated CUDA kernels (tests/emu/test_emu_sanitizers.py) and of the CPU
extension (tests/test_cpu_sanitizers.py). Each builds its instrumented module in the parent first: the
compiler must not run with a sanitizer preloaded. Opt-in (minutes on 2 cores): PYDDPM_EMU_SANITIZERS=1,
which CI sets (.ci/run).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def compiler():
    """The C++ compiler (CXX or g++), or None where there is none."""
    return shutil.which(os.environ.get("CXX", "g++"))


# The marks of every sanitizer test.
OPT_IN = [
    pytest.mark.skipif(not os.environ.get("PYDDPM_EMU_SANITIZERS"),
                       reason="sanitizer runs take minutes: set PYDDPM_EMU_SANITIZERS=1 (CI does)"),
    pytest.mark.skipif(compiler() is None, reason="no C++ compiler"),
]


def sanitizer_env(flavour, **extra):
    """Environment for a Python process that imports a module built with "tsan" (-fsanitize=thread) or
    "asan" (-fsanitize=address,undefined), plus the variables ``extra``."""
    # libstdc++ too, for AddressSanitizer: Python does not link it, and ASan's __cxa_throw interceptor
    # must find the real one when it starts.
    libs = ["libtsan.so"] if flavour == "tsan" else ["libasan.so", "libstdc++.so"]
    env = dict(os.environ, **extra)
    env["LD_PRELOAD"] = " ".join(os.path.realpath(subprocess.run([compiler(), f"-print-file-name={lib}"],
                                                                 capture_output=True, text=True).stdout.strip())
                                 for lib in libs)
    env["TSAN_OPTIONS"] = "halt_on_error=1 exitcode=66 second_deadlock_stack=1"
    # Python and NumPy are not instrumented and keep some memory to the end: leaks are not ours to judge.
    env["ASAN_OPTIONS"] = "detect_leaks=0 halt_on_error=1 exitcode=66"
    env["UBSAN_OPTIONS"] = "halt_on_error=1 print_stacktrace=1"
    return env


def run_python(flavour, args, **extra_env):
    """``python *args`` in the repository root under sanitizer ``flavour``: (exit code, all its output)."""
    done = subprocess.run([sys.executable, *args], env=sanitizer_env(flavour, **extra_env), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr


# For pytest in a sanitized child. --capture=sys: a sanitizer's report (fd 2) must reach us even when it
# ends the process.
PYTEST_OPTIONS = ["-q", "--capture=sys", "-p", "no:cacheprovider"]


def report(out):
    """What a reader needs of a child's output: its first sanitizer report from the top (what went wrong,
    where), else its end."""
    starts = [i for i in (out.find("runtime error:"), out.find("ERROR: AddressSanitizer"),
                          out.find("WARNING: ThreadSanitizer")) if i >= 0]
    return out[out.rfind("\n", 0, min(starts)) + 1:][:8000] if starts else out[-8000:]


def assert_clean(rc, out):
    """The child passed and printed no sanitizer report (not every report ends the process)."""
    assert rc == 0, report(out)
    assert "Sanitizer" not in out and "runtime error:" not in out, report(out)
