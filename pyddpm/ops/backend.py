"""Which implementation runs a kernel: "numpy" (the reference), "cpu" (the C++ extension pyddpm._cpu) or
"cuda" (the extension pyddpm._cuda on CuPy arrays).

A run chooses once with ``set_backend`` ("auto" picks cuda where CuPy sees a GPU, else cpu where the
extension is built, else numpy, and says which once); each kernel's dispatch function also takes
``backend=`` to override that for a single call (tests and microbenchmarks do).
"""

import importlib
import sys


BACKENDS = ("numpy", "cpu", "cuda")
_current = "numpy"
_extensions = {}


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says why."""


def extension(name):
    """The compiled module for backend ``name`` ("cpu" or "cuda"), imported once; raises BackendUnavailable."""
    if name not in _extensions:
        try:
            _extensions[name] = importlib.import_module(f"pyddpm._{name}")
        except ImportError as e:
            _extensions[name] = BackendUnavailable(
                f"backend {name!r} is not available: pyddpm._{name} could not be imported ({e}). "
                + ("Reinstall with a C++ compiler present (pip install -e .)." if name == "cpu" else
                   "Build it with PYDDPM_CUDA=1 pip install -e . on a machine with nvcc and CuPy."))
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
    """Make ``name`` ("auto", "numpy", "cpu", "cuda") the default for every kernel; returns the choice."""
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
    return name


def get_backend():
    return _current


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
    """The backend a call should use: its own ``backend=`` argument, else the run's default."""
    name = _current if backend is None else backend
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    return name
