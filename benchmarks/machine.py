"""The machine the benchmarks run on: what it is, and two rates to hold kernels against (cached per process).

    python benchmarks/machine.py

copy_bandwidth: np.copyto of a 128 MiB float32 array into a preallocated one (larger than the private caches
of these machines), in GB/s counting the bytes read plus the bytes written (2 x 128 MiB per copy). One
NumPy thread: on these 2-core VMs two threads copying halves measured no faster.
matmul_rate: GFLOP/s of a float32 1024 x 1024 x 1024 np.matmul (2 n^3 flops), on NumPy's BLAS threads.
Both are medians of repeated runs; they drift with the machine's speed like everything else here.
"""

import functools
import os
import platform
import time

import numpy as np

COPY_BYTES = 128 * 2**20
MATMUL_N = 1024


def _median_seconds(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


@functools.cache
def copy_bandwidth():
    """GB/s of a large np.copyto, counting read + write bytes."""
    src = np.ones(COPY_BYTES // 4, np.float32)
    dst = np.zeros_like(src)  # touched now: page faults are not part of the copy
    return 2 * src.nbytes / _median_seconds(lambda: np.copyto(dst, src), repeats=15) / 1e9


@functools.cache
def matmul_rate():
    """GFLOP/s of a float32 1024^3 np.matmul."""
    a = np.random.default_rng(0).standard_normal((MATMUL_N, MATMUL_N)).astype(np.float32)
    return 2 * MATMUL_N**3 / _median_seconds(lambda: a @ a, repeats=10) / 1e9


def threads():
    """The thread count every library gets: OMP_NUM_THREADS if set, else the cores this process may use."""
    return int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0)))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas():
    """NumPy's BLAS as its build configuration names it (numpy >= 1.25), e.g. 'scipy-openblas 0.3.27'."""
    try:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{config.get('name', '?')} {config.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode; the line says so rather than guessing
        return "unknown (numpy.show_config has no dict mode)"


def torch_version():
    try:
        import torch
    except ImportError:
        return "not installed"
    return f"{torch.__version__} ({torch.get_num_threads()} threads)"


def describe():
    """One line naming the machine and libraries, then one with the two measured rates."""
    return (f"machine: {cpu_model()}, {os.cpu_count()} cores, {threads()} threads; numpy {np.__version__} "
            f"(BLAS {blas()}); torch {torch_version()}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '-')}\n"
            f"measured: copy {copy_bandwidth():.1f} GB/s (np.copyto of 128 MiB, read + write bytes), "
            f"matmul {matmul_rate():.0f} GFLOP/s (float32 1024^3 np.matmul)")


if __name__ == "__main__":
    print(describe())
