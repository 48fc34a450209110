"""Scaled dot-product self-attention: the NumPy reference (the oracle) and the dispatch to the fused kernels.

Forward, per (batch, head) over N positions with head dimension d (Vaswani et al. 2017, Eq. 1; the
self-attention at 16x16 in the DDPM U-Net, Ho et al. 2020, Appendix B):
    S = q k^T,  P = softmax(scale * S) row-wise,  out = P v
Backward, given dout:
    dv = P^T dout,  dP = dout v^T,  dS = scale * P * (dP - rowsum(dP * P)),  dq = dS k,  dk = dS^T q
Shapes: q, k, v, out (B, heads, N, d); P (B, heads, N, N) is saved for the backward (at N = 256 it is
small enough to keep, and recomputing it would cost another matmul).

cpu backend: one fused kernel each way (csrc/cpu/attention.cpp): each OpenMP thread takes whole (batch,
head) matrices and runs all of the above for one, its matmuls on a register-tiled micro-kernel
(csrc/cpu/micro_gemm.h), the softmax rows done while S is still in that core's L2. At N = 256 one
matrix's working set fits L2, so this beats six BLAS calls per matrix around two row passes over memory.
q, k, v and dout may have any strides (the U-Net's attention block passes views of its qkv projection);
float32 and float64. The micro-kernel's float32 tile needs AVX-512 or AVX2 + FMA in the build
(-march=native); on a machine with neither, its plain loop would lose to BLAS, so the cpu backend there
(extension attribute gemm_simd false) runs the cuda backend's scheme below on NumPy's BLAS.

cuda backend: the matmuls in cuBLAS (through CuPy), between them the fused row kernels softmax_rows and
softmax_backward_rows (csrc/kernels/attention.cuh, csrc/cuda/attention.cu), each one sweep over the score
matrix (a row at a time) in place of five or six whole-array passes. q, k, v and dout only meet the
matmuls, so any strides are accepted; P, dP and S, which the row kernels read, are C-contiguous buffers.

Every dispatch function checks its arguments first, the same way on every backend (check_attention and the
three beside it): one float dtype per call (float32, or float64 on numpy and cpu), the shapes, scale finite,
and for the row kernels' out= an array like the input that is either that input itself or disjoint from it.
"""

from functools import partial


from pyddpm.arrays import array_module
from pyddpm.ops import checks
from pyddpm.ops.backend import extension
from pyddpm.ops.cuda_args import Arg, empty, launch
from pyddpm.ops.registry import dispatch, register


def check_attention(backend, q, k, v, scale):
    """attention's arguments, on every backend: q, k, v of one float dtype and one non-empty (B, heads, N, d)
    shape, any strides (whole elements on cpu); scale None or a finite real. Returns the arguments with the
    scale as a float (None: d ** -0.5)."""
    _check_qkv("attention", backend, q, k, v, scale)
    return q, k, v, _scale(q, scale)


def check_attention_backward(backend, dout, q, k, v, p, scale):
    """attention_backward's arguments: attention's, dout like q (any strides), and P (B, heads, N, N) in q's
    dtype, C-contiguous on cpu and cuda (the one input a row kernel reads). Returns the arguments with the scale
    as a float."""
    fn = "attention_backward"
    B, H, N, _ = _check_qkv(fn, backend, q, k, v, scale)
    checks.float_array(fn, backend, "dout", dout, q, "q")
    checks.shape(fn, "dout", dout, q.shape)
    checks.whole_element_strides(fn, backend, {"dout": dout})
    checks.float_array(fn, backend, "p", p, q, "q")
    checks.shape(fn, "p", p, (B, H, N, N))
    checks.contiguous(fn, backend, {"p": p})
    return dout, q, k, v, p, _scale(q, scale)


