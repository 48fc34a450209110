"""Every __global__ kernel in csrc/cuda/*.cu has an emulated test: a test in tests/emu decorated with
@covers("<kernel>") (the conftest checks that such a test really launches it)."""

import ast
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
CUDA = HERE.parents[1] / "csrc" / "cuda"


def global_kernels():
    found = {}
    for source in sorted(CUDA.glob("*.cu")):
        text = re.sub(r"//[^\n]*|/\*.*?\*/", "", source.read_text(), flags=re.S)
        for name in re.findall(r"__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+(\w+)", text):
            found[name] = source.name
    return found


def covered_kernels():
    covered = set()
    for test in HERE.glob("test_*.py"):
        for node in ast.walk(ast.parse(test.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "covers":
                covered |= {arg.value for arg in node.args if isinstance(arg, ast.Constant)}
    return covered


def test_kernels_are_found():
    assert "group_norm_forward_kernel" in global_kernels()


def test_every_cuda_kernel_has_an_emulated_test():
    missing = {k: f for k, f in global_kernels().items() if k not in covered_kernels()}
    assert not missing, f"__global__ kernels without an emulated test (@covers in tests/emu): {missing}"
