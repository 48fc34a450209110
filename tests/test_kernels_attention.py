"""Self-attention, forward and backward, and its two row kernels: each fused backend against the NumPy
reference (computed in float64)."""

import numpy as np
import pytest

from gradcheck import check_grads
from kernels import FAST_BACKENDS, assert_matches, randn, to_backend, to_numpy
from pyddpm import autograd as ag
from pyddpm.ops import backend as backends
from pyddpm.ops.attention import (attention, attention_backward, attention_reference, attention_backward_reference,
                                  softmax_backward_rows, softmax_backward_rows_reference, softmax_rows,
                                  softmax_rows_reference)

# Against the float64 oracle, atol relative to the output's largest magnitude (dq, dk, dv sum N products).
# Worst seen over the shapes below on the cpu backend: float32 1.3e-6 (dq), float64 2.0e-14 (dq): a margin
# of ~7x and ~50x. (At the benchmark's B=16, N=256, d=256: 2.1e-6, dk.)
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def dtypes_for(backend):
    return [np.float32] if backend == "cuda" else [np.float32, np.float64]


def assert_close(got, want, dtype, name):
    assert_matches(got, want, dtype, name, **TOL[dtype])


def random_qkv_dout(shape):
    """q, k, v and dout of ``shape`` in float64, seeded by the shape."""
    rng = np.random.default_rng(list(shape))
    return tuple(randn(rng, shape, np.float64) for _ in range(4))


def run_both(backend, dtype, q, k, v, dout, scale=None):
    """(reference outputs in float64, backend outputs in dtype) of attention and its backward."""
    out, p = attention_reference(q, k, v, scale)
    ref = (out, p, *attention_backward_reference(dout, q, k, v, p, scale))
    qb, kb, vb, doutb = to_backend(backend, *(a.astype(dtype) for a in (q, k, v, dout)))
    out_b, p_b = attention(qb, kb, vb, scale, backend=backend)
    return ref, (out_b, p_b, *attention_backward(doutb, qb, kb, vb, p_b, scale, backend=backend))


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("N", [1, 7, 64, 257])
@pytest.mark.parametrize("d", [1, 3, 32])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_reference(backend, B, heads, N, d, dtype):
    if dtype not in dtypes_for(backend):
        pytest.skip("the CUDA kernels are float32 only")
    rng = np.random.default_rng([B, heads, N, d])
    q, k, v, dout = (randn(rng, (B, heads, N, d), np.float64) for _ in range(4))
    ref, got = run_both(backend, dtype, q * 2.0, k, v + 1.0, dout)  # * 2: rows far from uniform
    for name, want, g in zip(["out", "P", "dq", "dk", "dv"], ref, got):
        assert_close(g, want, dtype, f"{name} on {backend}, shape {(B, heads, N, d)}")


