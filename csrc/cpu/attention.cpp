// Self-attention on the CPU (reference: pyddpm/ops/attention.py), fused: one (batch, head) matrix per
// OpenMP thread, from its inputs to its outputs, with no BLAS call.
//     forward:  S = q k^T, P = softmax(scale * S) row by row, out = P v                      (P is returned)
//     backward: dv = P^T dout, dP = dout v^T, dS = scale * P * (dP - rowsum(dP * P)), dq = dS k, dk = dS^T q
// Shapes: q, k, v, dout, out, dq, dk, dv (B, heads, N, d); P (B, heads, N, N). q, k, v and dout are read
// through their strides (the U-Net passes views of its qkv projection): each is packed once per matrix
// for the matmul that reads it as B, and read in place where it is A.
//
// Why fused: at the U-Net's N = 256 one matrix and everything made from it (at d = 128: q, k, v 128 KB
// each, S/P and dS 256 KB each) fit one core's L2, so S goes from the matmul to the softmax and on to P v
// without a trip to memory, and the 16 small matmuls per call (csrc/cpu/micro_gemm.h) do not each pay a
// BLAS call's threading and packing. One (batch, head) per thread: B * heads below the thread count
// leaves threads idle (the U-Net's attention has one head and batches of 2 and more).
#include "cpu/attention.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "cpu/parallel.h"
#include "kernels/attention.cuh"

namespace pyddpm {

namespace {

// The row kernels softmax_rows and softmax_backward_rows: the CUDA path keeps cuBLAS matmuls around them
// (the math, csrc/kernels/attention.cuh, is shared), and they are bound here too, for that path's tests.
// OpenMP over rows, each row's loops vectorised (omp simd, with exp_f32: glibc's expf does not vectorise),
// row sums in double whatever T is. The loops only ever read and write index j of a row together, so out
// may alias an input.

// One row of softmax_rows: y = softmax(scale * x), n values; y may be x.
template <typename T>
inline void softmax_row(const T* x, T* y, long n, T scale) {
    T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
    for (long j = 0; j < n; ++j) m = scale * x[j] > m ? scale * x[j] : m;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (long j = 0; j < n; ++j) {
        const T e = attn::softmax_numerator(x[j], scale, m);
        y[j] = e;
        sum += e;
    }
    // sum >= 1 (the maximum contributes exp(0)), or NaN: a NaN in the row, or an infinite maximum (inf - inf
    // in the exponent), gives a NaN term, and then a row all NaN, as in the reference.
    const T inv = T(1.0 / sum);
#pragma omp simd
    for (long j = 0; j < n; ++j) y[j] *= inv;
}

// One row of softmax_backward_rows: out = scale * p * (dp - sum(dp * p)), n values; out may be p or dp.
template <typename T>
inline void softmax_backward_row(const T* p, const T* dp, T* out, long n, T scale) {
    double dot = 0.0;
#pragma omp simd reduction(+ : dot)
    for (long j = 0; j < n; ++j) dot += double(dp[j]) * p[j];
    const T d = T(dot);
#pragma omp simd
    for (long j = 0; j < n; ++j) out[j] = attn::softmax_grad(p[j], dp[j], d, scale);
}

}  // namespace

template <typename T>
void softmax_rows_cpu(const T* s, T* p, long rows, long n, T scale) {
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; ++r) softmax_row(s + r * n, p + r * n, n, scale);
}

template <typename T>
void softmax_backward_rows_cpu(const T* p, const T* dp, T* ds, long rows, long n, T scale) {
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; ++r) softmax_backward_row(p + r * n, dp + r * n, ds + r * n, n, scale);
}

