"""The cuda path of pyddpm/ops/winograd.py (argument checks, output allocation, the order of the pointers
and sizes it passes) run without a GPU: CuPy is replaced by a stand-in whose arrays are NumPy arrays with a
device pointer, and pyddpm._cuda by an adapter with the signatures of csrc/cuda/winograd_bind.cpp that
hands those arrays to the emulated launchers. What this cannot check: the bindings themselves (the adapter
copies their signatures by hand; the size checks are theirs) and anything of a real device.
"""

import sys
import types

import numpy as np
import pytest

from emulation import covers
from pyddpm.ops import winograd as wg

SHAPE = (2, 3, 5, 6)


class StandInArray:
    """What cuda_args.device_ptr and the dispatch read of a cupy.ndarray; outputs start as NaN."""

    def __init__(self, a):
        self.a = a
        self.shape, self.ndim, self.dtype, self.flags = a.shape, a.ndim, a.dtype, a.flags
        self.data = types.SimpleNamespace(ptr=a.ctypes.data)
        self.device = types.SimpleNamespace(id=0)

    def get(self):
        return self.a.copy()


@pytest.fixture
def cuda(emu, monkeypatch):
    """The stand-in CuPy and extension; returns the function that puts a NumPy array 'on the device'."""
    arrays = {}

    def device(a):
        arr = StandInArray(a)
        arrays[arr.data.ptr] = a
        return arr

    cupy = types.ModuleType("cupy")
    cupy.ndarray = StandInArray
    cupy.empty = lambda shape, dtype: device(np.full(shape, np.nan, dtype))
    cupy.cuda = types.SimpleNamespace(Device=lambda: types.SimpleNamespace(id=0),
                                      get_current_stream=lambda: types.SimpleNamespace(ptr=0))
    monkeypatch.setitem(sys.modules, "cupy", cupy)

    def array(ptr):
        return None if ptr == 0 else arrays[ptr]

    ext = types.SimpleNamespace(
        winograd_input=lambda x, v, B, C, H, W, stream: emu.winograd_input_cuda(array(x), array(v), B, C, H, W, None),
        winograd_input_grad=lambda dv, dx, B, C, H, W, stream: emu.winograd_input_grad_cuda(
            array(dv), array(dx), B, C, H, W, None),
        winograd_output=lambda m, bias, y, B, K, H, W, stream: emu.winograd_output_cuda(
            array(m), array(bias), array(y), B, K, H, W, None),
        winograd_output_grad=lambda dy, dm, B, K, H, W, stream: emu.winograd_output_grad_cuda(
            array(dy), array(dm), B, K, H, W, None))
    monkeypatch.setattr(wg, "extension", lambda name: ext if name == "cuda" else pytest.fail(name))
    return device


@covers("winograd_input_kernel", "winograd_input_grad_kernel", "winograd_output_kernel",
        "winograd_output_grad_kernel")
def test_the_cuda_dispatch_matches_the_references(cuda):
    B, C, H, W = SHAPE
    rng = np.random.default_rng(0)
    P = B * wg.tiles(H) * wg.tiles(W)
    x, dv, m = (rng.standard_normal(s).astype(np.float32) for s in (SHAPE, (16, C, P), (16, C, P)))
    dy, bias = rng.standard_normal(SHAPE).astype(np.float32), rng.standard_normal(C).astype(np.float32)
    f64 = lambda a: a.astype(np.float64)  # noqa: E731
    cases = [(wg.winograd_input(cuda(x), backend="cuda"), wg.winograd_input_reference(f64(x))),
             (wg.winograd_input_grad(cuda(dv), list(SHAPE), backend="cuda"),
              wg.winograd_input_grad_reference(f64(dv), SHAPE)),
             (wg.winograd_output(cuda(m), SHAPE, cuda(bias), backend="cuda"),
              wg.winograd_output_reference(f64(m), SHAPE, f64(bias))),
             (wg.winograd_output(cuda(m), SHAPE, backend="cuda"), wg.winograd_output_reference(f64(m), SHAPE)),
             (wg.winograd_output_grad(cuda(dy), backend="cuda"), wg.winograd_output_grad_reference(f64(dy)))]
    for got, want in cases:
        assert isinstance(got, StandInArray) and got.dtype == np.float32
        np.testing.assert_allclose(got.get(), want, rtol=1e-5, atol=1e-5)


def test_the_cuda_dispatch_checks_its_arguments(cuda):
    x = np.ones(SHAPE, np.float32)
    v = cuda(np.ones((16, 3, 9), np.float32))
    with pytest.raises(TypeError, match="x must be a CuPy array"):
        wg.winograd_input(x, backend="cuda")
    with pytest.raises(TypeError, match="x must be float32"):
        wg.winograd_input(cuda(x.astype(np.float64)), backend="cuda")
    with pytest.raises(TypeError, match="C-contiguous"):
        wg.winograd_output_grad(cuda(x[:, :, :, ::2]), backend="cuda")
    with pytest.raises(ValueError, match=r"x must have shape \(\*, \*, \*, \*\)"):
        wg.winograd_input(cuda(x[0]), backend="cuda")
    with pytest.raises(ValueError, match=r"dv must have shape \(16, 3, 8\)"):
        wg.winograd_input_grad(v, (2, 3, 4, 4), backend="cuda")
    with pytest.raises(ValueError, match=r"x_shape must be \(B, C, H, W\) of positive sizes"):
        wg.winograd_input_grad(v, (2, 3, 5), backend="cuda")
    with pytest.raises(ValueError, match=r"y_shape must be \(B, C, H, W\) of positive sizes"):
        wg.winograd_output(v, (2, 0, 5, 6), backend="cuda")
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        wg.winograd_output(v, (1, 3, 6, 6), cuda(np.ones(4, np.float32)), backend="cuda")
