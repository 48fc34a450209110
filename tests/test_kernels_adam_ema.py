"""Fused Adam step + EMA: each fused backend against the NumPy reference, the reference against the plain
path of pyddpm/nn/optim.py (Adam.step then EMA.update), and the argument checks."""

import math

import numpy as np
import pytest

from kernels import FAST_BACKENDS, randn, skip_float64_on_cuda, to_backend, to_numpy
from pyddpm.nn import Parameter
from pyddpm.nn.optim import EMA, Adam
from pyddpm.ops.adam_ema import adam_ema, adam_ema_reference

# One element, odd sizes, a conv weight, and a tensor larger than the CPU's threading threshold and not a
# multiple of a vector, an OpenMP share or a CUDA block.
SHAPES = [(1,), (3, 5, 7), (128, 64, 3, 3), (1000003,)]
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


def scalars(t, lr=2e-4, decay=0.9999):
    """Adam's folded bias corrections at step t (counting from 1) and the EMA's warm-up decay after t - 1 updates,
    as Adam.step and EMA.update compute them."""
    step_size = lr * math.sqrt(1.0 - BETA2 ** t) / (1.0 - BETA1 ** t)
    return step_size, EPS * math.sqrt(1.0 - BETA2 ** t), BETA1, BETA2, min(decay, t / (9.0 + t))


def state(rng, shape, dtype):
    """p, m, v, ema as after some training: v > 0 and small, m of either sign, ema near p."""
    p = randn(rng, shape, dtype, scale=0.1)
    m = randn(rng, shape, dtype, scale=1e-3, offset=1e-4)
    v = (rng.random(shape) * 1e-5 + 1e-8).astype(dtype)
    ema = (p + randn(rng, shape, dtype, scale=1e-3)).astype(dtype)
    return p, m, v, ema


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_ema_matches_reference(backend, shape, dtype):
    """Several steps (warm-up decays, a growing gradient scale) give the reference's numbers bit for bit: the
    kernels take the reference's operations in its order, each rounded on its own (csrc/kernels/adam_ema.cuh)."""
    skip_float64_on_cuda(backend, dtype)
    rng = np.random.default_rng(len(shape))
    want = state(rng, shape, dtype)
    got = to_backend(backend, *(a.copy() for a in want))
    for t in (1, 2, 3):
        g = randn(rng, shape, dtype, scale=1e-2 * t, offset=1e-3)
        (g_dev,) = to_backend(backend, g)
        assert adam_ema(got[0], g_dev, *got[1:], *scalars(t), backend=backend) is None
        adam_ema_reference(want[0], g, *want[1:], *scalars(t))
        np.testing.assert_array_equal(to_numpy(g_dev), g, err_msg="g is read only")
    for name, a, b in zip(("p", "m", "v", "ema"), got, want):
        a = to_numpy(a)
        assert a.dtype == dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reference_is_adam_then_ema(dtype):
    """The reference reproduces Adam.step(lr) then EMA.update() bit for bit, decay warm-up included."""
    rng = np.random.default_rng(7)
    p, m, v, ema = state(rng, (4, 33), dtype)
    param, ema_param = Parameter(p.copy()), Parameter(ema.copy())
    opt, avg = Adam([param], lr=1e-3), EMA([param], [ema_param], decay=0.999)
    opt.m, opt.v = [m.copy()], [v.copy()]
    for t in (1, 2, 3):
        g = randn(rng, p.shape, dtype, scale=1e-2)
        param.grad = g.copy()
        opt.step()
        avg.update()
        adam_ema_reference(p, g, m, v, ema, *scalars(t, lr=1e-3, decay=0.999))
    for name, a, b in (("p", param.data, p), ("m", opt.m[0], m), ("v", opt.v[0], v), ("ema", ema_param.data, ema)):
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
def test_bad_input_raises(backend):
    rng = np.random.default_rng(0)
    p, m, v, ema = state(rng, (3, 4), np.float32)
    good = dict(zip(("p", "g", "m", "v", "ema"), to_backend(backend, p, randn(rng, (3, 4), np.float32), m, v, ema)))

    def call(**change):
        kw = dict(good, **{k: v for k, v in change.items() if k in good})
        sc = dict(zip(("step_size", "eps_hat", "beta1", "beta2", "ema_decay"), scalars(1)))
        sc.update({k: v for k, v in change.items() if k in sc})
        adam_ema(**kw, **sc, backend=backend)

    xp_f64 = to_backend(backend, np.zeros((3, 4)))[0]
    with pytest.raises(TypeError, match="g must be float32"):
        call(g=xp_f64)
    with pytest.raises(TypeError, match="p must be float32 or float64"):
        call(p=to_backend(backend, np.zeros((3, 4), np.float16))[0])
    with pytest.raises(ValueError, match="v must have the shape of p"):
        call(v=to_backend(backend, np.zeros((4, 3), np.float32))[0])
    with pytest.raises(ValueError, match="beta1 must lie in"):
        call(beta1=1.0)
    with pytest.raises(ValueError, match="ema_decay must lie in"):
        call(ema_decay=1.5)
    with pytest.raises(ValueError, match="step_size must be finite"):
        call(step_size=math.nan)
    if backend != "numpy":
        with pytest.raises(TypeError, match="m must be C-contiguous"):
            call(m=to_backend(backend, np.zeros((4, 3), np.float32))[0].T)
    if backend == "cpu":
        frozen = np.zeros((3, 4), np.float32)
        frozen.flags.writeable = False
        with pytest.raises(ValueError, match="ema must be writeable"):
            call(ema=frozen)