def _check_qkv(fn, backend, q, k, v, scale):
    checks.float_array(fn, backend, "q", q)
    checks.float_array(fn, backend, "k", k, q, "q")
    checks.float_array(fn, backend, "v", v, q, "q")
    if q.ndim != 4 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f"{fn}: q, k, v must share one (B, heads, N, d) shape, got "
                         f"{q.shape}, {k.shape}, {v.shape}")
    if min(q.shape) < 1:
        raise ValueError(f"{fn}: q, k, v must not be empty, got shape {q.shape}")
    if scale is not None:
        checks.finite(fn, "scale", scale)
    checks.whole_element_strides(fn, backend, {"q": q, "k": k, "v": v})
    return q.shape


def check_softmax_rows(backend, s, scale, out):
    """softmax_rows' arguments: s a float array of rows (rank >= 1, not empty), C-contiguous on cpu and cuda;
    scale a finite real; out None, or an array like s that is s itself or shares no memory with it. Returns
    the arguments with the scale as a float."""
    fn = "softmax_rows"
    _check_rows(fn, backend, "s", s)
    scale = checks.finite(fn, "scale", scale)
    if out is not None:
        checks.output(fn, backend, out, s, "s", {"s": s})
    return s, scale, out


def check_softmax_backward_rows(backend, p, dp, scale, out):
    """softmax_backward_rows' arguments: p as softmax_rows' s, dp like p; scale a finite real; out None, or an
    array like p that is p or dp itself or shares no memory with either. Returns the arguments with the scale
    as a float."""
    fn = "softmax_backward_rows"
    _check_rows(fn, backend, "p", p)
    checks.float_array(fn, backend, "dp", dp, p, "p")
    checks.shape(fn, "dp", dp, p.shape)
    checks.contiguous(fn, backend, {"dp": dp})
    scale = checks.finite(fn, "scale", scale)
    if out is not None:
        checks.output(fn, backend, out, p, "p", {"p": p, "dp": dp})
    return p, dp, scale, out


def _check_rows(fn, backend, name, a):
    checks.float_array(fn, backend, name, a)
    if a.ndim < 1 or 0 in a.shape:
        raise ValueError(f"{fn}: {name} must not be empty and must have at least one axis, got shape {a.shape}")
    checks.contiguous(fn, backend, {name: a})


def _scale(q, scale):
    # The official DDPM attention block's int(C) ** -0.5, with C the head dimension d.
    return q.shape[-1] ** -0.5 if scale is None else float(scale)


def attention(q, k, v, scale=None, backend=None):
    """Returns (out, P): out (B, heads, N, d), P (B, heads, N, N). scale defaults to d ** -0.5.

    backend: "numpy" | "cpu" | "cuda" | None (the run's default, see pyddpm.ops.backend).
    """
    return dispatch("attention", backend, q, k, v, scale)


def attention_backward(dout, q, k, v, p, scale=None, backend=None):
    """Gradients (dq, dk, dv), each (B, heads, N, d), of attention's out, given dout and the saved P."""
    return dispatch("attention_backward", backend, dout, q, k, v, p, scale)


def softmax_rows(s, scale, out=None, backend=None):
    """softmax(scale * s) along the last axis of a C-contiguous array s (any leading shape); returns out.

    out: None (a new array) or an array like s, which may be s itself (in place).
    """
    return dispatch("softmax_rows", backend, s, scale, out)


def softmax_backward_rows(p, dp, scale, out=None, backend=None):
    """scale * p * (dp - rowsum(dp * p)) along the last axis: the gradient of softmax_rows w.r.t. s, given
    its output p and the gradient dp of p. out: None, or an array like p, which may be p or dp itself."""
    return dispatch("softmax_backward_rows", backend, p, dp, scale, out)


def attention_reference(q, k, v, scale=None):
    """The NumPy reference of attention: (out, P)."""
    check_attention("reference", q, k, v, scale)
    p = softmax_rows_reference(q @ k.swapaxes(-1, -2), _scale(q, scale))
    return p @ v, p


