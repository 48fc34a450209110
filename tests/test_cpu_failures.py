"""The cpu backend when things go wrong: out of memory inside a kernel, and NaN in its inputs.

Out of memory: an exception thrown inside an OpenMP region cannot leave it (std::terminate, and the Python
interpreter dies with SIGABRT), so every kernel allocates its per-thread scratch before its parallel
region (csrc/cpu/parallel.h), where a std::bad_alloc reaches Python as a MemoryError. Each entry point
that has such scratch runs here in a child process under an address-space limit (RLIMIT_AS) that leaves
room for its inputs and outputs but not for its scratch: the child must catch a MemoryError and exit
normally. Inputs are broadcast views or lazily zeroed pages where the kernel allows, so nothing large is
touched.

NaN: GroupNorm's statistics of a group with a NaN (or an infinity) are NaN, and so is every output of the
group, as in the NumPy reference (the attention kernels' NaN cases are in test_kernels_attention.py).
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kernels import assert_matches
from pyddpm.ops import backend as backends
from pyddpm.ops.group_norm import group_norm, group_norm_backward

ROOT = Path(__file__).resolve().parents[1]

needs_cpu = pytest.mark.skipif(not backends.available("cpu"), reason="pyddpm._cpu is not built (pip install -e .)")

MiB, GiB = 1 << 20, 1 << 30

# Run in the repository root, so the child imports this tree's pyddpm. The OpenMP team is started (and each
# of its threads has made its first allocation, which gives it a malloc arena) before the limit: what runs
# under it is the call alone. The limit: what the process has mapped now, plus `headroom` bytes, enough for
# the call's outputs and too little for one thread's scratch.
CHILD = """
import resource, sys
import numpy as np
from pyddpm import _cpu
_cpu.im2col(np.ones((2, 2, 5, 5), np.float32), 3, 1, 1)
{setup}
vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm + {headroom}, resource.getrlimit(resource.RLIMIT_AS)[1]))
try:
    {call}
except MemoryError as e:
    print("MemoryError:", e)
    sys.exit(0)
