"""Every fused kernel on the GPU against its NumPy oracle, at the shapes of the paper's CIFAR-10 U-Net.

The oracle runs in float64 on the host from the same float32 inputs; tolerances are those of the CPU
kernel tests (tests/test_kernels_*.py) scaled for the larger reductions.
"""

import numpy as np
import pytest

from kernels import to_backend

from pyddpm import ops
from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule
from pyddpm.ops import winograd as wg
from pyddpm.ops.im2col_rows import col2im_rows, im2col_rows, im2col_rows_reference, rows_to_nchw_reference
from pyddpm.reverse_step import step_coefs

rng = np.random.default_rng(0)
DIFFUSION = GaussianDiffusion(make_beta_schedule("linear", 1000))


def randn(*shape, offset=0.0):
    return (rng.standard_normal(shape) + offset).astype(np.float32)


def on_gpu(*arrays):
    return to_backend("cuda", *arrays)


def check(got, want, rtol, atol):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(ops.to_host(g), np.asarray(w), rtol=rtol, atol=atol)


@pytest.mark.parametrize("shape", [(8, 128, 32, 32), (16, 256, 8, 8), (1, 64, 32, 32)])
def test_group_norm_silu(shape):
    x, gamma, beta, dy = randn(*shape, offset=2.0), randn(shape[1]), randn(shape[1]), randn(*shape)
    x64, gamma64, beta64 = (a.astype(np.float64) for a in (x, gamma, beta))  # one dtype per call
    want = ops.group_norm(x64, gamma64, beta64, 32, silu=True, backend="numpy")
    got = ops.group_norm(*on_gpu(x, gamma, beta), 32, silu=True, backend="cuda")
    check(got, want, 1e-4, 1e-4)
    want_b = ops.group_norm_backward(dy.astype(np.float64), x64, gamma64, beta64, *want[1:], 32, silu=True,
                                     backend="numpy")
    got_b = ops.group_norm_backward(*on_gpu(dy, x, gamma, beta), *got[1:], 32, silu=True, backend="cuda")
    check(got_b, want_b, 1e-3, 1e-3)


@pytest.mark.parametrize("shape", [(8, 1, 256, 128), (4, 1, 64, 256), (1, 1, 1024, 64)])
def test_attention(shape):
    q, k, v, dout = randn(*shape), randn(*shape), randn(*shape), randn(*shape)
    q64, k64, v64, dout64 = (a.astype(np.float64) for a in (q, k, v, dout))
    want = ops.attention(q64, k64, v64, backend="numpy")
    got = ops.attention(*on_gpu(q, k, v), backend="cuda")
    check(got, want, 1e-4, 1e-4)
    want_b = ops.attention_backward(dout64, q64, k64, v64, want[1], backend="numpy")
    got_b = ops.attention_backward(*on_gpu(dout, q, k, v), got[1], backend="cuda")
    check(got_b, want_b, 1e-3, 1e-3)


@pytest.mark.parametrize("clip", [True, False])
def test_noising_and_reverse_step(clip):
    shape = (16, 3, 32, 32)
    x0, noise, out = randn(*shape), randn(*shape), randn(*shape)
    t = rng.integers(0, 1000, shape[0])
    t[0] = 0  # index 0: the last step adds no noise
    d = DIFFUSION
    want_xt = ops.q_sample(x0, t, noise, d.sqrt_alphas_cumprod, d.sqrt_one_minus_alphas_cumprod, backend="numpy")
    got_xt = ops.q_sample(*on_gpu(x0), t, *on_gpu(noise), d.sqrt_alphas_cumprod,
                          d.sqrt_one_minus_alphas_cumprod, backend="cuda")
    check(got_xt, want_xt, 1e-5, 1e-5)
    coefs = ops.StepCoefs(*step_coefs(d.step_tables, t, "eps"))
    want = ops.sampler_step(out, want_xt, noise, coefs, clip, backend="numpy")
    got = ops.sampler_step(*on_gpu(out, want_xt, noise), coefs, clip, backend="cuda")
    check(got, want, 1e-5, 1e-5)
    # Per-sample coefficients that differ (a DDIM-like step, no noise for half the batch), on device arrays.
    coefs = ops.StepCoefs(*(rng.uniform(-1.5, 1.5, shape[0]) for _ in range(5)))
    coefs.next_from_noise[::2] = 0.0
    noise[::2] = np.nan  # not read where next_from_noise is 0
    want = ops.sampler_step(out, want_xt, noise, coefs, clip, backend="numpy")
    got = ops.sampler_step(*on_gpu(out, want_xt, noise), ops.StepCoefs(*on_gpu(*coefs)), clip, backend="cuda")
    check(got, want, 1e-5, 1e-5)
    quiet = coefs._replace(next_from_noise=np.zeros(shape[0]))
    check(ops.sampler_step(*on_gpu(out, want_xt), None, quiet, clip, backend="cuda"),
          ops.sampler_step(out, want_xt, None, quiet, clip, backend="numpy"), 1e-5, 1e-5)


