"""Builds the test module _cuda_emu: the csrc/cuda kernels compiled by the host compiler against the CUDA
emulation in csrc/emu, plus the planted-bug kernels of tests/emu/planted.cu.

Three flavours, each in build/emu/<flavour>/ and rebuilt only when a source, a header or the flags change:
    plain  the emulated tests
    tsan   -fsanitize=thread (the emulation core, csrc/emu/emu.cpp, stays uninstrumented and declares the
           CUDA ordering to ThreadSanitizer itself); run with LD_PRELOAD=libtsan (tests/sanitizers.py)
    asan   -fsanitize=address,undefined, without guard bytes, so out-of-bounds reads are caught too

By hand:  python tests/emu/emu_build.py [plain|tsan|asan]   (prints the module's path)
"""

import hashlib
import importlib.util
import shlex
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/sanitizers.py, also when run by hand
from sanitizers import compiler  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "emu"
EMU = ROOT / "csrc" / "emu"
FLAVOURS = ("plain", "tsan", "asan")


def _flags(flavour):
    pybind = [f"-I{sysconfig.get_paths()['include']}"]
    import pybind11
    pybind.append(f"-I{pybind11.get_include()}")
    base = ["-std=c++17", "-fPIC", "-g", "-O1", "-ffp-contract=off", "-pthread", "-fvisibility=hidden", f"-I{EMU}", f"-I{ROOT / 'csrc'}",
            f"-I{HERE}"]
    san = {"plain": [], "tsan": ["-fsanitize=thread"],
           "asan": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]}
    kernel = base + ["-x", "c++", "-include", str(EMU / "cuda_emu.h"), "-fdata-sections", "-Wall", "-Wextra"]
    strict = ["-Wall", "-Wextra", "-Werror"]
    # The emulation core is left uninstrumented under ThreadSanitizer: its bookkeeping is ordered by a
    # mutex whose ordering it hides from ThreadSanitizer (emu.cpp).
    core = base + strict + (["-DPYDDPM_EMU_TSAN"] if flavour == "tsan" else san[flavour])
    return {"kernel": kernel + san[flavour], "core": core, "module": base + strict + pybind + san[flavour],
            "link": ["-shared", "-pthread", f"-Wl,-T,{EMU / 'shared.ld'}"] + san[flavour]}


def _sources():
    """(source, object name, flag set) of every translation unit."""
    units = [(p, f"{p.stem}.cu.o", "kernel") for p in sorted((ROOT / "csrc" / "cuda").glob("*.cu"))]
    units.append((HERE / "planted.cu", "planted.cu.o", "kernel"))  # *.cu.o: gathered by shared.ld
    units.append((EMU / "emu.cpp", "emu.o", "core"))
    units.append((HERE / "module.cpp", "module.o", "module"))
    return units


def _headers_digest():
    h = hashlib.sha256()
    for d in (ROOT / "csrc", HERE):
        for p in sorted(d.rglob("*")):
            if p.suffix in (".h", ".cuh", ".ld"):
                h.update(str(p).encode() + p.read_bytes())
    return h.hexdigest()


def _compile(cmd, stamp, digest):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"emulation build failed:\n{shlex.join(cmd)}\n{done.stdout}{done.stderr}")
    stamp.write_text(digest)
    return done.stderr  # warnings


def build(flavour="plain", jobs=2):
    """Compiles what changed; returns the path of the module and the compiler's warnings."""
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
    cxx = compiler()
    if cxx is None:
        raise FileNotFoundError("no C++ compiler (set CXX or install g++)")
    out = ROOT / "build" / "emu" / flavour
    out.mkdir(parents=True, exist_ok=True)
    flags = _flags(flavour)
    headers = _headers_digest()
    jobs_todo, objects = [], []
    for src, obj, kind in _sources():
        cmd = [cxx, *flags[kind], "-c", str(src), "-o", str(out / obj)]
        digest = hashlib.sha256((shlex.join(cmd) + headers).encode() + src.read_bytes()).hexdigest()
        stamp = out / (obj + ".stamp")
        objects.append(out / obj)
        if not (out / obj).exists() or not stamp.exists() or stamp.read_text() != digest:
            jobs_todo.append((cmd, stamp, digest))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        warnings = "".join(pool.map(lambda job: _compile(*job), jobs_todo))
    module = out / ("_cuda_emu" + sysconfig.get_config_var("EXT_SUFFIX"))
    link = [cxx, *map(str, objects), "-o", str(module), *flags["link"]]
    link_stamp = out / "link.stamp"
    link_digest = hashlib.sha256(shlex.join(link).encode() + b"".join(o.read_bytes() for o in objects)).hexdigest()
    if jobs_todo or not module.exists() or not link_stamp.exists() or link_stamp.read_text() != link_digest:
        _compile(link, link_stamp, link_digest)
    return module, warnings


def load(module):
    spec = importlib.util.spec_from_file_location("_cuda_emu", module)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


if __name__ == "__main__":
    path, warned = build(sys.argv[1] if len(sys.argv) > 1 else "plain")
    sys.stderr.write(warned)
    print(path)
