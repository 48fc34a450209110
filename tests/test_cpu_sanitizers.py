"""The CPU extension's tests under AddressSanitizer + UndefinedBehaviorSanitizer, and a planted out-of-bounds
read that proves this build catches one.

The sanitized pyddpm._cpu is a separate CMake build (-DPYDDPM_SANITIZE=ON, CMakeLists.txt) of the same
csrc/cpu/*.cpp plus tests/planted_cpu.cpp, into build/asan-cpu/pyddpm/; the normal pyddpm/_cpu*.so is left
alone. The child Python puts that folder first on ``pyddpm.__path__`` before anything imports pyddpm._cpu,
so the ordinary import in pyddpm/ops/backend.py finds the sanitized module: pyddpm itself knows nothing of
this build. The child runs the cpu parametrisations (-k cpu) of the kernel tests and the two end-to-end
runs on the cpu backend (the bound in bits/dim, a few training steps), with the runtime preloaded
(tests/sanitizers.py).

About a minute on 2 cores, most of it the build, so opt-in like the emulation's sanitizer runs:
    PYDDPM_EMU_SANITIZERS=1 python -m pytest -q tests/test_cpu_sanitizers.py
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sanitizers

ROOT = sanitizers.ROOT
BUILD = ROOT / "build" / "asan-cpu"
PLANTED = ROOT / "tests" / "planted_cpu.cpp"
TESTS = [*sorted(str(p) for p in (ROOT / "tests").glob("test_kernels_*.py")),
         str(ROOT / "tests" / "test_diffusion.py"), str(ROOT / "tests" / "test_train.py")]

pytestmark = [*sanitizers.OPT_IN, pytest.mark.skipif(shutil.which("cmake") is None, reason="no cmake")]

# Imports the sanitized pyddpm._cpu in place of the normal one, then runs {body}.
CHILD = """
import sys
import pyddpm
pyddpm.__path__.insert(0, {folder!r})
{body}
"""

RUN_TESTS = """
import pytest
code = pytest.main({args!r})
from pyddpm.ops import backend
print("the cpu backend ran", backend.extension("cpu").__file__)
sys.exit(code)
"""


def _run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"sanitizer build failed: {' '.join(cmd)}\n{done.stdout}{done.stderr}")


@pytest.fixture(scope="module")
def folder():
    """Builds (what changed of) the sanitized extension, here, not in the child: the compiler must not run
    with a sanitizer preloaded. Returns the folder holding it."""
    import pybind11

    out = BUILD / "pyddpm"
    _run(["cmake", "-S", str(ROOT), "-B", str(BUILD), "-DPYDDPM_SANITIZE=ON", f"-DPYDDPM_CPU_TEST_SOURCES={PLANTED}",
          f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out}", f"-DCMAKE_CXX_COMPILER={sanitizers.compiler()}",
          f"-DPython_EXECUTABLE={sys.executable}", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}"])
    _run(["cmake", "--build", str(BUILD), "-j", "2"])
    return str(out)


def run_child(folder, body):
    return sanitizers.run_python("asan", ["-c", CHILD.format(folder=folder, body=body)])


def test_cpu_tests_are_clean_under_address_and_ub_sanitizers(folder):
    rc, out = run_child(folder, RUN_TESTS.format(args=[*sanitizers.PYTEST_OPTIONS, "-k", "cpu", *TESTS]))
    sanitizers.assert_clean(rc, out)
    # They ran, on the sanitized module, and none skipped for want of an extension.
    ran = re.search(r"^the cpu backend ran (.+)$", out, re.MULTILINE)
    assert ran and Path(ran.group(1)).parent == Path(folder), out[-2000:]
    summary = re.search(r"^\d+ passed.*$", out, re.MULTILINE)
    assert summary and "skipped" not in summary.group(0), out[-2000:]


def test_address_sanitizer_catches_the_planted_out_of_bounds_read(folder):
    n = 300
    rc, out = run_child(folder, "import numpy as np\nfrom pyddpm import _cpu\n"
                                f"print(_cpu.planted_sum_one_past_the_end(np.ones({n}, np.float32)))")
    line = next(i for i, text in enumerate(PLANTED.read_text().splitlines(), 1) if "s += x[i]" in text)
    assert rc != 0 and "ERROR: AddressSanitizer: heap-buffer-overflow" in out, sanitizers.report(out)
    assert "READ of size 4" in out and f"planted_cpu.cpp:{line}" in out, sanitizers.report(out)
    assert f"0 bytes to the right of {4 * n}-byte region" in out, sanitizers.report(out)
