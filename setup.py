"""pip install . : the pure-Python package (NumPy path).

The fused C++/CUDA kernels (csrc/, built through CMakeLists.txt) are not part of the build yet; the
package runs entirely on its NumPy reference path until they are.
"""

from setuptools import find_packages, setup

setup(
    name="pyddpm",
    version="0.1.0",
    description="Denoising Diffusion Probabilistic Models (Ho et al. 2020) from scratch on NumPy",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["pyddpm", "pyddpm.*"]),
    install_requires=["numpy>=1.24", "scipy>=1.10", "pillow>=10.1", "tqdm>=4.60"],
    extras_require={"test": ["pytest>=7"]},
    license="MIT",
)
