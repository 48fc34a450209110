"""A table-driven fuzz of every kernel entry point on every backend that runs here (numpy and cpu; cuda
where CuPy sees a GPU): each kernel x backend is one test, and each test runs the same seeded cases.

A case is a valid call of a random awkward shape (odd sizes, batch 1) or a mutation of one: a wrong shape or
rank, each bad dtype, mixed float32/float64, a list or a Python scalar for an array, a non-contiguous or
zero-stride view, the same array passed twice (where one is written, and where neither is), a read-only
array, NaN or inf in an input, empty arrays, a bad scalar. Every call must either
  (a) return the numpy reference's values on the same (valid) input, computed in float64: within the dtype's
      tolerance, NaN in exactly the same places, and in the input's dtype, or
  (b) raise TypeError, ValueError or MemoryError whose message starts with the kernel's name,
and never anything else. Which one is fixed by the mutation, so every backend answers alike: a bad dtype or
type is a TypeError, a bad shape, size, scalar, alias or read-only output a ValueError, on every backend;
a non-contiguous or broadcast view is computed by numpy and either computed or refused with a TypeError by
cpu and cuda (contiguity is theirs to require).

PYDDPM_FUZZ_CASES sets the number of cases per kernel and backend (default: every mutation twice, once in
float32 and once in float64, a few seconds in all).
"""

import os
import zlib

import numpy as np
import pytest