# Around the CPU kernel's register tile (6 rows of 64 columns, in vectors of 16; csrc/cpu/micro_gemm.h):
# N and d one tile exactly, short of one, one past several (a partial last row tile, column panel and
# vector), and the benchmark's shape at a smaller batch.
@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", [(1, 1, 6, 64), (1, 3, 5, 15), (2, 2, 13, 17), (1, 2, 70, 130), (2, 1, 129, 65),
                                   (2, 1, 256, 128)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_reference_around_the_tiles(backend, shape, dtype):
    if dtype not in dtypes_for(backend):
        pytest.skip("the CUDA kernels are float32 only")
    q, k, v, dout = random_qkv_dout(shape)
    ref, got = run_both(backend, dtype, q * 2.0, k, v - 0.5, dout)
    for name, want, g in zip(["out", "P", "dq", "dk", "dv"], ref, got):
        assert_close(g, want, dtype, f"{name} on {backend}, shape {shape}")


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_any_strides(backend, dtype):
    """Views with several heads, passed as they are: transposed (the layout of a qkv projection), reversed,
    stepped, broadcast."""
    if dtype not in dtypes_for(backend):
        pytest.skip("the CUDA kernels are float32 only")
    rng = np.random.default_rng(6)
    bases = [randn(rng, (2, 2, 2, 19, 70), np.float64), randn(rng, (2, 2, 70, 38), np.float64),
             randn(rng, (2, 1, 70, 19), np.float64)]

    def views(qkv, v_wide, dout_one_head):
        q, k = (qkv[:, i].swapaxes(-1, -2) for i in range(2))  # (B, heads, N, d): stride N along d
        return q, k[:, :, ::-1], v_wide[..., ::2], np.broadcast_to(dout_one_head, q.shape)

    q, k, v, dout = views(*bases)
    out, p = attention_reference(q, k, v, 0.4)
    ref = (out, p, *attention_backward_reference(dout, q, k, v, p, 0.4))
    q, k, v, dout = views(*(a.astype(dtype) for a in bases))
    assert not q.flags.c_contiguous and k.strides[2] < 0 and v.strides[3] == 2 * v.itemsize and dout.strides[1] == 0
    q, k, v, dout = to_backend(backend, q, k, v, dout)
    out_b, p_b = attention(q, k, v, 0.4, backend=backend)
    got = (out_b, p_b, *attention_backward(dout, q, k, v, p_b, 0.4, backend=backend))
    for name, want, g in zip(["out", "P", "dq", "dk", "dv"], ref, got):
        assert_close(g, want, dtype, f"{name} on {backend}")


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_explicit_scale_and_strided_inputs(backend):
    """The U-Net passes q, k, v as strided views of its qkv projection; scale may be anything, even < 0."""
    rng = np.random.default_rng(5)
    qkv = randn(rng, (2, 3, 24, 9), np.float64)  # (B, 3, d, N): each of q, k, v is a transposed view
    q, k, v = (qkv[:, i].transpose(0, 2, 1)[:, None] for i in range(3))
    dout = randn(rng, (2, 1, 9, 24), np.float64)
    assert not q.flags.c_contiguous
    for scale in (0.7, -0.3):
        ref, got = run_both(backend, np.float64 if backend == "cpu" else np.float32, q, k, v, dout, scale)
        for name, want, g in zip(["out", "P", "dq", "dk", "dv"], ref, got):
            assert_close(g, want, to_numpy(g).dtype.type, f"{name} on {backend}, scale {scale}")


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_scores_do_not_overflow(backend, dtype):
    """Scores of 80 and beyond: exp overflows float32 at 88.7 and float64 at 709 without the row maximum."""
    if dtype not in dtypes_for(backend):
        pytest.skip("the CUDA kernels are float32 only")
    rng = np.random.default_rng(2)
    s = randn(rng, (3, 2, 40, 65), np.float64, scale=30.0, offset=80.0)
    s[0, 0, 0] = 800.0  # a uniform row of huge scores: every probability 1/65
    s[0, 0, 1, 7] = 1000.0  # one huge score: a one-hot row
    dp = randn(rng, s.shape, np.float64)
    p_ref = softmax_rows_reference(s, 1.0)
    ds_ref = softmax_backward_rows_reference(p_ref, dp, 1.0)
    sb, dpb = to_backend(backend, s.astype(dtype), dp.astype(dtype))
    p = softmax_rows(sb, 1.0, backend=backend)
    ds = softmax_backward_rows(p, dpb, 1.0, backend=backend)
    assert np.isfinite(to_numpy(p)).all() and np.isfinite(to_numpy(ds)).all()
    assert_close(p, p_ref, dtype, "P")
    assert_close(ds, ds_ref, dtype, "dS")
    np.testing.assert_allclose(to_numpy(p)[0, 0, 0], 1 / 65, rtol=1e-6)
    assert to_numpy(p)[0, 0, 1, 7] == 1.0
    # And through attention: |q|, |k| ~ 10 make scale * q k^T reach the hundreds.
    x = randn(rng, (1, 1, 33, 16), np.float64, scale=10.0)
    ref, got = run_both(backend, dtype, x, x, randn(rng, x.shape, np.float64), randn(rng, x.shape, np.float64))
    assert np.abs(x[0, 0] @ x[0, 0].T * 0.25).max() > 200
    for name, want, g in zip(["out", "P", "dq", "dk", "dv"], ref, got):
        assert np.isfinite(to_numpy(g)).all(), name
        assert_close(g, want, dtype, name)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", [(1,), (5, 1), (3, 7), (2, 3, 257)])
def test_row_kernels_alone(backend, shape):
    """softmax_rows and softmax_backward_rows on any leading shape, into a new array, a given one, in place."""
    rng = np.random.default_rng(len(shape))
    s, dp = randn(rng, shape, np.float64, scale=3.0), randn(rng, shape, np.float64)
    p_ref = softmax_rows_reference(s, 0.5)
    ds_ref = softmax_backward_rows_reference(p_ref, dp, 0.5)
    sb, pb, dpb = to_backend(backend, s.astype(np.float32), p_ref.astype(np.float32), dp.astype(np.float32))
    assert_close(softmax_rows(sb, 0.5, backend=backend), p_ref, np.float32, "softmax_rows")
    assert_close(softmax_backward_rows(pb, dpb, 0.5, backend=backend), ds_ref, np.float32, "softmax_backward_rows")
    into = sb * 0
    assert softmax_rows(sb, 0.5, out=into, backend=backend) is into
    assert_close(into, p_ref, np.float32, "softmax_rows into out")
    into = sb * 0
    assert softmax_backward_rows(pb, dpb, 0.5, out=into, backend=backend) is into
    assert_close(into, ds_ref, np.float32, "softmax_backward_rows into out")
    for i, alias in enumerate((pb.copy(), dpb.copy())):
        args = (alias, dpb) if i == 0 else (pb, alias)
        assert softmax_backward_rows(*args, 0.5, out=alias, backend=backend) is alias
        assert_close(alias, ds_ref, np.float32, f"softmax_backward_rows in place of {'p dp'.split()[i]}")
    assert softmax_rows(sb, 0.5, out=sb, backend=backend) is sb
    assert_close(sb, p_ref, np.float32, "softmax_rows in place")


