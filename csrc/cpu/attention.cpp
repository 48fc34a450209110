// Self-attention's row kernels on the CPU: OpenMP over rows, each row's loops vectorised (omp simd; the
// float exp is exp_f32, which the compiler vectorises, unlike glibc's expf). Row sums accumulate in double
// whatever T is. The loops only ever read and write index j of a row together, so out may alias an input.
#include "cpu/attention.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "cpu/micro_gemm.h"

#include "kernels/attention.cuh"

namespace pyddpm {

namespace {

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
    const T inv = T(1.0 / sum);  // sum >= 1: the maximum contributes exp(0)
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

// Per-thread scratch, kept between calls (OpenMP keeps its threads) so no call pays for fresh pages;
// 64-byte aligned so each packed row of B starts a cache line. Slot tells two buffers of one T apart.
template <typename T, int Slot>
T* scratch(long count) {
    thread_local std::vector<T> buf;
    const long pad = 64 / sizeof(T);
    if (static_cast<long>(buf.size()) < count + pad) buf.resize(count + pad);
    const auto misalign = reinterpret_cast<std::uintptr_t>(buf.data()) % 64;
    return buf.data() + (misalign ? (64 - misalign) / sizeof(T) : 0);
}

long pack_size(long N, long d) { return std::max(gemm::packed_size(d, N), gemm::packed_size(N, d)); }

// One (batch, head): S = q k^T into p, softmaxed row by row while the matrix is in L2, then out = P v.
template <typename T>
void attention_one(const T* q, const T* k, const T* v, const long* qs, const long* ks, const long* vs, long N,
                   long d, T scale, T* out, T* p) {
    T* packed = scratch<T, 0>(pack_size(N, d));
    gemm::pack_b(d, N, k, ks[3], ks[2], packed);  // k^T
    gemm::matmul(N, N, d, q, qs[2], qs[3], packed, p, N);
    for (long r = 0; r < N; ++r) softmax_row(p + r * N, p + r * N, N, scale);
    gemm::pack_b(N, d, v, vs[2], vs[3], packed);
    gemm::matmul(N, d, N, p, N, 1L, packed, out, d);
}

// One (batch, head) of the backward; dP and then dS live in a per-thread N x N buffer.
template <typename T>
void attention_backward_one(const T* dout, const T* q, const T* k, const T* v, const long* os, const long* qs,
                            const long* ks, const long* vs, const T* p, long N, long d, T scale, T* dq, T* dk,
                            T* dv) {
    T* packed = scratch<T, 0>(pack_size(N, d));
    T* ds = scratch<T, 1>(N * N);
    gemm::pack_b(N, d, dout, os[2], os[3], packed);
    gemm::matmul(N, d, N, p, 1L, N, packed, dv, d);  // dv = P^T dout
    gemm::pack_b(d, N, v, vs[3], vs[2], packed);     // v^T
    gemm::matmul(N, N, d, dout, os[2], os[3], packed, ds, N);  // dP = dout v^T
    for (long r = 0; r < N; ++r) softmax_backward_row(p + r * N, ds + r * N, ds + r * N, N, scale);
    gemm::pack_b(N, d, k, ks[2], ks[3], packed);
    gemm::matmul(N, d, N, ds, N, 1L, packed, dq, d);  // dq = dS k
    gemm::pack_b(N, d, q, qs[2], qs[3], packed);
    gemm::matmul(N, d, N, ds, 1L, N, packed, dk, d);  // dk = dS^T q
}

}  // namespace

template <typename T>
void attention_cpu(View4<T> q, View4<T> k, View4<T> v, long B, long H, long N, long d, T scale, T* out, T* p) {
#pragma omp parallel for schedule(static)
    for (long bh = 0; bh < B * H; ++bh) {
        const long b = bh / H, h = bh % H;
        attention_one(q.matrix(b, h), k.matrix(b, h), v.matrix(b, h), q.stride, k.stride, v.stride, N, d, scale,
                      out + bh * N * d, p + bh * N * N);
    }
}

template <typename T>
void attention_backward_cpu(View4<T> dout, View4<T> q, View4<T> k, View4<T> v, const T* p, long B, long H, long N,
                            long d, T scale, T* dq, T* dk, T* dv) {
#pragma omp parallel for schedule(static)
    for (long bh = 0; bh < B * H; ++bh) {
        const long b = bh / H, h = bh % H;
        attention_backward_one(dout.matrix(b, h), q.matrix(b, h), k.matrix(b, h), v.matrix(b, h), dout.stride,
                               q.stride, k.stride, v.stride, p + bh * N * N, N, d, scale, dq + bh * N * d,
                               dk + bh * N * d, dv + bh * N * d);
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

// q (called `name`) as a View4: dtype T and the shape of `like` (or any 4-D shape), any strides.
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
        return is_float64("attention", "q", q) ? attention_t<double>(q, k, v, scale) : attention_t<float>(q, k, v, scale);
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