def attention_backward_reference(dout, q, k, v, p, scale=None):
    """The NumPy reference of attention_backward: (dq, dk, dv)."""
    check_attention_backward("reference", dout, q, k, v, p, scale)
    dv = p.swapaxes(-1, -2) @ dout
    ds = softmax_backward_rows_reference(p, dout @ v.swapaxes(-1, -2), _scale(q, scale))
    return ds @ k, ds.swapaxes(-1, -2) @ q, dv


def softmax_rows_reference(s, scale):
    """The NumPy reference of softmax_rows."""
    xp = array_module(s)
    s = s * scale
    s -= s.max(axis=-1, keepdims=True)  # softmax is shift-invariant; this keeps exp from overflowing
    p = xp.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    return p


def softmax_backward_rows_reference(p, dp, scale):
    """The NumPy reference of softmax_backward_rows."""
    return scale * p * (dp - (dp * p).sum(axis=-1, keepdims=True))


def _attention_by_rows(q, k, v, scale, backend):
    """attention as two matmuls around the row kernel softmax_rows, in place on the scores."""
    xp = array_module(q)
    s = xp.matmul(q, k.swapaxes(-1, -2))
    p = softmax_rows(s, scale, out=s, backend=backend)
    return xp.matmul(p, v), p


def _attention_backward_by_rows(dout, q, k, v, p, scale, backend):
    xp = array_module(q)
    dv = xp.matmul(p.swapaxes(-1, -2), dout)
    dp = xp.matmul(dout, v.swapaxes(-1, -2))
    ds = softmax_backward_rows(p, dp, scale, out=dp, backend=backend)  # scale folded in: dq, dk need none
    return xp.matmul(ds, k), xp.matmul(ds.swapaxes(-1, -2), q), dv


def _attention_cpu(q, k, v, scale):
    cpu = extension("cpu")  # one fused kernel where the build has its SIMD micro-kernel
    return cpu.attention(q, k, v, scale) if cpu.gemm_simd else _attention_by_rows(q, k, v, scale, "cpu")


def _attention_backward_cpu(dout, q, k, v, p, scale):
    cpu = extension("cpu")
    if cpu.gemm_simd:
        return cpu.attention_backward(dout, q, k, v, p, scale)
    return _attention_backward_by_rows(dout, q, k, v, p, scale, "cpu")


def _softmax_rows_numpy(s, scale, out):
    return _into(out, softmax_rows_reference(s, scale))


def _softmax_backward_rows_numpy(p, dp, scale, out):
    return _into(out, softmax_backward_rows_reference(p, dp, scale))


def _into(out, result):
    if out is None:
        return result
    out[...] = result
    return out


def _softmax_rows_cuda(s, scale, out):
    out = empty(s.shape) if out is None else out
    n = s.shape[-1]
    launch("softmax_rows", Arg("s", s, s.shape), Arg("out", out, s.shape), s.size // n, n, scale)
    return out


def _softmax_backward_rows_cuda(p, dp, scale, out):
    out = empty(p.shape) if out is None else out
    n = p.shape[-1]
    launch("softmax_backward_rows", Arg("p", p, p.shape), Arg("dp", dp, p.shape), Arg("out", out, p.shape),
           p.size // n, n, scale)
    return out


register("attention", check_attention, numpy=attention_reference, cpu=_attention_cpu,
         cuda=partial(_attention_by_rows, backend="cuda"))
register("attention_backward", check_attention_backward, numpy=attention_backward_reference,
         cpu=_attention_backward_cpu, cuda=partial(_attention_backward_by_rows, backend="cuda"))
register("softmax_rows", check_softmax_rows, numpy=_softmax_rows_numpy, cuda=_softmax_rows_cuda)
register("softmax_backward_rows", check_softmax_backward_rows, numpy=_softmax_backward_rows_numpy,
         cuda=_softmax_backward_rows_cuda)