def non_finite_scores(rng, shape):
    """Scores (float64) with, in the first six rows of every matrix: a NaN; a +inf; all -inf; two -inf in a
    finite row; a -inf and a NaN; a +inf and a -inf. The other rows finite."""
    s = randn(rng, shape, np.float64, scale=2.0)
    s[..., 0, 1] = np.nan
    s[..., 1, -1] = np.inf
    s[..., 2, :] = -np.inf
    s[..., 3, [0, -1]] = -np.inf
    s[..., 4, [0, 2]] = -np.inf, np.nan
    s[..., 5, [0, 1]] = np.inf, -np.inf
    return s


# The reference's softmax of a row (scale * s, less the row's maximum, exp, normalised): a NaN or a +inf in
# the row makes it all NaN (+inf - +inf), and so does a row all -inf (-inf - -inf); a -inf in an otherwise
# finite row is exactly 0 there. A negative scale swaps the roles of +inf and -inf.
@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", [(6, 3), (1, 9, 5), (2, 3, 8, 33), (1, 7, 257)])
@pytest.mark.parametrize("scale", [0.7, -0.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_kernels_non_finite_rows_as_the_reference(backend, shape, scale, dtype):
    if dtype not in dtypes_for(backend):
        pytest.skip("the CUDA kernels are float32 only")
    rng = np.random.default_rng([*shape, scale > 0])
    s = non_finite_scores(rng, shape)
    dp = randn(rng, shape, np.float64)
    dp[..., -1, 1], dp[..., -2, 0] = np.inf, np.nan
    with np.errstate(invalid="ignore"):
        p_ref = softmax_rows_reference(s, scale)
        ds_ref = softmax_backward_rows_reference(p_ref, dp, scale)
    nan_rows, zero_row = ([0, 1, 2, 4, 5], 3) if scale > 0 else ([0, 2, 3, 4, 5], 1)
    assert np.isnan(p_ref[..., nan_rows, :]).all()
    assert (p_ref[..., zero_row, :] == 0).any() and np.isfinite(p_ref[..., zero_row, :]).all()
    sb, dpb = to_backend(backend, s.astype(dtype), dp.astype(dtype))
    p = softmax_rows(sb, scale, backend=backend)
    assert_close(p, p_ref, dtype, f"P on {backend}")
    assert (to_numpy(p)[p_ref == 0] == 0).all(), "P is not exactly 0 where the score is -inf"
    ds = softmax_backward_rows(p, dpb, scale, backend=backend)  # from the backend's own P
    assert_close(ds, ds_ref, dtype, f"dS on {backend}")


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("shape", [(1, 3, 9, 5), (2, 3, 16, 7)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_inputs_as_the_reference(backend, shape, dtype):
    """NaN and inf in q, k, v reach out, P, dq, dk and dv where they reach the reference's, and no further."""
    if dtype not in dtypes_for(backend):
        pytest.skip("the CUDA kernels are float32 only")
    q, k, v, dout = random_qkv_dout(shape)
    q[0, 0, 2, 1] = np.nan  # (0, 0): row 2 of S, P and out NaN
    k[0, 1, 4, 0] = np.inf  # (0, 1): column 4 of S +inf (those rows NaN) or -inf (P exactly 0) by q's sign
    q[0, 1, :2, 0] = 1.0, -1.0
    v[-1, 2, 3, 1] = np.nan  # (-1, 2): column 1 of out NaN
    with np.errstate(invalid="ignore"):
        ref, got = run_both(backend, dtype, q, k, v, dout)
    p_ref = ref[1]
    assert np.isnan(p_ref[0, 0, 2]).all() and np.isfinite(np.delete(p_ref[0, 0], 2, axis=0)).all()
    assert np.isnan(p_ref[0, 1, 0]).all() and p_ref[0, 1, 1, 4] == 0 and np.isfinite(p_ref[0, 1, 1]).all()
    assert np.isnan(ref[0][-1, 2, :, 1]).all() and np.isfinite(np.delete(ref[0][-1, 2], 1, axis=1)).all()
    for name, want, g in zip(["out", "P", "dq", "dk", "dv"], ref, got):
        assert_close(g, want, dtype, f"{name} on {backend}, shape {shape}")


def test_autograd_through_the_cpu_backend():
    """pyddpm.autograd.attention runs unchanged on the cpu backend: finite differences in float64."""
    if not backends.available("cpu"):
        pytest.skip("pyddpm._cpu is not built (pip install -e .)")
    rng = np.random.default_rng(3)
    before = backends.get_backend()
    backends.set_backend("cpu")
    try:
        check_grads(ag.attention, *(randn(rng, (2, 2, 5, 3), np.float64) for _ in range(3)))
    finally:
        backends.set_backend(before)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_bad_input_raises(backend):
    rng = np.random.default_rng(4)
    q, k, v = to_backend(backend, *(randn(rng, (2, 1, 6, 4), np.float32) for _ in range(3)))
    with pytest.raises(ValueError, match="shape"):
        attention(q, k[:, :, :5], v, backend=backend)
    with pytest.raises(ValueError, match="shape"):
        attention(q[0], k[0], v[0], backend=backend)
    with pytest.raises(ValueError, match="empty"):
        attention(q[:, :, :0], k[:, :, :0], v[:, :, :0], backend=backend)
    with pytest.raises(TypeError, match="k must be float32"):
        attention(q, k.astype(np.float64), v, backend=backend)
    with pytest.raises(TypeError, match="q must be float32"):
        attention(*(a.astype(np.float16) for a in (q, k, v)), backend=backend)
    with pytest.raises(TypeError, match="array"):
        attention(q, k, to_numpy(v) if backend == "cuda" else v.tolist(), backend=backend)
    out, p = attention(q, k, v, backend=backend)
    with pytest.raises(ValueError, match="p must have shape"):
        attention_backward(out, q, k, v, p[:, :, :5], backend=backend)
    with pytest.raises(TypeError, match="p must be C-contiguous"):
        attention_backward(out, q, k, v, p.swapaxes(-1, -2), backend=backend)
    with pytest.raises(TypeError, match="dout must be float32"):
        attention_backward(out.astype(np.float64), q, k, v, p, backend=backend)
    with pytest.raises(ValueError, match="dout must have shape"):
        attention_backward(out[:1], q, k, v, p, backend=backend)
    # The row kernels check their own arguments.
    with pytest.raises(TypeError, match="contiguous"):
        softmax_rows(p.swapaxes(-1, -2), 1.0, backend=backend)
    with pytest.raises(TypeError, match="float32"):
        softmax_rows(p.astype(np.int32), 1.0, backend=backend)
    with pytest.raises(ValueError, match="empty|positive"):
        softmax_rows(p[:0], 1.0, backend=backend)
    with pytest.raises(ValueError, match="out"):
        softmax_rows(p, 1.0, out=p[:1], backend=backend)
    with pytest.raises(ValueError, match="dp"):
        softmax_backward_rows(p, p[:1], 1.0, backend=backend)
    rows = p.reshape(-1)[:48].reshape(8, 6)  # rows[:4] and rows[2:6] share two rows
    with pytest.raises(ValueError, match="overlap"):
        softmax_rows(rows[:4], 1.0, out=rows[2:6], backend=backend)
    with pytest.raises(ValueError, match="overlap"):
        softmax_backward_rows(rows[:4], rows[4:], 1.0, out=rows[2:6], backend=backend)
    softmax_rows(rows[:4], 1.0, out=rows[4:], backend=backend)  # adjacent is not overlapping
    if backend == "cpu":
        half = np.lib.stride_tricks.as_strided(q, strides=(*q.strides[:3], 2))  # half a float32 apart
        with pytest.raises(TypeError, match="whole elements"):
            attention(half, k, v, backend=backend)
        frozen = p.copy()
        frozen.flags.writeable = False
        with pytest.raises(ValueError, match="read-only"):
            softmax_rows(p, 1.0, out=frozen, backend=backend)


def test_cpu_without_simd_tiles_runs_blas_and_the_row_kernels(monkeypatch):
    """A build whose micro-kernel has no AVX-512 or AVX2 tile (gemm_simd false) takes the BLAS path,
    which must still match the reference and must not call the fused kernels."""
    if not backends.available("cpu"):
        pytest.skip("pyddpm._cpu is not built (pip install -e .)")
    ext = backends.extension("cpu")

    def refuse(*_):
        raise AssertionError("the fused kernel ran without SIMD tiles")
    monkeypatch.setattr(ext, "gemm_simd", False)
    monkeypatch.setattr(ext, "attention", refuse)
    monkeypatch.setattr(ext, "attention_backward", refuse)
    rng = np.random.default_rng(5)
    q, k, v, dout = (randn(rng, (2, 1, 9, 5), np.float64) for _ in range(4))
    ref, got = run_both("cpu", np.float32, q * 2.0, k, v, dout)
    for name, want, g in zip(["out", "P", "dq", "dk", "dv"], ref, got):
        assert_close(g, want, np.float32, f"{name} on the BLAS path")
