"""Which implementation runs a kernel: "numpy" (the reference), "cpu" (the C++ extension pyddpm._cpu) or
"cuda" (the extension pyddpm._cuda on CuPy arrays).

A run's backend starts as "auto", as on the command lines: the first kernel call (or ``get_backend``,
``array_library``) picks cuda where CuPy sees a GPU, else cpu where the extension is built, else numpy,
and says which once. ``set_backend`` chooses explicitly; each kernel's dispatch function also takes
``backend=`` to override the run's choice for a single call (tests and microbenchmarks do).

What the cpu backend does to the process, and when. Importing pyddpm changes nothing. While cpu is the
run's backend, NumPy's BLAS runs on one thread: the cpu backend's parallel work is its own OpenMP pool's,
and a second pool of threads would fight it for the cores. OpenBLAS's idle threads spin for a while after
every call before they sleep (unless OPENBLAS_THREAD_TIMEOUT was set before NumPy loaded), and pyddpm's
OpenMP threads, started a moment later, wait for a core; with PyTorch imported first, whose libgomp
pyddpm._cpu then binds to, its spinning OpenMP waiters add to it. So the step's speed would depend on
what was imported first (benchmarks/RESULTS.md, "Import order"). With BLAS on one thread it does not,
and OpenMP's waiters may spin as libgomp's default has them: nothing else competes. ``set_backend`` to
another backend gives NumPy its BLAS threads back.
When the run's backend first starts, glibc's malloc thresholds are raised too (pyddpm/ops/allocator.py;
``PYDDPM_MALLOC=default`` leaves them). What pyddpm cannot change, it says once on stderr: a BLAS library
it cannot limit, or an OpenMP runtime that another library loaded first and runs on fewer threads than
this process has cores.
"""

import importlib
import os
import sys