namespace {

// Every thread's scratch (csrc/cpu/parallel.h), held by the calling thread and kept between its calls so
// no call pays for fresh pages; each slice 64-byte aligned, so each packed row of B starts a cache line.
// Slot tells two buffers of one T apart. Nothing in it is read before it is written.
template <typename T, int Slot>
const PerThread<T>& scratch(long count) {
    thread_local PerThread<T> buf;
    buf.reserve(count);
    return buf;
}

long pack_size(long N, long d) { return std::max(gemm::packed_size(d, N), gemm::packed_size(N, d)); }

// One (batch, head): S = q k^T into p, softmaxed row by row while the matrix is in L2, then out = P v.
// `packed`: pack_size(N, d) elements.
template <typename T>
void attention_one(gemm::Matrix<T> q, gemm::Matrix<T> k, gemm::Matrix<T> v, long N, long d, T scale, T* out, T* p,
                   T* packed) {
    gemm::pack_b(d, N, k.t(), packed);
    gemm::matmul(N, N, d, q, packed, p, N);
    for (long r = 0; r < N; ++r) softmax_row(p + r * N, p + r * N, N, scale);
    gemm::pack_b(N, d, v, packed);
    gemm::matmul(N, d, N, gemm::Matrix<T>{p, N, 1}, packed, out, d);
}

// One (batch, head) of the backward; dP and then dS live in `ds`, N x N (`packed` as above).
template <typename T>
void attention_backward_one(gemm::Matrix<T> dout, gemm::Matrix<T> q, gemm::Matrix<T> k, gemm::Matrix<T> v,
                            const T* p, long N, long d, T scale, T* dq, T* dk, T* dv, T* packed, T* ds) {
    const gemm::Matrix<T> P{p, N, 1}, dS{ds, N, 1};
    gemm::pack_b(N, d, dout, packed);
    gemm::matmul(N, d, N, P.t(), packed, dv, d);  // dv = P^T dout
    gemm::pack_b(d, N, v.t(), packed);
    gemm::matmul(N, N, d, dout, packed, ds, N);  // dP = dout v^T
    for (long r = 0; r < N; ++r) softmax_backward_row(p + r * N, ds + r * N, ds + r * N, N, scale);
    gemm::pack_b(N, d, k, packed);
    gemm::matmul(N, d, N, dS, packed, dq, d);  // dq = dS k
    gemm::pack_b(N, d, q, packed);
    gemm::matmul(N, d, N, dS.t(), packed, dk, d);  // dk = dS^T q
}

}  // namespace

template <typename T>
void attention_cpu(View4<T> q, View4<T> k, View4<T> v, long B, long H, long N, long d, T scale, T* out, T* p) {
    const PerThread<T>& packed = scratch<T, 0>(pack_size(N, d));
#pragma omp parallel for schedule(static) num_threads(packed.threads())
    for (long bh = 0; bh < B * H; ++bh) {
        const long b = bh / H, h = bh % H;
        attention_one(q.matrix(b, h), k.matrix(b, h), v.matrix(b, h), N, d, scale, out + bh * N * d, p + bh * N * N,
                      packed.mine());
    }
}

template <typename T>
void attention_backward_cpu(View4<T> dout, View4<T> q, View4<T> k, View4<T> v, const T* p, long B, long H, long N,
                            long d, T scale, T* dq, T* dk, T* dv) {
    const PerThread<T>& packed = scratch<T, 0>(pack_size(N, d));
    const PerThread<T>& ds = scratch<T, 1>(N * N);
#pragma omp parallel for schedule(static) num_threads(packed.threads())
    for (long bh = 0; bh < B * H; ++bh) {
        const long b = bh / H, h = bh % H, nd = bh * N * d;
        attention_backward_one(dout.matrix(b, h), q.matrix(b, h), k.matrix(b, h), v.matrix(b, h), p + bh * N * N, N,
                               d, scale, dq + nd, dk + nd, dv + nd, packed.mine(), ds.mine());
    }
}

template void attention_cpu<float>(View4<float>, View4<float>, View4<float>, long, long, long, long, float, float*,
                                   float*);
template void attention_cpu<double>(View4<double>, View4<double>, View4<double>, long, long, long, long, double,
                                    double*, double*);
template void attention_backward_cpu<float>(View4<float>, View4<float>, View4<float>, View4<float>, const float*,
                                            long, long, long, long, float, float*, float*, float*);
