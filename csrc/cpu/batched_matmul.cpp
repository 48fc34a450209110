// c[i] = a[i] b[i] for a stack of matrices (reference: a @ b in NumPy; pyddpm/ops/batched_matmul.py), on
// csrc/cpu/micro_gemm.h's register tile. Its user: Winograd's 16 matmuls per convolution
// (pyddpm/autograd/conv.py), one per tile position, U (C_out, C) times V (C, P) and their backward's.
//
// Why not NumPy's stacked matmul: it calls sgemm once per matrix, and each call splits its matrix over the
// BLAS threads and meets them again at the end. Winograd's matrices are 16 middling ones (128 x 128 x 4096
// down to 32 x 32 x 2048), on which that runs well below the machine's matmul rate (benchmarks/RESULTS.md,
// "Winograd F(2x2, 3x3) and batched_matmul"). Here OpenMP splits the whole stack at once into (matrix,
// column panel) pieces, one thread each, no meeting in between: each piece packs its panel of b (k x 64
// floats: L1 at k = 128, L2 at k = 4096) and sweeps a's rows over it.
//
// Shapes: a (n, m, k), b (n, k, p) read through any strides (a transposed view costs nothing for a, a
// gather while packing for b); c (n, m, p) contiguous. float32 on the SIMD tile; double on the plain loop.
#include <algorithm>

#include "cpu/micro_gemm.h"
#include "cpu/parallel.h"

namespace pyddpm {
namespace {

// A stack of strided matrices: matrix i's element (r, j) at data[i * bs + r * rs + j * cs].
template <typename T>
struct Stack {
    const T* data;
    long bs, rs, cs;
    gemm::Matrix<T> operator[](long i) const { return {data + i * bs, rs, cs}; }
};

template <typename T>
void batched_matmul_cpu(long n, long m, long p, long k, Stack<T> a, Stack<T> b, T* c) {
    const long panels = (p + gemm::kPanel - 1) / gemm::kPanel;
    const PerThread<T> scratch(gemm::packed_size(k, gemm::kPanel));
#pragma omp parallel num_threads(scratch.threads())
    {
        T* packed = scratch.mine();  // pack_b writes all of it that matmul reads
#pragma omp for collapse(2) schedule(static)
        for (long i = 0; i < n; ++i) {
            for (long panel = 0; panel < panels; ++panel) {
                const long j0 = panel * gemm::kPanel, w = std::min(gemm::kPanel, p - j0);
                const gemm::Matrix<T> bi = b[i];
                gemm::pack_b(k, w, gemm::Matrix<T>{bi.data + j0 * bi.cs, bi.rs, bi.cs}, packed);
                gemm::matmul(m, w, k, a[i], packed, c + i * m * p + j0, p);
            }
        }
    }
}

}  // namespace
}  // namespace pyddpm

// --- Python bindings ------------------------------------------------------------------------------------
#include "bind/checks.h"
#include "bind/registry.h"

namespace pyddpm {
namespace {

template <typename T>
Stack<T> stack_of(const py::array& x) {
    const long e = static_cast<long>(x.itemsize());
    return {static_cast<const T*>(x.data()), long(x.strides(0)) / e, long(x.strides(1)) / e, long(x.strides(2)) / e};
}

template <typename T>
py::array batched_matmul_t(py::array a, py::array b) {
    const char* fn = "batched_matmul";
    check_array(fn, "a", a, py::dtype::of<T>(), {-1, -1, -1}, false);
    check_array(fn, "b", b, py::dtype::of<T>(), {a.shape(0), a.shape(2), -1}, false);
    const long n = a.shape(0), m = a.shape(1), k = a.shape(2), p = b.shape(2);
    py::array_t<T> c({n, m, p});
    if (n * m * p == 0) return c;
    if (k == 0) {
        std::fill(c.mutable_data(), c.mutable_data() + n * m * p, T(0));
        return c;
    }
    const Stack<T> sa = stack_of<T>(a), sb = stack_of<T>(b);  // with the GIL: itemsize() touches a dtype object
    T* out = c.mutable_data();
    {
        py::gil_scoped_release release;
        batched_matmul_cpu<T>(n, m, p, k, sa, sb, out);
    }
    return c;
}

void bind(py::module_& mod) {
    // Whether micro_gemm.h has a SIMD tile in this build: without one its plain loop loses to BLAS, and
    // pyddpm.ops keeps NumPy's matmul (for attention and batched_matmul both).
#if defined(PYDDPM_GEMM_SIMD)
    mod.attr("gemm_simd") = true;
#else
    mod.attr("gemm_simd") = false;
#endif
    mod.def("batched_matmul", [](py::array a, py::array b) {
        return is_float64("batched_matmul", "a", a) ? batched_matmul_t<double>(a, b) : batched_matmul_t<float>(a, b);
    }, py::arg("a"), py::arg("b"), "c[i] = a[i] @ b[i]: a (n, m, k), b (n, k, p) with any strides -> c (n, m, p)");
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
