"""Fixtures of the emulated-kernel tests: the _cuda_emu module, built once per session (tests/emu/emu_build.py),
and the thread order each test runs under.

PYDDPM_EMU_FLAVOUR=plain|tsan|asan picks the build (the sanitizer flavours are run by
test_emu_sanitizers.py in a subprocess, with the sanitizer runtime preloaded).
"""

import warnings

import pytest

import emu_build
from emulation import FLAVOUR, kernel_name


@pytest.fixture(scope="session")
def emu():
    if emu_build.compiler() is None:
        pytest.skip("no C++ compiler (g++ or $CXX): the CUDA emulation cannot be built")
    path, warned = emu_build.build(FLAVOUR)
    if warned.strip():  # the kernels under g++ -Wall -Wextra: shown, not fatal (nvcc is the judge)
        warnings.warn("g++ warnings in the emulation build of csrc/cuda:\n" + warned)
    return emu_build.load(path)


@pytest.fixture(params=["lowest", "highest"])
def order(request, emu):
    """Which runnable thread of a block runs first: the lowest-numbered lets the first warps run ahead,
    the highest the last; each exposes missing barriers the other hides."""
    emu.set_order(request.param)
    yield request.param
    emu.set_order("lowest")


@pytest.fixture(autouse=True)
def launched_as_claimed(request):
    """A test marked @covers(...) must launch every kernel it names."""
    marker = request.node.get_closest_marker("covers")
    if marker is None:
        yield
        return
    emu = request.getfixturevalue("emu")
    emu.clear_launched_kernels()
    yield
    ran = {kernel_name(k) for k in emu.launched_kernels()}
    missing = set(marker.args) - ran
    assert not missing, f"test claims to cover {sorted(missing)} but did not launch it (launched: {sorted(ran)})"


def pytest_configure(config):
    config.addinivalue_line("markers", "covers(*kernels): the emulated test of these csrc/cuda kernels")