@pytest.mark.parametrize("clip", [True, False])
def test_reverse_step_with_learned_variance(clip):
    """The noise scaled per element by exp(log_variance / 2) (a learned variance, Nichol & Dhariwal 2021), at
    the U-Net's shape; at index 0 there is no noise, and the NaN noise and the NaN or overflowing log-variance
    planted there must not show."""
    shape = (16, 3, 32, 32)
    out, xt, noise = randn(*shape), randn(*shape), randn(*shape)
    lv = rng.uniform(-4.0, 2.0, shape).astype(np.float32)  # sigma from e^-2 to e
    t = rng.integers(1, 1000, shape[0])
    t[::4] = 0
    coefs = ops.StepCoefs(*step_coefs(DIFFUSION.step_tables, t, "eps"))
    nan_noise, bad_lv = noise.copy(), lv.copy()
    nan_noise[t == 0] = np.nan
    bad_lv[t == 0] = 1e30
    bad_lv[t == 0, 0] = np.nan
    f64 = [a.astype(np.float64) for a in (out, xt, noise, lv)]
    want = ops.sampler_step(*f64[:3], coefs, clip, log_variance=f64[3], backend="numpy")
    for z, v in ((nan_noise, lv), (noise, bad_lv)):
        got = ops.sampler_step(*on_gpu(out, xt, z), ops.StepCoefs(*on_gpu(*coefs)), clip,
                               log_variance=on_gpu(v)[0], backend="cuda")
        check(got, want, 1e-5, 1e-5)
    quiet = coefs._replace(next_from_noise=np.zeros(shape[0]))
    check(ops.sampler_step(*on_gpu(out, xt), None, quiet, clip, log_variance=on_gpu(bad_lv)[0], backend="cuda"),
          ops.sampler_step(*f64[:2], None, quiet, clip, backend="numpy"), 1e-5, 1e-5)


def test_likelihood_terms():
    shape = (16, 3, 32, 32)
    x = (rng.integers(0, 256, shape) / 127.5 - 1.0).astype(np.float32)
    means, log_scales = randn(*shape), randn(*shape) - 3.0
    for per_sample in (False, True):
        want = ops.discretized_gaussian_log_likelihood(x, means, log_scales, per_sample, backend="numpy")
        got = ops.discretized_gaussian_log_likelihood(*on_gpu(x, means, log_scales), per_sample, backend="cuda")
        check(got, want, 1e-4, 1e-4)
        m2, lv2 = randn(*shape), randn(*shape)
        want = ops.normal_kl(means, log_scales, m2, lv2, per_sample, backend="numpy")
        got = ops.normal_kl(*on_gpu(means, log_scales, m2, lv2), per_sample, backend="cuda")
        check(got, want, 1e-4, 1e-4)


@pytest.mark.parametrize("shape", [(8, 128, 32, 32), (3, 5, 7, 9)])
def test_im2col_rows_and_adjoint(shape):
    x = randn(*shape)
    cols = im2col_rows(x, 3, 1, backend="numpy")
    check(im2col_rows(*on_gpu(x), 3, 1, backend="cuda"), cols, 0, 0)
    dcols = im2col_rows(randn(*shape), 3, 1, backend="numpy")  # junk columns zero, as col2im_rows requires
    check(col2im_rows(*on_gpu(dcols), shape, 3, 1, backend="cuda"),
          col2im_rows(dcols, shape, 3, 1, backend="numpy"), 1e-5, 1e-5)


# The 3x3 convolutions of the CIFAR-10 U-Net's first two resolutions, and an odd image (partial tiles).
WINOGRAD_SHAPES = [(8, 128, 32, 32), (8, 256, 16, 16), (3, 5, 7, 9)]


@pytest.mark.parametrize("shape", WINOGRAD_SHAPES)
def test_winograd_tile_transforms(shape):
    B, C, H, W = shape
    P = B * wg.tiles(H) * wg.tiles(W)
    x, dv, m, dy, bias = randn(*shape), randn(16, C, P), randn(16, C, P), randn(*shape), randn(C)
    f64 = [a.astype(np.float64) for a in (x, dv, m, dy, bias)]
    gx, gdv, gm, gdy, gbias = on_gpu(x, dv, m, dy, bias)
    check(wg.winograd_input(gx, backend="cuda"), wg.winograd_input_reference(f64[0]), 1e-5, 1e-5)
    check(wg.winograd_input_grad(gdv, shape, backend="cuda"), wg.winograd_input_grad_reference(f64[1], shape),
          1e-5, 1e-5)
    check(wg.winograd_output(gm, shape, gbias, backend="cuda"), wg.winograd_output_reference(f64[2], shape, f64[4]),
          1e-5, 1e-5)
    check(wg.winograd_output(gm, shape, backend="cuda"), wg.winograd_output_reference(f64[2], shape), 1e-5, 1e-5)
    check(wg.winograd_output_grad(gdy, backend="cuda"), wg.winograd_output_grad_reference(f64[3]), 1e-5, 1e-5)


@pytest.mark.parametrize("shape", WINOGRAD_SHAPES)
def test_winograd_convolution(shape):
    """The whole forward on the GPU (kernels and cuBLAS's 16 matmuls) against the direct 3x3 convolution."""
    B, C, H, W = shape
    x, w, bias = randn(*shape), randn(C, C, 3, 3) / np.float32(3 * np.sqrt(C)), randn(C)
    gx, gw, gbias = on_gpu(x, w, bias)
    got = wg.winograd_output(wg.winograd_weight(gw) @ wg.winograd_input(gx, backend="cuda"), shape, gbias,
                             backend="cuda")
    cols = im2col_rows_reference(x.astype(np.float64), 3, 1)
    want = rows_to_nchw_reference(w.reshape(C, -1).astype(np.float64) @ cols, B, H, W, 1) + bias[:, None, None]
    check(got, want, 1e-4, 1e-4)