from kernels import assert_matches
from pyddpm.ops import backend as backends
from pyddpm.ops.adam_ema import adam_ema
from pyddpm.ops.attention import attention, attention_backward, softmax_backward_rows, softmax_rows
from pyddpm.ops.batched_matmul import batched_matmul
from pyddpm.ops.discretized_gaussian_log_likelihood import discretized_gaussian_log_likelihood
from pyddpm.ops.group_norm import group_norm, group_norm_backward
from pyddpm.ops.im2col import col2im, im2col
from pyddpm.ops.im2col_rows import col2im_rows, im2col_rows, nchw_to_rows, rows_to_nchw
from pyddpm.ops.normal_kl import normal_kl
from pyddpm.ops.q_sample import q_sample
from pyddpm.ops.sampler_step import StepCoefs, sampler_step
from pyddpm.ops.winograd import winograd_input, winograd_input_grad, winograd_output, winograd_output_grad
from pyddpm.ops.winograd_conv import winograd_conv, winograd_conv_backward

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
ERRORS = (TypeError, ValueError, MemoryError)
BAD_DTYPES = ("float16", "int32", "int64", "complex64", "bool", "object")
TOL = {F32: 1e-4, F64: 1e-9}  # relative, and absolute times the reference's largest finite magnitude
COEFS = StepCoefs._fields
FIXED_DTYPE = {"t", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod", *COEFS}  # int64 and float64 always


# --- Random valid inputs ------------------------------------------------------------------------------

def _n(rng, lo=1, hi=5):
    return int(rng.integers(lo, hi + 1))


def _batch(rng):
    return 1 if rng.random() < 0.4 else _n(rng, 2, 3)


def _randn(rng, shape, dtype, scale=1.0):
    return np.asarray(rng.standard_normal(shape) * scale).astype(dtype)


def _image(rng):
    return _batch(rng), _n(rng, 1, 3), _n(rng), _n(rng)


def _tiles(B, H, W):
    return B * ((H + 1) // 2) * ((W + 1) // 2)


def make_group_norm(rng, dt):
    G = _n(rng, 1, 3)
    C = G * _n(rng, 1, 2)
    return dict(x=_randn(rng, (_batch(rng), C, _n(rng), _n(rng)), dt, 2.0) + dt.type(1.0),
                gamma=_randn(rng, (C,), dt), beta=_randn(rng, (C,), dt), num_groups=G,
                silu=bool(rng.random() < 0.5), eps=float(rng.choice([1e-6, 1e-5, 1e-3])))


def make_group_norm_backward(rng, dt):
    a = make_group_norm(rng, dt)
    f64 = [a[n].astype(F64) for n in ("x", "gamma", "beta")]
    _, mean, rstd = group_norm(*f64, a["num_groups"], a["silu"], a["eps"], backend="numpy")
    return dict(dy=_randn(rng, a["x"].shape, dt), x=a["x"], gamma=a["gamma"], beta=a["beta"],
                mean=mean.astype(dt), rstd=rstd.astype(dt), num_groups=a["num_groups"], silu=a["silu"])


def make_attention(rng, dt):
    shape = (_batch(rng), _n(rng, 1, 2), _n(rng, 1, 6), _n(rng, 1, 5))
    scale = None if rng.random() < 0.5 else float(rng.uniform(-1.0, 1.0))
    return dict(q=_randn(rng, shape, dt), k=_randn(rng, shape, dt), v=_randn(rng, shape, dt), scale=scale)


def make_attention_backward(rng, dt):
    a = make_attention(rng, dt)
    _, p = attention(*(a[n].astype(F64) for n in ("q", "k", "v")), a["scale"], backend="numpy")
    return dict(dout=_randn(rng, a["q"].shape, dt), q=a["q"], k=a["k"], v=a["v"], p=p.astype(dt),
                scale=a["scale"])


def make_softmax_rows(rng, dt):
    shape = tuple(_n(rng) for _ in range(_n(rng, 1, 3)))
    return dict(s=_randn(rng, shape, dt, 3.0), scale=float(rng.uniform(-2.0, 2.0)), out=None)


def make_softmax_backward_rows(rng, dt):
    s = make_softmax_rows(rng, F64)
    p = softmax_rows(s["s"], 1.0, backend="numpy")
    return dict(p=p.astype(dt), dp=_randn(rng, p.shape, dt), scale=s["scale"], out=None)


def _timesteps(rng, B, T):
    t = rng.integers(0, T, B).astype(np.int64)
    if rng.random() < 0.5:
        t[0] = 0  # the last reverse step: no noise term
    return t


def make_q_sample(rng, dt):
    shape = (_batch(rng),) + tuple(_n(rng) for _ in range(_n(rng, 0, 3)))
    T = _n(rng, 2, 8)
    abar = np.cumprod(1.0 - rng.uniform(0.01, 0.2, T))
    return dict(x0=_randn(rng, shape, dt), t=_timesteps(rng, shape[0], T), noise=_randn(rng, shape, dt),
                sqrt_alphas_cumprod=np.sqrt(abar), sqrt_one_minus_alphas_cumprod=np.sqrt(1.0 - abar))


def make_sampler_step(rng, dt):
    """Per-sample coefficients of both signs; a sample without noise half the time, and a quarter of the cases
    with no noise at all (noise None, every next_from_noise 0); a learned log-variance half the time."""
    shape = (_batch(rng),) + tuple(_n(rng) for _ in range(_n(rng, 0, 3)))
    B = shape[0]
    coefs = dict(zip(COEFS, (rng.uniform(-3.0, 3.0, B), rng.uniform(-3.0, 3.0, B), rng.uniform(-1.0, 1.0, B),
                             rng.uniform(-1.5, 1.5, B), rng.uniform(0.0, 1.0, B))))
    noise = _randn(rng, shape, dt) if rng.random() < 0.75 else None
    if noise is None:
        coefs["next_from_noise"][:] = 0.0
    elif rng.random() < 0.5:
        coefs["next_from_noise"][0] = 0.0
    a = dict(model_output=_randn(rng, shape, dt), x=_randn(rng, shape, dt), noise=noise, **coefs,
             clip_denoised=bool(rng.random() < 0.5), return_pred_x0=bool(rng.random() < 0.7))
    return {**a, "log_variance": _randn(rng, shape, dt, scale=2.0) if rng.random() < 0.5 else None}


def call_sampler_step(backend, a):
    return sampler_step(a["model_output"], a["x"], a["noise"], StepCoefs(*(a[n] for n in COEFS)), a["clip_denoised"],
                        a["return_pred_x0"], log_variance=a["log_variance"], backend=backend)


def _no_noise_junk(a, name):
    """Without a noise array, next_from_noise must stay 0 (a NaN, inf or broadcast there would turn it on)."""
    if name == "next_from_noise" and a["noise"] is None:
        return np.ones(a[name].shape, bool)
    return None


def _alias_step(rng, a):
    """Two read-only arguments as one array, which every backend must take: two of the data, or two of the
    coefficients (next_from_noise not among them when there is no noise: that would turn it on)."""
    data = [n for n in ("model_output", "x", "noise", "log_variance") if a[n] is not None]
    coefs = [n for n in COEFS if a["noise"] is not None or n != "next_from_noise"]
    first, second = rng.choice(data if rng.random() < 0.5 else coefs, 2, replace=False)
    return {**a, second: a[first]}, [lambda xp, d: d.__setitem__(second, d[first])], None


def _per_element_or_sample(rng, shape, low, high, dt):
    """An array of `shape`, or one value per sample as (B,) or (B, 1, ..., 1)."""
    kind = rng.integers(3)
    if kind == 0 or len(shape) == 1:
        return rng.uniform(low, high, shape).astype(dt)
    if kind == 1:
        return rng.uniform(low, high, shape[:1]).astype(dt)
    return rng.uniform(low, high, shape[:1] + (1,) * (len(shape) - 1)).astype(dt)


def make_dgll(rng, dt):
    shape = (_batch(rng),) + tuple(_n(rng) for _ in range(_n(rng, 0, 3)))
    x = (rng.integers(0, 256, shape) / 127.5 - 1.0).astype(dt)
    return dict(x=x, means=(x + rng.normal(0.0, 0.1, shape)).astype(dt),
                log_scales=_per_element_or_sample(rng, shape, -5.0, 0.0, dt), per_sample_bpd=bool(rng.random() < 0.5))


def make_normal_kl(rng, dt):
    shape = (_batch(rng),) + tuple(_n(rng) for _ in range(_n(rng, 0, 3)))
    return dict(mean1=_randn(rng, shape, dt), logvar1=_per_element_or_sample(rng, shape, -3.0, 1.0, dt),
                mean2=_randn(rng, shape, dt), logvar2=_per_element_or_sample(rng, shape, -3.0, 1.0, dt),
                per_sample_bpd=bool(rng.random() < 0.5))


def make_adam_ema(rng, dt):
    shape = tuple(_n(rng) for _ in range(_n(rng, 0, 3)))
    return dict(p=_randn(rng, shape, dt), g=_randn(rng, shape, dt), m=_randn(rng, shape, dt, 0.1),
                v=np.asarray(np.abs(_randn(rng, shape, dt, 0.1))), ema=_randn(rng, shape, dt),
                step_size=float(rng.uniform(1e-4, 1e-2)), eps_hat=1e-8, beta1=0.9, beta2=0.999,
                ema_decay=float(rng.uniform(0.5, 1.0)))


def _conv_geometry(rng, H, W):
    padding = _n(rng, 0, 2)
    return _n(rng, 1, min(4, min(H, W) + 2 * padding)), _n(rng, 1, 3), padding


def make_im2col(rng, dt):
    shape = _image(rng)
    k, stride, padding = _conv_geometry(rng, *shape[2:])
    return dict(x=_randn(rng, shape, dt), k=k, stride=stride, padding=padding)


def make_col2im(rng, dt):
    B, C, H, W = _image(rng)
    k, stride, padding = _conv_geometry(rng, H, W)
    Ho, Wo = (H + 2 * padding - k) // stride + 1, (W + 2 * padding - k) // stride + 1
    return dict(cols=_randn(rng, (B, C * k * k, Ho * Wo), dt), x_shape=(B, C, H, W), k=k, stride=stride,
                padding=padding)


def make_im2col_rows(rng, dt):
    k = int(rng.choice([1, 3, 5]))
    return dict(x=_randn(rng, _image(rng), dt), k=k, padding=(k - 1) // 2)


def make_col2im_rows(rng, dt):
    B, C, H, W = _image(rng)
    k = int(rng.choice([1, 3, 5]))
    padding = (k - 1) // 2
    dcols = _randn(rng, (C * k * k, B, H, W + 2 * padding), dt)
    dcols[..., W:] = 0  # the junk columns hold the gradient of junk outputs: zero, as col2im_rows requires
    return dict(dcols=dcols.reshape(C * k * k, -1), x_shape=(B, C, H, W), k=k, padding=padding)


def make_rows_to_nchw(rng, dt):
    B, H, W, padding = _batch(rng), _n(rng), _n(rng), _n(rng, 0, 2)
    return dict(y=_randn(rng, (_n(rng, 1, 4), B * H * (W + 2 * padding)), dt), B=B, H=H, W=W, padding=padding)


def make_nchw_to_rows(rng, dt):
    return dict(g=_randn(rng, _image(rng), dt), padding=_n(rng, 0, 2))


def make_winograd_input(rng, dt):
    return dict(x=_randn(rng, _image(rng), dt))


def make_winograd_input_grad(rng, dt):
    B, C, H, W = _image(rng)
    return dict(dv=_randn(rng, (16, C, _tiles(B, H, W)), dt), x_shape=(B, C, H, W))


def make_winograd_output(rng, dt):
    B, K, H, W = _image(rng)
    bias = None if rng.random() < 0.5 else _randn(rng, (K,), dt)
    return dict(m=_randn(rng, (16, K, _tiles(B, H, W)), dt), y_shape=(B, K, H, W), bias=bias)


def make_winograd_output_grad(rng, dt):
    return dict(dy=_randn(rng, _image(rng), dt))


def make_winograd_conv(rng, dt):
    B, C, H, W = _image(rng)
    K = _n(rng, 1, 3)
    bias = None if rng.random() < 0.5 else _randn(rng, (K,), dt)
    return dict(x=_randn(rng, (B, C, H, W), dt), u=_randn(rng, (16, K, C), dt), bias=bias,
                one_pass=bool(rng.random() < 0.5))


def make_winograd_conv_backward(rng, dt):
    B, C, H, W = _image(rng)
    K = _n(rng, 1, 3)
    flags = [bool(f) for f in rng.random(3) < 0.7]
    return dict(x=_randn(rng, (B, C, H, W), dt), u=_randn(rng, (16, K, C), dt), dy=_randn(rng, (B, K, H, W), dt),
                need_dx=flags[0], need_du=flags[1], need_db=flags[2], one_pass=bool(rng.random() < 0.5))


def make_batched_matmul(rng, dt):
    n, m, k, p = (_n(rng, 1, 6) for _ in range(4))
    return dict(a=_randn(rng, (n, m, k), dt), b=_randn(rng, (n, k, p), dt))


# --- The table: one row per kernel entry point ----------------------------------------------------------

class Kernel:
    """How to fuzz one entry point.

    make(rng, dtype): valid arguments by name. call(backend, args): the call (default fn(**args)).
    constrained: (name, axis) pairs whose size other arguments fix (one more there is a ValueError).
    free_rank: arrays whose rank may change and stay valid (the rank mutation leaves them alone).
    written: arrays written in place (read-only, broadcast or aliased is refused). empty(rng, args): the
    arguments with an empty array, and empty_ok whether that is a valid call (else ValueError).
    scalars: (name, bad value, exception type). alias(rng, args) -> (args, post, expected) or None, for
    kernels whose aliasing rules are their own. junk(args, name): a boolean mask of the elements of an
    array that must stay zero for the input to be valid (NaN, inf and broadcasts keep off them).
    outputs(result, args): the arrays to compare (default: the result, or the tuple's items).
    """

    def __init__(self, name, fn, make, call=None, constrained=(), free_rank=(), written=(), empty=None,
                 empty_ok=False, scalars=(), alias=None, junk=None, outputs=None):
        self.name, self.make, self.call = name, make, call or (lambda backend, a: fn(**a, backend=backend))
        self.constrained, self.free_rank, self.written = list(constrained), set(free_rank), set(written)
        self.empty, self.empty_ok, self.scalars, self.alias = empty, empty_ok, list(scalars), alias
        self.junk, self.outputs = junk, outputs or _default_outputs


def _default_outputs(result, args):
    return list(result) if isinstance(result, tuple) else [result]


def _all_axes(*names_and_ranks):
    return [(name, axis) for name, rank in names_and_ranks for axis in range(rank)]


def _empty_axis(name, axes):
    """empty(rng, args): `name` with one of `axes` cut to size 0."""
    def empty(rng, a):
        axis = int(rng.choice(axes))
        index = (slice(None),) * axis + (slice(0, 0),)
        return {**a, name: a[name][index]}
    return empty


def _empty_all(names):
    def empty(rng, a):
        shape = (0,) + a[names[0]].shape[1:] if a[names[0]].ndim else (0,)
        return {**a, **{n: np.zeros(shape, a[n].dtype) for n in names}}
    return empty


def _empty_images(names):
    """The leading (batch) axis of each of `names` cut to 0, together."""
    def empty(rng, a):
        return {**a, **{n: a[n][:0] for n in names}}
    return empty


def _empty_shape_arg(array_name, shape_name):
    """A zero batch in a shape argument, and the array cut to match (x_shape (0, C, H, W))."""
    def empty(rng, a):
        B, C, H, W = a[shape_name]
        return {**a, shape_name: (0, C, H, W), array_name: a[array_name][..., :0]}
    return empty


IMAGE_SCALARS = [("x_shape", (2, 3, 4), ValueError), ("x_shape", (2, 0, 4, 4), ValueError),
                 ("x_shape", "abcd", TypeError), ("x_shape", (2, 3, 4.0, 4), TypeError)]


def _junk_rows(a, name):
    """col2im_rows' dcols: the junk columns (j >= W of each padded row) must hold zero."""
    if name != "dcols":
        return None
    B, C, H, W = a["x_shape"]
    Wp = W + 2 * a["padding"]
    mask = np.zeros((1, B, H, Wp), bool)
    mask[..., W:] = True
    return np.broadcast_to(mask, (a["dcols"].shape[0], B, H, Wp)).reshape(a["dcols"].shape)


def _alias_adam(rng, a):
    first, second = rng.choice(["p", "g", "m", "v", "ema"], 2, replace=False)
    return a, [lambda xp, d: d.__setitem__(second, d[first])], ValueError


def _alias_softmax(inputs):
    """out as one of `inputs` itself (valid), or partly overlapping one (ValueError)."""
    def alias(rng, a):
        like = a[inputs[0]]
        if rng.random() < 0.5 or like.size < 2:  # one element cannot overlap in part
            name = str(rng.choice(inputs))
            return a, [lambda xp, d: d.__setitem__("out", d[name])], None
        name = str(rng.choice(inputs))
        return a, [lambda xp, d: _overlap_out(xp, d, name, like.shape)], ValueError
    return alias


def _overlap_out(xp, d, name, shape):
    """d[name] and d["out"] as two views of one buffer, out starting one row (or element) later."""
    size, shift = int(np.prod(shape)), shape[-1] if len(shape) > 1 and shape[0] > 1 else 1
    buf = xp.zeros(size + shift, d[name].dtype)
    buf[:size] = d[name].reshape(-1)
    d[name] = buf[:size].reshape(shape)
    d["out"] = buf[shift:shift + size].reshape(shape)


def _empty_matmul(rng, a):
    """A zero n, m, k or p: every backend returns the same (n, m, p), zeros where k = 0."""
    n, m, k, p = a["a"].shape + a["b"].shape[2:]
    sizes = [n, m, k, p]
    sizes[rng.integers(4)] = 0
    n, m, k, p = sizes
    return {**a, "a": _randn(rng, (n, m, k), a["a"].dtype), "b": _randn(rng, (n, k, p), a["b"].dtype)}


def _adam_outputs(result, a):
    assert result is None
    return [a[n] for n in ("p", "m", "v", "ema")]


def _softmax_outputs(result, a):
    return [result]


KERNELS = [
    Kernel("group_norm", group_norm, make_group_norm, constrained=[("x", 1), ("gamma", 0), ("beta", 0)],
           empty=_empty_axis("x", [0, 2, 3]),
           scalars=[("eps", -1e-3, ValueError), ("eps", float("nan"), ValueError), ("eps", float("inf"), ValueError),
                    ("eps", "1e-6", TypeError), ("eps", np.array(1e-6), TypeError), ("num_groups", 0, ValueError),
                    ("num_groups", -2, ValueError), ("num_groups", 2.0, TypeError), ("silu", None, TypeError)]),
    Kernel("group_norm_backward", group_norm_backward, make_group_norm_backward,
           constrained=_all_axes(("dy", 4), ("x", 4), ("mean", 2), ("rstd", 2)) + [("gamma", 0), ("beta", 0)],
           empty=_empty_images(["dy", "x", "mean", "rstd"]),
           scalars=[("num_groups", 0, ValueError), ("num_groups", 1.5, TypeError), ("silu", 1, TypeError)]),
    Kernel("attention", attention, make_attention, constrained=_all_axes(("q", 4), ("k", 4), ("v", 4)),
           empty=lambda rng, a: {**a, **{n: a[n][:, :, :0] for n in ("q", "k", "v")}},
           scalars=[("scale", float("nan"), ValueError), ("scale", float("-inf"), ValueError),
                    ("scale", "0.5", TypeError)]),
    Kernel("attention_backward", attention_backward, make_attention_backward,
           constrained=_all_axes(("dout", 4), ("q", 4), ("k", 4), ("v", 4), ("p", 4)),
           empty=lambda rng, a: {**a, **{n: a[n][:0] for n in ("dout", "q", "k", "v", "p")}},
           scalars=[("scale", float("nan"), ValueError), ("scale", 1j, TypeError)]),
    Kernel("softmax_rows", softmax_rows, make_softmax_rows, free_rank=["s"], written=["out"],
           empty=lambda rng, a: {**a, "s": a["s"][..., :0]}, alias=_alias_softmax(["s"]), outputs=_softmax_outputs,
           scalars=[("scale", float("nan"), ValueError), ("scale", float("inf"), ValueError),
                    ("scale", None, TypeError), ("out", [0.0], TypeError)]),
    Kernel("softmax_backward_rows", softmax_backward_rows, make_softmax_backward_rows, written=["out"],
           constrained=[("dp", 0), ("p", 0)], empty=lambda rng, a: {**a, "p": a["p"][..., :0], "dp": a["dp"][..., :0]},
           alias=_alias_softmax(["p", "dp"]), outputs=_softmax_outputs,
           scalars=[("scale", float("nan"), ValueError), ("scale", "1", TypeError)]),
    Kernel("q_sample", q_sample, make_q_sample,
           constrained=[("x0", 0), ("noise", 0), ("t", 0), ("sqrt_alphas_cumprod", 0),
                        ("sqrt_one_minus_alphas_cumprod", 0)],
           empty=lambda rng, a: {**a, "x0": a["x0"][:0], "noise": a["noise"][:0], "t": a["t"][:0]},
           scalars=[("t", np.array([-1]), ValueError), ("t", "t", TypeError)]),
    Kernel("sampler_step", None, make_sampler_step, call=call_sampler_step,
           constrained=[("x", 0), ("model_output", 0), ("noise", 0), ("log_variance", 0)] + [(n, 0) for n in COEFS],
           empty=lambda rng, a: {**a, **{n: None if a[n] is None else a[n][:0]
                                        for n in ("model_output", "x", "noise", "log_variance", *COEFS)}},
           junk=_no_noise_junk, alias=_alias_step,
           scalars=[("clip_denoised", "yes", TypeError), ("return_pred_x0", None, TypeError),
                    ("noise", 0.5, TypeError), ("log_variance", 0.5, TypeError),
                    ("log_variance", [[0.5]], TypeError)]),
    Kernel("discretized_gaussian_log_likelihood", discretized_gaussian_log_likelihood, make_dgll,
           constrained=[("x", 0), ("means", 0), ("log_scales", 0)], free_rank=["log_scales"],
           empty=_empty_all(["x", "means", "log_scales"]),
           scalars=[("per_sample_bpd", 1, TypeError), ("per_sample_bpd", "no", TypeError)]),
    Kernel("normal_kl", normal_kl, make_normal_kl,
           constrained=[("mean1", 0), ("mean2", 0), ("logvar1", 0), ("logvar2", 0)], free_rank=["logvar1", "logvar2"],
           empty=_empty_all(["mean1", "logvar1", "mean2", "logvar2"]),
           scalars=[("mean2", 0.0, TypeError), ("logvar1", 0.0, TypeError), ("per_sample_bpd", None, TypeError)]),
    Kernel("adam_ema", adam_ema, make_adam_ema, written=["p", "m", "v", "ema"],
           constrained=[(n, None) for n in ("p", "g", "m", "v", "ema")], empty=_empty_all(["p", "g", "m", "v", "ema"]),
           empty_ok=True, alias=_alias_adam, outputs=_adam_outputs,
           scalars=[("step_size", float("nan"), ValueError), ("eps_hat", float("inf"), ValueError),
                    ("beta1", 1.0, ValueError), ("beta2", -0.1, ValueError), ("beta2", float("nan"), ValueError),
                    ("ema_decay", 1.5, ValueError), ("beta1", "0.9", TypeError), ("step_size", None, TypeError)]),
    Kernel("im2col", im2col, make_im2col, empty=_empty_axis("x", [0, 1, 2, 3]),
           scalars=[("k", 0, ValueError), ("stride", 0, ValueError), ("padding", -1, ValueError), ("k", 2.0, TypeError),
                    ("k", 99, ValueError), ("stride", True, TypeError)]),
    Kernel("col2im", col2im, make_col2im, constrained=_all_axes(("cols", 3)), empty=_empty_shape_arg("cols", "x_shape"),
           scalars=IMAGE_SCALARS + [("k", 0, ValueError), ("stride", -1, ValueError), ("padding", -1, ValueError),
                                    ("k", 99, ValueError), ("padding", 0.5, TypeError)]),
    Kernel("im2col_rows", im2col_rows, make_im2col_rows, empty=_empty_axis("x", [0, 1, 2, 3]),
           scalars=[("k", 0, ValueError), ("k", 2, ValueError), ("padding", -1, ValueError), ("padding", 7, ValueError),
                    ("k", "3", TypeError)]),
    Kernel("col2im_rows", col2im_rows, make_col2im_rows, constrained=_all_axes(("dcols", 2)), junk=_junk_rows,
           empty=_empty_shape_arg("dcols", "x_shape"),
           scalars=IMAGE_SCALARS + [("k", 0, ValueError), ("padding", -1, ValueError), ("k", None, TypeError)]),
    Kernel("rows_to_nchw", rows_to_nchw, make_rows_to_nchw, constrained=[("y", 1)],
           empty=lambda rng, a: {**a, "y": a["y"][:0]},
           scalars=[("B", 0, ValueError), ("H", -1, ValueError), ("W", 0, ValueError), ("padding", -1, ValueError),
                    ("H", 1.5, TypeError), ("B", "2", TypeError)]),
    Kernel("nchw_to_rows", nchw_to_rows, make_nchw_to_rows, empty=_empty_axis("g", [0, 1, 2, 3]),
           scalars=[("padding", -1, ValueError), ("padding", "1", TypeError)]),
    Kernel("winograd_input", winograd_input, make_winograd_input, empty=_empty_axis("x", [0, 1, 2, 3])),
    Kernel("winograd_input_grad", winograd_input_grad, make_winograd_input_grad, constrained=_all_axes(("dv", 3)),
           empty=_empty_shape_arg("dv", "x_shape"), scalars=IMAGE_SCALARS),
    Kernel("winograd_output", winograd_output, make_winograd_output,
           constrained=_all_axes(("m", 3)) + [("bias", 0)], empty=_empty_shape_arg("m", "y_shape"),
           scalars=[(n.replace("x_", "y_"), v, e) for n, v, e in IMAGE_SCALARS] + [("bias", [1.0], TypeError)]),
    Kernel("winograd_output_grad", winograd_output_grad, make_winograd_output_grad,
           empty=_empty_axis("dy", [0, 1, 2, 3])),
    Kernel("winograd_conv", winograd_conv, make_winograd_conv, constrained=[("x", 1), ("u", 0), ("u", 2), ("bias", 0)],
           empty=_empty_axis("x", [0, 2, 3]), scalars=[("one_pass", "yes", TypeError), ("bias", 0.5, TypeError)]),
    Kernel("winograd_conv_backward", winograd_conv_backward, make_winograd_conv_backward,
           constrained=_all_axes(("x", 4), ("dy", 4)) + [("u", 0), ("u", 1), ("u", 2)],
           empty=_empty_images(["x", "dy"]),
           scalars=[("need_dx", 1, TypeError), ("need_db", None, TypeError), ("one_pass", "no", TypeError)]),
    Kernel("batched_matmul", batched_matmul, make_batched_matmul,
           constrained=[("a", 0), ("a", 2), ("b", 0), ("b", 1)], empty=_empty_matmul, empty_ok=True),
]


# --- Mutations: each returns (args, post, expected) or None where it does not apply --------------------
# args: the host arguments (NumPy); post: functions (xp, device_args) run on the backend's copies, for
# views and aliases that must be made where the arrays live; expected: None (the call is valid: the
# reference's values), "layout" (numpy computes; cpu and cuda compute or raise TypeError) or an exception type.

def _arrays(a, kinds="fiub"):
    return [n for n, v in a.items() if isinstance(v, np.ndarray) and v.dtype.kind in kinds]


def _valid(rng, spec, a, dt, backend):
    return a, [], None


def _bad_dtype(dtype):
    def mutate(rng, spec, a, dt, backend):
        names = [n for n in _arrays(a) if a[n].dtype != np.dtype(dtype)]
        name = str(rng.choice(names))
        return {**a, name: a[name].astype(dtype)}, [], TypeError
    mutate.__name__ = f"dtype_{dtype}"
    return mutate


def _mixed(rng, spec, a, dt, backend):
    floats = _arrays(a, "f")
    data = [n for n in floats if n not in FIXED_DTYPE]
    fixed = [n for n in floats if n in FIXED_DTYPE]
    candidates = fixed + (data if len(data) >= 2 else [])
    if not candidates:
        return None
    name = str(rng.choice(candidates))
    other = F32 if a[name].dtype == F64 else F64
    return {**a, name: a[name].astype(other)}, [], TypeError


def _wrong_shape(rng, spec, a, dt, backend):
    choices = [(n, ax) for n, ax in spec.constrained if isinstance(a.get(n), np.ndarray)
               and (ax is None or ax < a[n].ndim)]
    if not choices:
        return None
    name, axis = choices[rng.integers(len(choices))]
    shape = list(a[name].shape)
    if axis is None:  # any shape at all: one more axis of 2
        shape.append(2)
    else:
        shape[axis] += 1
    return {**a, name: _randn(rng, shape, a[name].dtype) if a[name].dtype.kind == "f"
            else np.zeros(shape, a[name].dtype)}, [], ValueError


def _wrong_rank(rng, spec, a, dt, backend):
    names = [n for n in _arrays(a) if n not in spec.free_rank]
    if not names:
        return None
    name = str(rng.choice(names))
    return {**a, name: a[name][None]}, [], ValueError


def _as_list(rng, spec, a, dt, backend):
    name = str(rng.choice(_arrays(a)))
    return {**a, name: a[name].tolist()}, [], TypeError


def _non_contiguous(rng, spec, a, dt, backend):
    """The same values through other strides: Fortran order, a step, or a reversal."""
    names = [n for n in _arrays(a) if any(s > 1 for s in a[n].shape)]
    if not names:
        return None
    name = str(rng.choice(names))
    axis = int(rng.choice([i for i, s in enumerate(a[name].shape) if s > 1]))
    how = int(rng.integers(3))

    def view(xp, d):
        x = d[name]
        if how == 0 and x.ndim > 1 and sum(s > 1 for s in x.shape) > 1:
            d[name] = xp.asfortranarray(x)
        elif how == 1:
            big = xp.zeros(x.shape[:axis] + (2 * x.shape[axis],) + x.shape[axis + 1:], x.dtype)
            index = (slice(None),) * axis + (slice(None, None, 2),)
            big[index] = x
            d[name] = big[index]
        else:
            index = (slice(None),) * axis + (slice(None, None, -1),)
            d[name] = xp.ascontiguousarray(x[index])[index]
    return a, [view], "layout"


def _broadcast(rng, spec, a, dt, backend):
    """A zero-stride view along one axis (the values: the first slice, repeated)."""
    names = [n for n in _arrays(a) if any(s > 1 for s in a[n].shape)]
    if spec.junk:
        names = [n for n in names if spec.junk(a, n) is None]
    if not names:
        return None
    name = str(rng.choice(names))
    axis = int(rng.choice([i for i, s in enumerate(a[name].shape) if s > 1]))
    first = np.take(a[name], [0], axis=axis)
    values = np.ascontiguousarray(np.broadcast_to(first, a[name].shape))

    def view(xp, d):
        d[name] = xp.broadcast_to(xp.take(d[name], xp.asarray([0]), axis=axis), d[name].shape)
    return {**a, name: values}, [view], (ERRORS if name in spec.written else "layout")


def _aliased(rng, spec, a, dt, backend):
    """The same array for two arguments: the kernel's own rule where it has one, else two read-only
    arrays of one shape and dtype, which every backend must take."""
    if spec.alias:
        return spec.alias(rng, a)
    names = _arrays(a, "f")
    pairs = [(x, y) for x in names for y in names if x < y and a[x].shape == a[y].shape and a[x].dtype == a[y].dtype]
    if not pairs:
        return None
    first, second = pairs[rng.integers(len(pairs))]
    return {**a, second: a[first]}, [lambda xp, d: d.__setitem__(second, d[first])], None


def _read_only(rng, spec, a, dt, backend):
    """A read-only array: refused where the kernel writes it, taken where it only reads it. (CuPy arrays
    cannot be read-only: on cuda only the second half applies.)"""
    names = _arrays(a) + [n for n in spec.written if a.get(n, 0) is None]
    if backend == "cuda":
        names = [n for n in names if n not in spec.written]
    name = str(rng.choice(names))
    like = next(n for n in _arrays(a, "f") if n not in FIXED_DTYPE)

    def freeze(xp, d):
        if d.get(name) is None:  # an out= left None: give it a read-only array
            d[name] = xp.zeros_like(d[like])
        if xp is np:
            d[name].flags.writeable = False
    return a, [freeze], (ValueError if name in spec.written else None)


def _special(value):
    def mutate(rng, spec, a, dt, backend):
        names = _arrays(a, "f")
        name = str(rng.choice(names))
        x = np.array(a[name], copy=True)
        junk = spec.junk(a, name) if spec.junk else None
        places = np.flatnonzero(np.ones(x.shape, bool) if junk is None else ~junk)
        picks = rng.choice(places, min(places.size, _n(rng, 1, 3)), replace=False)
        signs = np.where(rng.random(picks.size) < 0.5, -1.0, 1.0)
        x.reshape(-1)[picks] = value * signs if np.isinf(value) else value
        return {**a, name: x}, [], None
    mutate.__name__ = "nan" if np.isnan(value) else "inf"
    return mutate


def _empty(rng, spec, a, dt, backend):
    if spec.empty is None:
        return None
    return spec.empty(rng, a), [], (None if spec.empty_ok else ValueError)


def _bad_scalar(rng, spec, a, dt, backend):
    if not spec.scalars:
        return None
    name, value, error = spec.scalars[rng.integers(len(spec.scalars))]
    return {**a, name: value}, [], error


MUTATIONS = [_valid, *(_bad_dtype(d) for d in BAD_DTYPES), _mixed, _wrong_shape, _wrong_rank, _as_list,
             _non_contiguous, _broadcast, _aliased, _read_only, _special(float("nan")), _special(float("inf")),
             _empty, _bad_scalar]
CASES = int(os.environ.get("PYDDPM_FUZZ_CASES", "0")) or 2 * len(MUTATIONS)


# --- Running and judging a case -----------------------------------------------------------------------

def _backend_params():
    reasons = {"cpu": "pyddpm._cpu is not built (pip install -e .)",
               "cuda": "no GPU visible to CuPy (or pyddpm._cuda not built)"}
    return [pytest.param(b, marks=pytest.mark.skipif(not backends.available(b), reason=reasons.get(b, "")))
            for b in ("numpy", "cpu", "cuda")]


def _library(backend):
    if backend == "cuda":
        import cupy
        return cupy
    return np


def _on_backend(xp, a):
    """Fresh copies of the host arguments where the backend computes (object arrays stay on the host)."""
    def move(v):
        if isinstance(v, np.ndarray) and v.dtype != object:
            return xp.array(v, copy=True)
        return v
    return {n: move(v) for n, v in a.items()}


def _host(v):
    return v.get() if hasattr(v, "get") else v


def _reference(spec, a, dt):
    """The numpy backend on float64 copies of the data arrays (those of the case's dtype)."""
    ref = {n: (v.astype(F64) if isinstance(v, np.ndarray) and v.dtype == dt else
               v.copy() if isinstance(v, np.ndarray) else v) for n, v in a.items()}
    return [None if o is None else np.asarray(o) for o in spec.outputs(spec.call("numpy", ref), ref)]


def _compare(got, want, dt):
    """Problems (a list of strings) between the outputs got and the reference's."""
    if len(got) != len(want):
        return [f"{len(got)} outputs, the reference has {len(want)}"]
    problems = []
    for i, (g, w) in enumerate(zip(got, want)):
        if g is None or w is None:
            if (g is None) != (w is None):
                problems.append(f"output {i} is {'None' if g is None else 'an array'}, the reference's is not")
            continue
        try:
            assert_matches(np.asarray(_host(g)), w, dt, f"output {i}", TOL[dt], TOL[dt])
        except AssertionError as e:
            problems.append(" ".join(str(e).split())[:300])
    return problems


def _judge(spec, backend, a, post, expected, dt):
    """None if the call behaved, else what went wrong."""
    want = None
    if expected in (None, "layout"):
        try:
            want = _reference(spec, a, dt)
        except Exception as e:  # the reference must take every valid case
            return f"the numpy reference raised {type(e).__name__}: {e}"
    xp = _library(backend)
    args = _on_backend(xp, a)
    for fn in post:
        fn(xp, args)
    try:
        result = spec.call(backend, args)
    except ERRORS as e:
        if not str(e).startswith(spec.name + ":"):
            return f"{type(e).__name__} without the kernel's name first: {e}"
        if expected is None or (expected == "layout" and (backend == "numpy" or not isinstance(e, TypeError))):
            return f"refused a valid call: {type(e).__name__}: {e}"
        if isinstance(expected, type) and not isinstance(e, expected):
            return f"raised {type(e).__name__} ({e}), want {expected.__name__}"
        return None
    except Exception as e:  # noqa: BLE001  (any other type is the failure this test looks for)
        return f"raised {type(e).__name__} (not TypeError, ValueError or MemoryError): {e}"
    if want is None:
        return f"returned for an invalid call (want {getattr(expected, '__name__', expected)})"
    problems = _compare(spec.outputs(result, args), want, dt)
    return "; ".join(problems) if problems else None


def _describe(a):
    def one(v):
        if isinstance(v, np.ndarray):
            return f"{v.dtype}{v.shape}"
        return repr(v) if not isinstance(v, list) else "list"
    return ", ".join(f"{n}={one(v)}" for n, v in a.items())


@pytest.mark.parametrize("backend", _backend_params())
@pytest.mark.parametrize("spec", KERNELS, ids=[k.name for k in KERNELS])
def test_fuzz(spec, backend):
    failures = []
    for i in range(CASES):
        mutation = MUTATIONS[i % len(MUTATIONS)]
        dt = F64 if (i // len(MUTATIONS)) % 2 and backend != "cuda" else F32
        rng = np.random.default_rng([zlib.crc32(spec.name.encode()), i])
        a = spec.make(rng, dt)
        case = mutation(rng, spec, a, dt, backend) or _valid(rng, spec, a, dt, backend)
        args, post, expected = case
        with np.errstate(all="ignore"):
            problem = _judge(spec, backend, args, post, expected, dt)
        if problem:
            failures.append(f"case {i} ({mutation.__name__}, {dt}: {_describe(args)}): {problem}")
    assert not failures, f"{len(failures)} of {CASES} cases:\n" + "\n".join(failures)


# --- The cases, by name -----------------------------------------------------------------------

ALL_BACKENDS = _backend_params()


def _arrays_on(backend, *arrays):
    xp = _library(backend)
    return tuple(xp.asarray(a) for a in arrays)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_a_wrong_dy_is_refused_by_name(backend):
    x, u, dy = _arrays_on(backend, np.ones((2, 3, 5, 7), np.float32), np.ones((16, 8, 3), np.float32),
                          np.ones((2, 8, 5, 6), np.float32))
    message = r"^winograd_conv_backward: dy must have shape \(2, 8, 5, 7\), got \(2, 8, 5, 6\)$"
    with pytest.raises(ValueError, match=message):
        winograd_conv_backward(x, u, dy, backend=backend)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("dtype", ["float16", "int32", "complex64"])
def test_other_dtypes_are_refused_by_name(backend, dtype):
    x = _arrays_on(backend, np.ones((1, 2, 3, 3), dtype))[0]
    gamma, beta = _arrays_on(backend, np.ones(2, np.float32), np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="^group_norm: x must be float32"):
        group_norm(x, gamma, beta, 1, backend=backend)
    with pytest.raises(TypeError, match="^im2col: x must be float32"):
        im2col(x, 3, 1, 1, backend=backend)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_mixed_dtypes_are_refused_by_name(backend):
    a, b = _arrays_on(backend, np.ones((2, 3, 4), np.float32), np.ones((2, 4, 5), np.float64))
    with pytest.raises(TypeError, match="^batched_matmul: b must be float32 like a, got float64$"):
        batched_matmul(a, b, backend=backend)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_negative_eps_is_refused(backend):
    x, gamma, beta = _arrays_on(backend, np.ones((1, 2, 3, 3), np.float32), np.ones(2, np.float32),
                                np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="^group_norm: eps must be >= 0, got -1e-05$"):
        group_norm(x, gamma, beta, 1, eps=-1e-5, backend=backend)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_adam_ema_refuses_aliased_state_and_leaves_it_alone(backend):
    p, g, mv, ema = _arrays_on(backend, *(np.full(5, 0.5, np.float32) for _ in range(4)))
    with pytest.raises(ValueError, match="^adam_ema: m and v share memory"):
        adam_ema(p, g, mv, mv, ema, 1e-3, 1e-8, 0.9, 0.999, 0.99, backend=backend)
    with pytest.raises(ValueError, match="^adam_ema: p and ema share memory"):
        adam_ema(p, g, mv, g[::-1].copy(), p[:], 1e-3, 1e-8, 0.9, 0.999, 0.99, backend=backend)
    assert all(float(_host(a).max()) == 0.5 for a in (p, g, mv, ema))


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_a_python_list_is_refused_by_name(backend):
    q = _arrays_on(backend, np.ones((1, 1, 2, 2), np.float32))[0]
    with pytest.raises(TypeError, match="^attention: v must be a"):
        attention(q, q, [[[[1.0, 2.0], [3.0, 4.0]]]], backend=backend)


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_the_checks_run_before_the_backend(backend, monkeypatch):
    """A bad call never reaches an extension, built or not: the check in front of it refuses first (here cuda
    needs neither CuPy nor a GPU to refuse a NumPy array)."""
    import sys

    def unreachable(name):
        raise AssertionError(f"the {name} extension was reached")
    ops_modules = [m for name, m in sys.modules.items() if name.startswith("pyddpm.ops") and hasattr(m, "extension")]
    assert len(ops_modules) >= 3  # the kernel table, the cuda launcher, and the kernels that call cpu directly
    for module in ops_modules:
        monkeypatch.setattr(module, "extension", unreachable)
    x = np.ones((1, 2, 3, 3), np.float32)
    with pytest.raises(TypeError if backend == "cuda" else ValueError, match="^group_norm: "):
        group_norm(x, np.ones(2, np.float32), np.zeros(2, np.float32), 1, eps=float("nan"), backend=backend)
    with pytest.raises(TypeError if backend == "cuda" else ValueError, match="^winograd_conv_backward: "):
        winograd_conv_backward(x, np.ones((16, 3, 2), np.float32), x, backend=backend)
    with pytest.raises(TypeError, match="^batched_matmul: "):
        batched_matmul(np.ones((1, 2, 2), np.float16), np.ones((1, 2, 2), np.float16), backend=backend)
    with pytest.raises((TypeError, ValueError), match="^adam_ema: "):
        adam_ema(x, x, x, x, x, 1e-3, 1e-8, 0.9, 0.999, 0.99, backend=backend)


def test_every_kernel_in_the_table_is_fuzzed():
    """The kernel table (pyddpm.ops.registry) and this fuzz name the same entry points: a kernel added to
    the table without a fuzz spec, or a spec for a kernel that left it, fails here."""
    from pyddpm.ops.registry import TABLE
    assert set(TABLE) == {k.name for k in KERNELS}
    for name, kernel in TABLE.items():
        assert set(kernel.implementations) == {"numpy", "cpu", "cuda"}, name
