"""pip install . : the package, plus the C++ extension pyddpm._cpu built through CMakeLists.txt.

The extension is optional: with no C++ compiler the build prints why it was skipped and the package runs
on its NumPy path. PYDDPM_CUDA=1 also builds pyddpm._cuda (needs nvcc; running it needs CuPy and a GPU).
"""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent.resolve()


class CMakeBuild(build_ext):
    """Build both extensions with one CMake run into the folder setuptools expects for pyddpm._cpu."""

    def build_extension(self, ext):
        import pybind11

        out_dir = Path(self.get_ext_fullpath(ext.name)).parent.resolve()
        build_dir = Path(self.build_temp).resolve() / "cmake"
        cuda = os.environ.get("PYDDPM_CUDA", "0") not in ("", "0")
        configure = ["cmake", "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                     f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}", f"-DPython_EXECUTABLE={sys.executable}",
                     f"-Dpybind11_DIR={pybind11.get_cmake_dir()}", f"-DPYDDPM_CUDA={'ON' if cuda else 'OFF'}"]
        try:
            subprocess.run(configure, check=True)
            subprocess.run(["cmake", "--build", str(build_dir), "-j", str(os.cpu_count() or 2)], check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            if cuda:
                raise  # asked for explicitly: a failure must not pass silently
            self.warn(f"pyddpm: the C++ extension was not built ({e}); pyddpm will run on NumPy only")


setup(
    name="pyddpm",
    version="0.1.0",
    description="Denoising Diffusion Probabilistic Models (Ho et al. 2020) from scratch on NumPy, with fused kernels",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["pyddpm", "pyddpm.*"]),
    ext_modules=[Extension("pyddpm._cpu", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    # threadpoolctl: the cpu backend holds NumPy's BLAS at one thread while it runs (pyddpm/ops/backend.py).
    install_requires=["numpy>=1.24", "scipy>=1.10", "pillow>=10.1", "tqdm>=4.60", "threadpoolctl>=3.1"],
    # The tests build the CUDA emulation module against pybind11 themselves (tests/emu/emu_build.py).
    # report: pyddpm.report draws with matplotlib; test: CI runs the report tests too.
    extras_require={"test": ["pytest>=7", "pybind11>=2.10", "matplotlib>=3.5"], "report": ["matplotlib>=3.5"]},
    license="MIT",
)
