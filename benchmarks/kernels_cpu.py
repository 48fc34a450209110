"""Each fused CPU kernel against its NumPy reference, at shapes the DDPM U-Net and sampler use.

    python benchmarks/kernels_cpu.py [--repeats 20]

For every case: both backends run on the same float32 inputs and must agree (rtol/atol per case) before
anything is timed; then they are timed interleaved and the table gives medians and cpu/numpy ratios.
"""

import argparse

import numpy as np
from harness import check_close, format_row, time_interleaved

from pyddpm.diffusion import GaussianDiffusion, make_beta_schedule
from pyddpm.ops.attention import attention, attention_backward
from pyddpm.ops.discretized_gaussian_log_likelihood import discretized_gaussian_log_likelihood
from pyddpm.ops.group_norm import group_norm, group_norm_backward
from pyddpm.ops.im2col import col2im_rows, im2col_rows
from pyddpm.ops.normal_kl import normal_kl
from pyddpm.ops.p_sample_step import p_sample_step
from pyddpm.ops.q_sample import q_sample

rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def cases():
    """(label, fn(backend) -> outputs, rtol, atol)."""
    diffusion = GaussianDiffusion(make_beta_schedule("linear", 1000))
    for shape in ((32, 64, 16, 16), (16, 128, 32, 32)):
        x, gamma, beta, dy = randn(*shape) + 3.0, randn(shape[1]), randn(shape[1]), randn(*shape)

        def gn(b, x=x, gamma=gamma, beta=beta, dy=dy):
            y, mean, rstd = group_norm(x, gamma, beta, 32, silu=True, backend=b)
            return (y, *group_norm_backward(dy, x, gamma, beta, mean, rstd, 32, silu=True, backend=b))
        yield f"group_norm+silu fwd+bwd {shape}", gn, 1e-4, 1e-3
    for B, N, d in ((32, 64, 64), (8, 256, 128)):
        q, k, v, dout = randn(B, 1, N, d), randn(B, 1, N, d), randn(B, 1, N, d), randn(B, 1, N, d)

        def attn(b, q=q, k=k, v=v, dout=dout):
            out, p = attention(q, k, v, backend=b)
            return (out, *attention_backward(dout, q, k, v, p, backend=b))
        yield f"attention fwd+bwd B={B} N={N} d={d}", attn, 1e-4, 1e-4
    x0, noise, eps = randn(64, 3, 32, 32), randn(64, 3, 32, 32), randn(64, 3, 32, 32)
    t = rng.integers(0, 1000, 64)
    yield "q_sample (64, 3, 32, 32)", lambda b: q_sample(
        x0, t, noise, diffusion.sqrt_alphas_cumprod, diffusion.sqrt_one_minus_alphas_cumprod, backend=b), 1e-5, 1e-5
    yield "p_sample_step eps+clip (64, 3, 32, 32)", lambda b: p_sample_step(
        eps, x0, t, noise, diffusion.step_tables, return_pred_x0=False, backend=b)[0], 1e-5, 1e-5
    data = (rng.integers(0, 256, (64, 3, 32, 32)) / 127.5 - 1.0).astype(np.float32)
    means = data + 0.01 * randn(64, 3, 32, 32)
    log_scales = np.full(64, np.log(0.01), np.float32)
    yield "dg log-likelihood, bits/dim (64, 3, 32, 32)", lambda b: discretized_gaussian_log_likelihood(
        data, means, log_scales, per_sample_bpd=True, backend=b), 1e-5, 1e-5
    logvar = np.full(64, -5.0, np.float32)
    yield "normal_kl, bits/dim (64, 3, 32, 32)", lambda b: normal_kl(
        x0, logvar, means, logvar - 0.1, per_sample_bpd=True, backend=b), 1e-5, 1e-5
    xc = randn(32, 64, 16, 16)
    yield "im2col_rows 3x3 (32, 64, 16, 16)", lambda b: im2col_rows(xc, 3, 1, backend=b), 0, 0
    dcols = randn(64 * 9, 32 * 16 * 18)
    yield "col2im_rows 3x3 (32, 64, 16, 16)", lambda b: col2im_rows(dcols, xc.shape, 3, 1, backend=b), 1e-5, 1e-5


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    for label, fn, rtol, atol in cases():
        check_close(label, fn("numpy"), fn("cpu"), rtol, atol)
        print(format_row(label, time_interleaved({"numpy": lambda: fn("numpy"), "cpu": lambda: fn("cpu")},
                                                 repeats=args.repeats)), flush=True)


if __name__ == "__main__":
    main()