template void attention_backward_cpu<double>(View4<double>, View4<double>, View4<double>, View4<double>,
                                             const double*, long, long, long, long, double, double*, double*,
                                             double*);
template void softmax_rows_cpu<float>(const float*, float*, long, long, float);
template void softmax_rows_cpu<double>(const double*, double*, long, long, double);
template void softmax_backward_rows_cpu<float>(const float*, const float*, float*, long, long, float);
template void softmax_backward_rows_cpu<double>(const double*, const double*, double*, long, long, double);

}  // namespace pyddpm

// --- Python bindings ------------------------------------------------------------------------------------
#include "bind/checks.h"
#include "bind/registry.h"

namespace pyddpm {
namespace {

std::vector<py::ssize_t> shape_of(const py::array& a) { return {a.shape(), a.shape() + a.ndim()}; }

// Any C-contiguous array of rows (the last axis) of dtype dt, not empty.
void check_rows(const char* fn, const char* name, const py::array& a, const py::dtype& dt) {
    check_array(fn, name, a, dt, std::vector<py::ssize_t>(a.ndim(), -1));
    if (a.ndim() < 1) throw py::value_error(std::string(fn) + ": " + name + " must have at least one axis");
    check_positive(fn, (std::string(name) + ".size").c_str(), a.size());
}

// `out` like `like`, writeable, and either one of the inputs itself or disjoint from all of them: the
// kernels write index j of a row after reading index j, which is safe only for exact aliasing.
py::array output(const char* fn, const py::object& out, const py::array& like, std::initializer_list<py::array> ins) {
    if (out.is_none()) return py::array(like.dtype(), shape_of(like));
    if (!py::isinstance<py::array>(out)) throw py::type_error(std::string(fn) + ": out must be a NumPy array or None");
    auto o = out.cast<py::array>();
    check_array(fn, "out", o, like.dtype(), shape_of(like));
    if (!o.writeable()) throw py::value_error(std::string(fn) + ": out is read-only");
    const auto* lo = static_cast<const char*>(o.data());
    const auto* hi = lo + o.nbytes();
    for (const auto& in : ins) {
        const auto* a = static_cast<const char*>(in.data());
        if (a != lo && a < hi && lo < a + in.nbytes())
            throw py::value_error(std::string(fn) + ": out partially overlaps an input (pass the input itself, "
                                  "or a separate array)");
    }
    return o;
}

template <typename T>
py::array softmax_t(py::array s, double scale, py::object out) {
    const char* fn = "softmax_rows";
    check_rows(fn, "s", s, py::dtype::of<T>());
    py::array p = output(fn, out, s, {s});
    const long n = s.shape(s.ndim() - 1), rows = s.size() / n;
    {
        py::gil_scoped_release release;
        softmax_rows_cpu<T>(static_cast<const T*>(s.data()), static_cast<T*>(p.mutable_data()), rows, n, T(scale));
    }
    return p;
}

template <typename T>
py::array softmax_backward_t(py::array p, py::array dp, double scale, py::object out) {
    const char* fn = "softmax_backward_rows";
    check_rows(fn, "p", p, py::dtype::of<T>());
    check_array(fn, "dp", dp, py::dtype::of<T>(), shape_of(p));
    py::array ds = output(fn, out, p, {p, dp});
    const long n = p.shape(p.ndim() - 1), rows = p.size() / n;
    {
        py::gil_scoped_release release;
        softmax_backward_rows_cpu<T>(static_cast<const T*>(p.data()), static_cast<const T*>(dp.data()),
                                     static_cast<T*>(ds.mutable_data()), rows, n, T(scale));
    }
    return ds;
}

// `a` (called `name`) as a View4, checked: dtype T, `shape` (-1 matches any size), strides of whole elements.
template <typename T>
View4<T> view4(const char* fn, const char* name, const py::array& a, const std::vector<py::ssize_t>& shape) {
    check_array(fn, name, a, py::dtype::of<T>(), shape, /*c_contiguous=*/false);
    View4<T> view{static_cast<const T*>(a.data()), {}};
    for (int i = 0; i < 4; ++i) view.stride[i] = static_cast<long>(a.strides(i) / a.itemsize());
    return view;
}

template <typename T>
py::tuple attention_t(py::array q, py::array k, py::array v, double scale) {
    const char* fn = "attention";
    const View4<T> qv = view4<T>(fn, "q", q, {-1, -1, -1, -1});
    const std::vector<py::ssize_t> shape = shape_of(q);
    const View4<T> kv = view4<T>(fn, "k", k, shape), vv = view4<T>(fn, "v", v, shape);
    const long B = shape[0], H = shape[1], N = shape[2], d = shape[3];
    check_positive(fn, "q.size", q.size());
    py::array_t<T> out(shape), p(std::vector<py::ssize_t>{B, H, N, N});
    {
        py::gil_scoped_release release;
        attention_cpu<T>(qv, kv, vv, B, H, N, d, T(scale), out.mutable_data(), p.mutable_data());
    }
    return py::make_tuple(out, p);
}

template <typename T>
py::tuple attention_backward_t(py::array dout, py::array q, py::array k, py::array v, py::array p, double scale) {
    const char* fn = "attention_backward";
    const View4<T> qv = view4<T>(fn, "q", q, {-1, -1, -1, -1});
    const std::vector<py::ssize_t> shape = shape_of(q);
    const View4<T> kv = view4<T>(fn, "k", k, shape), vv = view4<T>(fn, "v", v, shape);
    const View4<T> ov = view4<T>(fn, "dout", dout, shape);
    const long B = shape[0], H = shape[1], N = shape[2], d = shape[3];
    check_array(fn, "p", p, py::dtype::of<T>(), {B, H, N, N});
    check_positive(fn, "q.size", q.size());
    py::array_t<T> dq(shape), dk(shape), dv(shape);
    {
        py::gil_scoped_release release;
        attention_backward_cpu<T>(ov, qv, kv, vv, static_cast<const T*>(p.data()), B, H, N, d, T(scale),
                                  dq.mutable_data(), dk.mutable_data(), dv.mutable_data());
    }
    return py::make_tuple(dq, dk, dv);
}

void bind(py::module_& m) {
    m.def("attention", [](py::array q, py::array k, py::array v, double scale) {
        return is_float64("attention", "q", q) ? attention_t<double>(q, k, v, scale)
                                               : attention_t<float>(q, k, v, scale);
    }, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("scale"),
       "(out, P) of softmax(scale * q k^T) v; q, k, v (B, heads, N, d) with any strides.");
    m.def("attention_backward", [](py::array dout, py::array q, py::array k, py::array v, py::array p, double scale) {
        return is_float64("attention_backward", "q", q) ? attention_backward_t<double>(dout, q, k, v, p, scale)
                                                        : attention_backward_t<float>(dout, q, k, v, p, scale);
    }, py::arg("dout"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("p"), py::arg("scale"),
       "(dq, dk, dv) of attention given dout and the forward's P (C-contiguous); any strides elsewhere.");
    m.def("softmax_rows", [](py::array s, double scale, py::object out) {
        return is_float64("softmax_rows", "s", s) ? softmax_t<double>(s, scale, out) : softmax_t<float>(s, scale, out);
    }, py::arg("s"), py::arg("scale"), py::arg("out") = py::none(),
       "softmax(scale * s) along the last axis; out may be s (in place). Returns out.");
    m.def("softmax_backward_rows", [](py::array p, py::array dp, double scale, py::object out) {
        return is_float64("softmax_backward_rows", "p", p) ? softmax_backward_t<double>(p, dp, scale, out)
                                                            : softmax_backward_t<float>(p, dp, scale, out);
    }, py::arg("p"), py::arg("dp"), py::arg("scale"), py::arg("out") = py::none(),
       "scale * p * (dp - rowsum(dp * p)) along the last axis; out may be p or dp (in place). Returns out.");
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