print("returned")
"""

F32 = "f = np.float32\n"
BIG_K = F32 + "k = 1 << 26\none = lambda shape: np.broadcast_to(f(1), shape)\n"  # 16 GiB of packed panel
WIDE = F32 + "W = {W}\n"

# entry point: (setup, call, headroom). Sizes in each comment: outputs; one thread's scratch.
CASES = {
    # c (1, 1, 1); b's packed panel k x 64 floats.
    "batched_matmul": (BIG_K, "_cpu.batched_matmul(one((1, 1, k)), one((1, k, 1)))", GiB),
    # A 1 x 1 image padded by 20000 on each side, one output pixel (stride 10^6): cols (1, 1, 1); the padded
    # plane 40001^2 floats (6 GiB) or doubles.
    "im2col": (F32, "_cpu.im2col(np.ones((1, 1, 1, 1), f), 1, 10**6, 20000)", GiB),
    "col2im": (F32, "_cpu.col2im(np.ones((1, 1, 1), f), [1, 1, 1, 1], 1, 10**6, 20000)", GiB),
    # One row of W = 2^24 pixels, k = 3: cols (9, W + 2) floats, 576 MiB; the plane 4 (W + 2) floats, 256 MiB.
    "im2col_rows": (WIDE.format(W=1 << 24), "_cpu.im2col_rows(np.zeros((1, 1, 1, W), f), 3, 1)",
                    576 * MiB + 128 * MiB),
    # The image (1, 1, 1, W) floats, 64 MiB; the plane 4 (W + 2) doubles, 512 MiB.
    "col2im_rows": (WIDE.format(W=1 << 24) + "dcols = np.zeros((9, W + 2), f)\n",
                    "_cpu.col2im_rows(dcols, [1, 1, 1, W], 3, 1)", 64 * MiB + 256 * MiB),
    # W = 2^23: v (16, 1, W / 2) floats, 256 MiB; 8 tile rows' transform, 32 (W + 2) floats, 1 GiB.
    "winograd_input": (WIDE.format(W=1 << 23), "_cpu.winograd_input(np.zeros((1, 1, 1, W), f))",
                       256 * MiB + 512 * MiB),
    # dx W floats, 32 MiB; the bordered plane 4 (W + 2) and the transforms 96 W floats, 3 GiB.
    "winograd_input_grad": (WIDE.format(W=1 << 23) + "dv = np.zeros((16, 1, W // 2), f)\n",
                            "_cpu.winograd_input_grad(dv, [1, 1, 1, W])", 32 * MiB + GiB),
    # W = 2^24: y W floats, 64 MiB; one tile row's transform 4 (W + 2) floats, 256 MiB.
    "winograd_output": (WIDE.format(W=1 << 24) + "m = np.zeros((16, 1, W // 2), f)\n",
                        "_cpu.winograd_output(m, [1, 1, 1, W])", 64 * MiB + 128 * MiB),
    # dm (16, 1, W / 2) floats, 512 MiB; the transform and a zero row 5 W floats, 320 MiB.
    "winograd_output_grad": (WIDE.format(W=1 << 24), "_cpu.winograd_output_grad(np.zeros((1, 1, 1, W), f))",
                             512 * MiB + 128 * MiB),
    # C = 2^20 channels of 1 x 1 images, K = 1: y (1, 1, 1, 1), and for the backward dx 4 MiB, du and dU's
    # partial sums 64 MiB each; V's block (16, C, 64) floats, 4 GiB.
    "winograd_conv": (F32 + "C = 1 << 20\nx, u = np.zeros((1, C, 1, 1), f), np.zeros((16, 1, C), f)\n",
                      "_cpu.winograd_conv(x, u)", GiB),
    "winograd_conv_backward": (F32 + "C = 1 << 20\nx, u = np.zeros((1, C, 1, 1), f), np.zeros((16, 1, C), f)\n",
                               "_cpu.winograd_conv_backward(x, u, np.zeros((1, 1, 1, 1), f), True, True, True)",
                               GiB),
    # N = 1, d = 2^26: out (and dq, dk, dv) (1, 1, 1, d) floats, 256 MiB each; the packed k^T 16 d floats,
    # 4 GiB.
    "attention": (BIG_K, "_cpu.attention(*[one((1, 1, 1, k))] * 3, 1.0)", 256 * MiB + GiB),
    "attention_backward": (BIG_K, "_cpu.attention_backward(*[one((1, 1, 1, k))] * 4, np.ones((1, 1, 1, 1), f), 1.0)",
                           768 * MiB + GiB),
}


@needs_cpu
@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS limits allocations only on Linux")
@pytest.mark.parametrize("entry", sorted(CASES))
def test_out_of_memory_in_a_kernel_raises_memory_error(entry):
    setup, call, headroom = CASES[entry]
    child = CHILD.format(setup=setup, call=call, headroom=headroom)
    done = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"{entry}: the child exited with {done.returncode}\n{out[-3000:]}"
    assert "MemoryError:" in done.stdout, f"{entry}: no MemoryError\n{out[-3000:]}"
    # From the kernel's scratch, not from NumPy allocating the outputs ("Unable to allocate ..."): the limit
    # left room for those.
    assert "Unable to allocate" not in done.stdout, f"{entry}: the outputs did not fit\n{out[-3000:]}"


# (B, C, H, W, G): batch 1 with odd H * W, one-pixel groups of three channels, groups of 16-wide vectors and
# a tail.
GN_SHAPES = [(1, 8, 3, 5, 4), (3, 12, 1, 1, 4), (2, 16, 5, 7, 4)]
GN_TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


@needs_cpu
@pytest.mark.parametrize("shape", GN_SHAPES)
@pytest.mark.parametrize("silu", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_group_norm_non_finite_makes_its_group_nan(shape, silu, dtype):
    """A NaN, a +inf or a -inf in a group makes its mean or rstd, and every output of the group, NaN (so
    dgamma and dbeta of its channels too), on cpu as in the reference; the other groups are untouched.
    Each direction runs on its own backend's statistics."""
    B, C, H, W, G = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal((B, C, H, W)) * 2.0 + 1.0
    Cg = C // G
    x[0, 0, 0, 0] = np.nan  # sample 0, group 0
    x[-1, Cg, -1, 0] = -np.inf  # the last sample, group 1
    x[0, 2 * Cg, 0, -1] = np.inf  # sample 0, group 2; group 3 clean in every sample
    gamma, beta, dy = rng.standard_normal(C), rng.standard_normal(C), rng.standard_normal((B, C, H, W))
    with np.errstate(invalid="ignore"):
        ref = group_norm(x, gamma, beta, G, silu, backend="numpy")
        ref_b = group_norm_backward(dy, x, gamma, beta, ref[1], ref[2], G, silu, backend="numpy")
    bad = np.zeros((B, G), bool)
    bad[0, 0] = bad[-1, 1] = bad[0, 2] = True
    assert (np.isnan(ref[2]) == bad).all(), "the reference's rstd: NaN in exactly the groups with a non-finite x"
    xb, gb, bb, dyb = (a.astype(dtype) for a in (x, gamma, beta, dy))
    out = group_norm(xb, gb, bb, G, silu, backend="cpu")
    out_b = group_norm_backward(dyb, xb, gb, bb, out[1], out[2], G, silu, backend="cpu")
    for name, want, got in zip(["y", "mean", "rstd", "dx", "dgamma", "dbeta"], (*ref, *ref_b), (*out, *out_b)):
        assert np.isfinite(want).any(), f"{name}: nothing left to compare"
        assert_matches(got, want, dtype, name, **GN_TOL[dtype])


@needs_cpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_silu_of_infinity_matches_the_reference(dtype):
    """z = -inf through the fused SiLU: -inf * sigmoid(-inf) = -inf * 0 is NaN in the reference (and its
    derivative too), not the -inf a sigmoid that saturates short of 0 would give; z = +inf stays +inf. An
    infinite beta puts every z of its channel there while the statistics stay finite. 33 positions: two
    16-wide vectors and a tail."""
    rng = np.random.default_rng(3)
    B, C, H, W, G = 2, 4, 3, 11, 2
    x, dy = rng.standard_normal((B, C, H, W)), rng.standard_normal((B, C, H, W))
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    beta[0], beta[3] = -np.inf, np.inf
    with np.errstate(invalid="ignore"):
        ref = group_norm(x, gamma, beta, G, True, backend="numpy")
        ref_b = group_norm_backward(dy, x, gamma, beta, ref[1], ref[2], G, True, backend="numpy")
    assert np.isnan(ref[0][:, 0]).all() and np.isposinf(ref[0][:, 3]).all(), "the reference's y"
    xb, gb, bb, dyb = (a.astype(dtype) for a in (x, gamma, beta, dy))
    out = group_norm(xb, gb, bb, G, True, backend="cpu")
    out_b = group_norm_backward(dyb, xb, gb, bb, out[1], out[2], G, True, backend="cpu")
    for name, want, got in zip(["y", "dx", "dgamma", "dbeta"], (ref[0], *ref_b), (out[0], *out_b)):
        assert_matches(got, want, dtype, name, **GN_TOL[dtype])