BACKENDS = ("numpy", "cpu", "cuda")
_current = "auto"  # the run's backend; "auto" is resolved by the first call that needs it
_extensions = {}
_said = set()


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says why."""


def say_once(key, message):
    """Print ``message`` on stderr the first time ``key`` is said in this process."""
    if key not in _said:
        _said.add(key)
        print(message, file=sys.stderr)


def extension(name):
    """The compiled module for backend ``name`` ("cpu" or "cuda"), imported once; raises BackendUnavailable."""
    if name not in _extensions:
        before = mapped_files() if name == "cpu" else set()
        try:
            _extensions[name] = importlib.import_module(f"pyddpm._{name}")
        except ImportError as e:
            _extensions[name] = BackendUnavailable(
                f"backend {name!r} is not available: pyddpm._{name} could not be imported ({e}). "
                + ("Reinstall with a C++ compiler present (pip install -e .)." if name == "cpu" else
                   "Build it with PYDDPM_CUDA=1 pip install -e . on a machine with nvcc and CuPy."))
        if name == "cpu" and not isinstance(_extensions[name], BackendUnavailable):
            _cpu_pool.found(_extensions[name], before)
    ext = _extensions[name]
    if isinstance(ext, BackendUnavailable):
        raise ext
    return ext


def available(name):
    """True when backend ``name`` can run on this machine."""
    if name == "numpy":
        return True
    try:
        extension(name)
    except BackendUnavailable:
        return False
    if name == "cuda":
        try:
            import cupy
            return cupy.cuda.runtime.getDeviceCount() > 0
        except Exception:  # no CuPy, no driver, no device: all mean "not here"
            return False
    return True


def set_backend(name):
    """Make ``name`` ("auto", "numpy", "cpu", "cuda") the run's backend for every kernel; returns the choice.

    "auto" picks cuda, else cpu, else numpy, and says which on stderr. Choosing cpu limits NumPy's BLAS to
    one thread until another backend is chosen (see the module's docstring).
    """
    global _current
    if name == "auto":
        name = next(b for b in ("cuda", "cpu", "numpy") if available(b))
        why = ""
        if name == "numpy":
            why = f" ({_extensions['cpu']})" if isinstance(_extensions.get("cpu"), BackendUnavailable) else ""
        print(f"pyddpm: using the {name} backend{why}", file=sys.stderr)
    elif name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from auto, {', '.join(BACKENDS)}")
    elif not available(name):
        extension(name)  # raises with the reason
        raise BackendUnavailable(f"backend {name!r} is built but no GPU is visible to CuPy")
    _current = name
    _start(name)
    return name


def get_backend():
    """The run's backend: "numpy", "cpu" or "cuda" (an "auto" not yet resolved is resolved now)."""
    return _current if _current != "auto" else set_backend("auto")


def array_library(name=None):
    """The array library that backend ``name`` (default: the run's) computes on: cupy for cuda, else numpy.

    A run moves its model, optimiser state and batches there once; every op after that follows the arrays.
    """
    if resolve(name) == "cuda":
        import cupy
        return cupy
    import numpy
    return numpy


def resolve(backend):
    """The backend a call should use: its own ``backend=`` argument, else the run's (resolving "auto")."""
    name = get_backend() if backend is None else backend
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    return name


# --- what starting a backend does to the process -------------------------------------------------------------
def _start(name):
    """The run's backend is now ``name``: tune malloc (once), and give BLAS one thread only while it is cpu."""
    from pyddpm.ops import allocator

    allocator.tune_once()
    if name == "cpu":
        _blas.limit()
        _cpu_pool.check()
    else:
        _blas.restore()


def mapped_files():
    """The files mapped into this process, as real paths (Linux: /proc/self/maps; an empty set elsewhere)."""
    try:
        with open("/proc/self/maps") as f:
            return {os.path.realpath(line.split(maxsplit=5)[5].strip())
                    for line in f if line.count(" ") >= 5 and "/" in line}
    except OSError:
        return set()


def cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _BlasThreads:
    """NumPy's (and SciPy's) BLAS pools held at one thread while the cpu backend is the run's backend.

    Through threadpoolctl, which finds every BLAS library loaded in the process (OpenBLAS under the
    prefixed names of NumPy's and SciPy's wheels, MKL, BLIS, FlexiBLAS) and calls its own set_num_threads.
    A BLAS threaded by OpenMP is left alone: its openblas_set_num_threads sets the OpenMP runtime's thread
    count, pyddpm's own pool's when they share it, and it does not spin a second pool anyway.
    """

    def __init__(self):
        self.held = None  # [(library controller, its thread count before)] while limited
        self.libs = None  # found once, the first time the cpu backend starts

    def libraries(self):
        if self.libs is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                return None
            self.libs = [lib for lib in ThreadpoolController().select(user_api="blas").lib_controllers
                         if getattr(lib, "threading_layer", None) != "openmp"]
        return self.libs

    def limit(self):
        if self.held is not None:
            return
        libs = self.libraries()
        if libs is None:
            say_once("threadpoolctl", "pyddpm: threadpoolctl is not installed, so NumPy's BLAS threads are not "
                     "limited while the cpu backend runs; if its idle threads spin, the kernels wait for a core "
                     "(pip install threadpoolctl)")
            libs = []
        self.held = [(lib, lib.get_num_threads()) for lib in libs]
        for lib, n in self.held:
            if n is not None and n > 1:
                lib.set_num_threads(1)

    def restore(self):
        held, self.held = self.held or [], None
        for lib, n in held:
            if n is not None and n > 1 and lib.get_num_threads() == 1:  # unless someone else changed it since
                lib.set_num_threads(n)

    def limited(self):
        """True while pyddpm holds the BLAS libraries at one thread."""
        return self.held is not None


class _OpenMPPool:
    """The OpenMP runtime pyddpm._cpu runs its kernels on: its own, or one another library loaded first.

    A runtime already loaded under the name the extension asks for (libgomp.so.1: PyTorch's wheel ships
    one) is the one the dynamic linker binds it to, with the settings it read when it loaded and the
    thread count its owner set since. Found by asking the extension's own symbol scope for
    omp_get_max_threads and the dynamic linker (dladdr) for the file that defines it.
    """

    def __init__(self):
        self.runtime, self.foreign, self.checked, self._max_threads = None, False, False, None

    def found(self, ext, before):
        """pyddpm._cpu (``ext``) was just imported; ``before``: the files mapped before it was."""
        import ctypes
        try:
            handle = ctypes.CDLL(ext.__file__, mode=getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_LOCAL)
            fn = handle.omp_get_max_threads
        except (OSError, AttributeError, TypeError):  # built without OpenMP, or not an ELF system
            return
        fn.restype = ctypes.c_int

        class DlInfo(ctypes.Structure):
            _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                        ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]

        info = DlInfo()
        try:
            ok = ctypes.CDLL(None).dladdr(ctypes.cast(fn, ctypes.c_void_p), ctypes.byref(info))
        except (OSError, AttributeError):
            ok = 0
        self._max_threads = fn
        if ok and info.dli_fname:
            self.runtime = os.path.realpath(os.fsdecode(info.dli_fname))
            self.foreign = self.runtime in before

    def threads(self):
        """The runtime's thread count for the next parallel region started on this thread (None if unknown)."""
        return int(self._max_threads()) if self._max_threads is not None else None

    def check(self):
        """Say once if the kernels run on another library's OpenMP pool with fewer threads than cores."""
        if not self.foreign or self.checked:
            return
        self.checked = True
        n, have = self.threads(), cores()
        if n is not None and n < have:
            say_once("openmp", f"pyddpm: the cpu backend's kernels run on the OpenMP runtime {self.runtime}, which "
                     f"another library loaded first and set to {n} thread(s) on {have} cores; pyddpm leaves "
                     f"another library's pool as it is (its owner sets it: OMP_NUM_THREADS before it loads, "
                     f"or e.g. torch.set_num_threads)")


_blas = _BlasThreads()
_cpu_pool = _OpenMPPool()


def blas_limited():
    """True while the cpu backend holds NumPy's BLAS at one thread."""
    return _blas.limited()


def openmp_runtime():
    """(path of the OpenMP runtime pyddpm._cpu runs on or None, whether another library loaded it first)."""
    return _cpu_pool.runtime, _cpu_pool.foreign
