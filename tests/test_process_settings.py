"""What pyddpm does to the process it runs in, and when (pyddpm/__init__.py, pyddpm/ops/backend.py,
pyddpm/ops/allocator.py): importing it changes nothing; the Python API starts from the command lines'
backend ("auto", said once); while the cpu backend is the run's backend NumPy's BLAS runs on one thread
(its idle threads otherwise spin on the cores the kernels need: benchmarks/import_order.py), whatever was
imported first; what it cannot change (another library's OpenMP pool) it says once.

Each check runs in a fresh process: these are per-process settings, and the test process has made its own.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from pyddpm.ops import allocator, backend

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV_SETTINGS = ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT", "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "PYDDPM_MALLOC")


def run(code, **env):
    """Run ``code`` in a fresh interpreter with none of the thread-pool settings in its environment;
    returns (the JSON its last stdout line holds, its stderr)."""
    clean = {k: v for k, v in os.environ.items() if k not in ENV_SETTINGS}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def needs_cpu():
    if not backend.available("cpu"):
        pytest.skip("pyddpm._cpu is not built (pip install -e .)")


def needs_cores():
    if backend.cores() < 2:
        pytest.skip("one core: every pool has one thread, nothing to limit")


BLAS_THREADS = """
def blas_threads():
    from threadpoolctl import threadpool_info
    return sorted({p["num_threads"] for p in threadpool_info()
                   if p["user_api"] == "blas" and p.get("threading_layer") != "openmp"})
"""


def test_importing_pyddpm_sets_no_environment_variable():
    """A library read its variable when it loaded; one set later by pyddpm's import made the speed depend on
    what the user imported first. Now nothing is set, on any import."""
    got, _ = run("import json, os\n"
                 "before = dict(os.environ)\n"
                 "import pyddpm, pyddpm.ops, pyddpm.train, pyddpm.sample, pyddpm.evaluate\n"
                 "after = dict(os.environ)\n"
                 "print(json.dumps({k: after.get(k) for k in set(before) ^ set(after) | "
                 "{k for k in before if before[k] != after.get(k)}}))")
    assert got == {}, f"importing pyddpm changed the environment: {got}"


MALLOC_FAULTS = """
TUNE = {tune}
import json, resource, sys
import pyddpm, pyddpm.ops, pyddpm.train
import numpy as np

def faults():  # minor page faults of four 64 MiB arrays, each freed before the next
    np.ones(16 * 2**20, np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4):
        a = np.ones(16 * 2**20, np.float32)  # above glibc's largest adaptive mmap threshold (32 MiB)
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

got = dict(after_import=faults())
if TUNE:
    got.update(settings=pyddpm.tune_process(), after_tune=faults())
else:  # the first kernel call starts the run's backend, which tunes it
    from pyddpm.ops import q_sample
    x = np.ones((2, 3), np.float32)
    q_sample(x, np.array([0, 9]), x, np.linspace(0.1, 0.9, 10), np.linspace(0.9, 0.1, 10))
    got.update(after_start=faults())
