"""The CUDA kernels compile with nvcc for sm_80 and sm_90 with warnings as errors, and no kernel spills.

Every csrc/cuda/*.cu is compiled on its own (no GPU needed); ptxas -v's report of registers and spills is
kept in build/ptxas-report.txt as the artifact this test reads. Skips, saying so, where nvcc is absent.
"""

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CUDA_DIR = ROOT / "csrc" / "cuda"
REPORT = ROOT / "build" / "ptxas-report.txt"
ARCHS = ("80", "90")

pytestmark = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")


def compile_one(source):
    cmd = ["nvcc", "-std=c++17", f"-I{ROOT / 'csrc'}", "-Xptxas", "-v", "--Werror", "all-warnings",
           "-c", str(source), "-o", "/dev/null"]
    for arch in ARCHS:
        cmd += ["-gencode", f"arch=compute_{arch},code=sm_{arch}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    return source.name, done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def reports():
    sources = sorted(CUDA_DIR.glob("*.cu"))
    assert sources, "no CUDA sources found"
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(compile_one, sources))
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("".join(f"===== {name} (exit {rc})\n{out}\n" for name, rc, out in results))
    return results


def test_every_kernel_file_compiles_without_warnings(reports):
    failed = {name: out[-2000:] for name, rc, out in reports if rc != 0}
    assert not failed, f"nvcc failed (see {REPORT}): {failed}"


def test_no_kernel_spills_registers(reports):
    spills = []
    for name, _, out in reports:
        for line in out.splitlines():
            m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
            if m and (int(m.group(1)) or int(m.group(2))):
                spills.append(f"{name}: {line.strip()}")
    assert not spills, "\n".join(spills)


def test_every_global_kernel_is_in_the_report(reports):
    """ptxas reports each __global__ function it compiled, for each architecture."""
    text = "".join(out for _, _, out in reports)
    for source in CUDA_DIR.glob("*.cu"):
        for kernel in re.findall(r"__global__\s+void\s+(\w+)", source.read_text()):
            for arch in ARCHS:
                assert re.search(rf"Compiling entry function '\w*{kernel}\w*' for 'sm_{arch}'", text), \
                    f"{kernel} ({source.name}) not compiled for sm_{arch}"
