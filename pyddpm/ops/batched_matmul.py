"""c[i] = a[i] @ b[i] for a stack of matrices: a (n, m, k), b (n, k, p) -> c (n, m, p).

The reference is the array library's own stacked matmul (`a @ b`), which is also what the numpy and cuda
backends run (CuPy: cuBLAS's batched GEMM). The cpu backend runs csrc/cpu/batched_matmul.cpp: one OpenMP
thread per (matrix, column panel) on a register-tiled micro-kernel, where NumPy calls one sgemm per matrix
(faster on stacks of middling matrices, such as Winograd's 16 per convolution: benchmarks/RESULTS.md,
"Winograd F(2x2, 3x3) and batched_matmul").
a and b may be any strided views (a transpose is free for a); the cpu kernel takes float32 or float64, and
falls back to NumPy's matmul where its build has no SIMD tile (the extension's gemm_simd).
"""

from pyddpm.ops import checks
from pyddpm.ops.backend import extension
from pyddpm.ops.registry import dispatch, register


def check_batched_matmul(backend, a, b):
    """a (n, m, k) and b (n, k, p) of one float dtype (float32 or float64; cuda: float32), any strides (whole
    elements on cpu). Empty stacks and matrices are fine: every backend returns the same (n, m, p) result."""
    fn = "batched_matmul"
    checks.float_array(fn, backend, "a", a)
    checks.float_array(fn, backend, "b", b, a, "a")
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ValueError(f"{fn}: a (n, m, k) and b (n, k, p) do not fit: a {a.shape}, b {b.shape}")
    checks.whole_element_strides(fn, backend, {"a": a, "b": b})


def batched_matmul(a, b, backend=None):
    """a (n, m, k) @ b (n, k, p) -> (n, m, p), C-contiguous."""
    return dispatch("batched_matmul", backend, a, b)


def batched_matmul_reference(a, b):
    """The reference: the array library's stacked matmul."""
    return a @ b


def _batched_matmul_cpu(a, b):
    cpu = extension("cpu")
    return cpu.batched_matmul(a, b) if cpu.gemm_simd else batched_matmul_reference(a, b)


register("batched_matmul", check_batched_matmul, numpy=batched_matmul_reference, cpu=_batched_matmul_cpu,
         cuda=batched_matmul_reference)