print(json.dumps(got))
"""
# glibc as it is: every 64 MiB array is a fresh mapping, faulted in page by page (~2,000 faults with NumPy's
# huge pages, 16,000 without); with the thresholds raised, the freed memory is reused (0 here).
UNTUNED = 200


@pytest.mark.skipif(not allocator.AVAILABLE, reason="not glibc: there is no malloc threshold to tune")
def test_importing_pyddpm_leaves_malloc_alone_until_the_runs_backend_starts():
    """No malloc setting on import; the Python API still gets the tuning the command lines have (the cpu
    backend's digits step is ~8% faster with it), made when the run's backend starts."""
    got, _ = run(MALLOC_FAULTS.format(tune=False))
    assert got["after_import"] > UNTUNED, f"malloc is tuned after importing pyddpm: {got}"
    assert got["after_start"] * 10 < got["after_import"], f"the first kernel call did not tune malloc: {got}"


@pytest.mark.skipif(not allocator.AVAILABLE, reason="not glibc: there is no malloc threshold to tune")
def test_tune_process_raises_the_malloc_thresholds_unless_told_not_to():
    got, _ = run(MALLOC_FAULTS.format(tune=True))
    assert got["settings"] == {"malloc_tuned": True}
    assert got["after_tune"] * 10 < got["after_import"], got
    off, _ = run(MALLOC_FAULTS.format(tune=True), PYDDPM_MALLOC="default")
    assert off["settings"] == {"malloc_tuned": False} and off["after_tune"] > UNTUNED, off


def test_the_python_api_starts_on_auto_and_says_it_once():
    """As `python -m pyddpm.sample` does: a script calling the kernels (or pyddpm.sample.sample) without
    set_backend computes on the fastest backend there is, not on the NumPy reference."""
    got, err = run("import json\n"
                   "import numpy as np\n"
                   "from pyddpm.ops import backend, q_sample\n"
                   "tables = np.linspace(0.1, 0.9, 10), np.linspace(0.9, 0.1, 10)\n"
                   "x = np.ones((2, 3), np.float32)\n"
                   "for _ in range(3):\n"
                   "    q_sample(x, np.array([0, 9]), x, *tables)\n"
                   "print(json.dumps(dict(backend=backend.get_backend(), lib=backend.array_library().__name__)))")
    expected = next(b for b in ("cuda", "cpu", "numpy") if backend.available(b))
    assert got["backend"] == expected
    assert err.count("pyddpm: using the") == 1 and f"using the {expected} backend" in err, err
    assert got["lib"] == ("cupy" if expected == "cuda" else "numpy")


@pytest.mark.parametrize("first", ["numpy", "torch"])
def test_the_cpu_backend_holds_blas_at_one_thread_while_it_is_the_runs(first):
    """NumPy's OpenBLAS threads, idle, spin ~0.1 s after every call and take the cores pyddpm's OpenMP
    kernels start on a moment later: the digits step took 1.3x as long with NumPy imported first, about 6x with
    PyTorch first (its libgomp spins too). Held at one thread, they never wake; the numpy backend, which has
    no pool of its own, gets them back."""
    needs_cpu()
    needs_cores()
    pytest.importorskip("threadpoolctl")
    if first == "torch":
        pytest.importorskip("torch", reason="torch not installed (optional)")
    got, _ = run(f"import {first}\n" + BLAS_THREADS +
                 "import json\n"
                 "import numpy as np\n"
                 "from pyddpm.ops import backend, q_sample\n"
                 "start = blas_threads()\n"
                 "tables = np.linspace(0.1, 0.9, 10), np.linspace(0.9, 0.1, 10)\n"
                 "x = np.ones((2, 3), np.float32)\n"
                 "q_sample(x, np.array([0, 9]), x, *tables)  # the run's backend starts: auto, cpu here\n"
                 "lazily = blas_threads()\n"
                 "backend.set_backend('numpy')\n"
                 "numpy_backend = blas_threads()\n"
                 "backend.set_backend('cpu')\n"
                 "print(json.dumps(dict(start=start, lazily=lazily, numpy=numpy_backend, cpu=blas_threads())))")
    assert got["start"] and max(got["start"]) > 1, f"BLAS has one thread before pyddpm started: {got}"
    assert got["lazily"] == [1] and got["cpu"] == [1], got
    assert got["numpy"] == got["start"], got


def test_tests_start_on_the_numpy_backend_with_blas_threads_untouched():
    """conftest.py puts every test on the NumPy reference, which gives BLAS back its threads."""
    assert backend.get_backend() == "numpy" and not backend.blas_limited()


@pytest.mark.parametrize("torch_threads", [None, 1])
def test_another_librarys_openmp_pool_is_used_and_named_once_when_it_is_short_of_threads(torch_threads):
    """PyTorch's wheel ships libgomp.so.1: imported first, pyddpm._cpu binds to it (one OpenMP pool in the
    process, PyTorch's settings). pyddpm does not change another library's pool; where it has fewer threads
    than the process has cores (torch.set_num_threads(1)), it says so once."""
    needs_cpu()
    needs_cores()
    pytest.importorskip("torch", reason="torch not installed (optional)")
    setup = "" if torch_threads is None else f"torch.set_num_threads({torch_threads})\n"
    got, err = run("import torch\n" + setup +
                   "import json\n"
                   "from pyddpm.ops import backend\n"
                   "backend.set_backend('cpu')\n"
                   "backend.set_backend('numpy')\n"
                   "backend.set_backend('cpu')\n"
                   "runtime, foreign = backend.openmp_runtime()\n"
                   "print(json.dumps(dict(runtime=runtime, foreign=foreign, threads=backend._cpu_pool.threads())))")
    if got["runtime"] is None:
        pytest.skip("pyddpm._cpu is built without OpenMP")
    assert got["foreign"] and "torch" in got["runtime"], got
    if torch_threads is None:
        assert "OpenMP runtime" not in err, err
    else:
        assert got["threads"] == torch_threads and err.count("another library loaded first") == 1, err


def test_pyddpms_own_openmp_runtime_is_not_reported_as_foreign():
    needs_cpu()
    got, err = run("import json\n"
                   "import numpy\n"
                   "from pyddpm.ops import backend\n"
                   "backend.set_backend('cpu')\n"
                   "runtime, foreign = backend.openmp_runtime()\n"
                   "print(json.dumps(dict(runtime=runtime, foreign=foreign)))",
                   OMP_NUM_THREADS="1")
    assert not got["foreign"] and "OpenMP runtime" not in err, (got, err)


def test_the_import_order_benchmark_runs():
    """python -m benchmarks.import_order at its smallest: two variants, one round, a step each (a smoke test;
    the timings themselves are for benchmarks/RESULTS.md)."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.import_order", "--variants", "pyddpm", "numpy",
                           "--rounds", "1", "--steps", "2", "--warmup", "1", "--quiet", "--retries", "0"],
                          cwd=ROOT, env={k: v for k, v in os.environ.items() if k not in ENV_SETTINGS},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: a variant missed the target (noise at 2 steps)
    assert "| pyddpm |" in done.stdout and "| numpy |" in done.stdout, done.stdout


def test_without_threadpoolctl_the_cpu_backend_runs_and_says_once_that_blas_is_not_limited():
    needs_cpu()
    got, err = run("import sys\n"
                   "sys.modules['threadpoolctl'] = None  # as if it were not installed\n"
                   "import json\n"
                   "from pyddpm.ops import backend\n"
                   "backend.set_backend('cpu'); backend.set_backend('numpy'); backend.set_backend('cpu')\n"
                   "print(json.dumps(backend.get_backend()))")
    assert got == "cpu" and err.count("threadpoolctl is not installed") == 1, err
