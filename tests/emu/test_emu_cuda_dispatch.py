"""The cuda path of every kernel module in pyddpm/ops (the argument checks, the output allocation, the order
of the pointers and sizes each passes to pyddpm._cuda) run without a GPU.

CuPy is replaced by a stand-in whose arrays are NumPy arrays with a device pointer, and pyddpm._cuda by an
adapter made from the bindings' own source (csrc/cuda/*_bind.cpp): for each entry point it reads which
parameters are pointers and how the binding passes its parameters on to the launcher, and hands the arrays
to that launcher under the CUDA emulation. A wrapper that passes two pointers or sizes in the wrong order,
allocates an output of the wrong shape or forgets one reaches the emulated kernel wrong, and the result
then differs from the NumPy reference. What this cannot check: the bindings' own size checks, and anything
of a real device (tests/gpu does).

The arguments are the kernel fuzz's valid random cases (tests/test_kernel_fuzz.py), in float32.
"""

import importlib.util
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from pyddpm.ops import cuda_args
from pyddpm.ops import winograd as wg

ROOT = Path(__file__).resolve().parents[2]
CASES_PER_KERNEL = 4


def _load_fuzz():
    spec = importlib.util.spec_from_file_location("kernel_fuzz_cases", ROOT / "tests" / "test_kernel_fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUZZ = _load_fuzz()


# --- The bindings, read from their source ----------------------------------------------------------------

def _split_args(text):
    """Top-level comma-separated items of an argument list."""
    items, depth, current = [], 0, ""
    for ch in text:
        if ch in "(<[":
            depth += 1
        elif ch in ")>]":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += ch
    return items + ([current.strip()] if current.strip() else [])


def bindings():
    """{entry point: (parameters [(type, name)], launcher name, launcher argument expressions, splits result)}"""
    found = {}
    for path in sorted((ROOT / "csrc" / "cuda").glob("*_bind.cpp")):
        source = path.read_text()
        for m in re.finditer(r'm\.def\("(\w+)",\s*\[\]\((.*?)\)\s*\{(.*?)\n    \}\);', source, re.S):
            name, params, body = m.groups()
            params = [tuple(p.rsplit(None, 1)) for p in _split_args(params)]
            call = re.search(r"\b(\w+_cuda)\((.*?)\);", body, re.S)
            found[name] = (params, call.group(1), _split_args(call.group(2)), "split(result" in body)
    return found


BINDINGS = bindings()


def test_the_bindings_are_read():
    """The parser found every entry point the Python glue calls, each with its launcher."""
    assert len(BINDINGS) == 19
    params, launcher, args, _ = BINDINGS["winograd_output"]
    assert launcher == "winograd_output_cuda" and params[1] == ("std::uintptr_t", "bias")
    assert args[1] == "ptr<const float>(bias)"


# --- The stand-ins ---------------------------------------------------------------------------------------

class StandInArray:
    """What the checks and the glue read of a cupy.ndarray; the data stay a NumPy array (self.a)."""

    def __init__(self, a, memory):
        self.a, self.memory = a, memory
        self.data = types.SimpleNamespace(ptr=a.ctypes.data)
        self.device = types.SimpleNamespace(id=0)
        memory[self.data.ptr] = a

    def __getattr__(self, name):  # shape, dtype, flags, size, ndim, min, max, ...
        return getattr(self.a, name)

    def reshape(self, *shape):
        return StandInArray(self.a.reshape(*shape), self.memory)

    def get(self):
        return self.a.copy()


@pytest.fixture
def cuda(emu, monkeypatch):
    """The stand-in CuPy and pyddpm._cuda; returns the function that puts a NumPy array 'on the device'."""
    arrays = {}  # device pointer -> the NumPy array behind it

    def device(a):
        return StandInArray(np.ascontiguousarray(a), arrays)

    cupy = types.ModuleType("cupy")
    cupy.ndarray = StandInArray
    cupy.empty = lambda shape, dtype: device(np.full(shape, np.nan, dtype))  # NaN shows an unwritten output
    cupy.asarray = lambda a: a if isinstance(a, StandInArray) else device(np.array(a))
    cupy.cuda = types.SimpleNamespace(Device=lambda: types.SimpleNamespace(id=0),
                                      get_current_stream=lambda: types.SimpleNamespace(ptr=0))
    monkeypatch.setitem(sys.modules, "cupy", cupy)

    def entry(params, launcher, exprs, splits):
        def call(*values):
            assert len(values) == len(params), f"{launcher}: {len(values)} arguments, the binding takes {len(params)}"
            env = {}
            for (type_, name), value in zip(params, values):
                if type_ == "std::uintptr_t" and name != "stream":
                    value = None if value == 0 else arrays[value]  # a KeyError: not a pointer the glue made
                env[name] = value
            if splits:  # csrc/cuda/likelihood_bind.cpp: one result pointer, per element or per sample
                env["out"], env["bpd"] = (None, env["result"]) if env["per_sample_bpd"] else (env["result"], None)
            getattr(emu, launcher)(*(_value(e, env) for e in exprs))
        return call

    ext = types.SimpleNamespace(**{name: entry(*b) for name, b in BINDINGS.items()})
    monkeypatch.setattr(cuda_args, "extension", lambda name: ext if name == "cuda" else pytest.fail(name))
    return device


def _value(expr, env):
    """A launcher argument as the binding writes it: ptr<T>(p), int(n), as_stream(stream) or a name."""
    if expr.startswith("as_stream("):
        return None
    m = re.fullmatch(r"(?:ptr<[\w:\s]+>|int|float|double|long)\((\w+)\)|(\w+)", expr)
    assert m, f"a launcher argument this test cannot read: {expr}"
    return env[m.group(1) or m.group(2)]


# --- The test --------------------------------------------------------------------------------------------

KERNELS = [k for k in FUZZ.KERNELS if k.name in BINDINGS]


def test_every_entry_point_is_tested():
    assert sorted(k.name for k in KERNELS) == sorted(BINDINGS)


def _on_device(device, args):
    return {n: device(a) if isinstance(a, np.ndarray) and n not in FUZZ.FIXED_DTYPE else a for n, a in args.items()}


def _host(a):
    return a.get() if isinstance(a, StandInArray) else a


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.name)
def test_the_cuda_dispatch_matches_the_reference(kernel, cuda):
    rng = np.random.default_rng(7)
    for _ in range(CASES_PER_KERNEL):
        args = kernel.make(rng, np.dtype(np.float32))
        want_args = {n: a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype == np.float32 else a
                     for n, a in args.items()}
        want = kernel.outputs(kernel.call("numpy", want_args), want_args)
        got_args = _on_device(cuda, args)
        result = kernel.call("cuda", got_args)
        got = kernel.outputs(result, got_args)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert (g is None) == (w is None)
            if w is not None:
                assert isinstance(g, StandInArray) and g.dtype == np.float32, kernel.name
                np.testing.assert_allclose(g.get(), w, rtol=1e-4, atol=1e-4, err_msg=kernel.name)


def test_the_cuda_dispatch_checks_its_arguments(cuda):
    """What reaches a pointer is a contiguous float32 device array of the shape the kernel indexes."""
    shape = (2, 3, 5, 6)
    x = np.ones(shape, np.float32)
    v = cuda(np.ones((16, 3, 9), np.float32))
    with pytest.raises(TypeError, match="x must be a CuPy array"):
        wg.winograd_input(x, backend="cuda")
    with pytest.raises(TypeError, match="x must be float32"):
        wg.winograd_input(cuda(x.astype(np.float64)), backend="cuda")
    with pytest.raises(TypeError, match="C-contiguous"):
        wg.winograd_output_grad(StandInArray(x[:, :, :, ::2], {}), backend="cuda")
    with pytest.raises(ValueError, match=r"dv must have shape \(16, 3, 8\)"):
        wg.winograd_input_grad(v, (2, 3, 4, 4), backend="cuda")
    with pytest.raises(ValueError, match=r"x_shape must be \(B, C, H, W\) of positive sizes"):
        wg.winograd_input_grad(v, (2, 3, 5), backend="cuda")
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        wg.winograd_output(v, (1, 3, 6, 6), cuda(np.ones(4, np.float32)), backend="cuda")
