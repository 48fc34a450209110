"""The machine the benchmarks run on: what it is, and two rates to hold kernels against (cached per process).

    python -m benchmarks.machine

copy_bandwidth: np.copyto of a 128 MiB float32 array into a preallocated one (larger than the private caches
of these machines), in GB/s counting the bytes read plus the bytes written (2 x 128 MiB per copy), the
faster of one thread and of threads() Python threads each copying a slice (np.copyto releases the GIL):
the kernels run on all cores, so the yardstick does too (on a quiet 2-core VM: 15.5 vs 29 GB/s).
matmul_rate: GFLOP/s of a float32 1024 x 1024 x 1024 np.matmul (2 n^3 flops), on NumPy's BLAS threads.
Both are medians of repeated runs; they drift with the machine's speed like everything else here.
"""

import concurrent.futures
import functools
import os
import platform
import time

import numpy as np

from benchmarks import waiting

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
def _pool(n):
    return concurrent.futures.ThreadPoolExecutor(n)


def copier(src, dst, n_threads):
    """A zero-argument copy of src into dst, split over n_threads threads."""
    if n_threads == 1:
        return lambda: np.copyto(dst, src)
    parts = list(zip(np.array_split(dst, n_threads), np.array_split(src, n_threads)))
    return lambda: list(_pool(n_threads).map(lambda part: np.copyto(*part), parts))


def fastest_copy(nbytes):
    """A zero-argument copy moving nbytes in all (nbytes / 2 read, nbytes / 2 written) between preallocated
    arrays, by one thread or by threads() threads, whichever a short trial finds faster at this size (one
    wins on small in-cache copies, where waking threads costs more than it saves)."""
    src = np.ones(max(nbytes // 8, 1), np.float32)
    dst = np.zeros_like(src)  # touched now: page faults are not part of the copy
    return min((copier(src, dst, n) for n in sorted({1, threads()})), key=lambda f: _median_seconds(f, repeats=5))


@functools.cache
def copy_bandwidths():
    """{threads: GB/s} of a 128 MiB copy, counting read + write bytes."""
    src = np.ones(COPY_BYTES // 4, np.float32)
    dst = np.zeros_like(src)
    return {n: 2 * src.nbytes / _median_seconds(copier(src, dst, n), repeats=15) / 1e9 for n in sorted({1, threads()})}


def copy_bandwidth():
    """GB/s of the faster 128 MiB copy (one thread, or threads() threads), counting read + write bytes."""
    return max(copy_bandwidths().values())


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
            f"(BLAS {blas()}); torch {torch_version()}; {waiting.describe()}\n"
            f"measured: copy {copy_bandwidth():.1f} GB/s (np.copyto of 128 MiB, read + write bytes, the faster of "
            + ", ".join(f"{n} thread(s) {gbps:.1f}" for n, gbps in copy_bandwidths().items()) + "), "
            f"matmul {matmul_rate():.0f} GFLOP/s (float32 1024^3 np.matmul)")


if __name__ == "__main__":
    print(describe())
