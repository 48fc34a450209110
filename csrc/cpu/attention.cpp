// Self-attention's row kernels on the CPU: OpenMP over rows, each row's loops vectorised (omp simd; the
// float exp is exp_f32, which the compiler vectorises, unlike glibc's expf). Row sums accumulate in double
// whatever T is. The loops only ever read and write index j of a row together, so out may alias an input.
#include "cpu/attention.h"

#include <limits>

#include "kernels/attention.cuh"

namespace pyddpm {

template <typename T>
void softmax_rows_cpu(const T* s, T* p, long rows, long n, T scale) {
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; ++r) {
        const T* x = s + r * n;
        T* y = p + r * n;
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
}

template <typename T>
void softmax_backward_rows_cpu(const T* p, const T* dp, T* ds, long rows, long n, T scale) {
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; ++r) {
        const T* pr = p + r * n;
        const T* dpr = dp + r * n;
        T* out = ds + r * n;
        double dot = 0.0;
#pragma omp simd reduction(+ : dot)
        for (long j = 0; j < n; ++j) dot += double(dpr[j]) * pr[j];
        const T d = T(dot);
#pragma omp simd
        for (long j = 0; j < n; ++j) out[j] = attn::softmax_grad(pr[j], dpr[j], d, scale);
    }
}

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

void bind(py::module_& m) {
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
