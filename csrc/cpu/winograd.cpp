// Winograd F(2x2, 3x3) tile transforms on the CPU as whole arrays (layouts and math: csrc/kernels/winograd.cuh):
// the three-step convolution, whose 16 matmuls between them batched_matmul runs (csrc/cpu/batched_matmul.cpp;
// the caller: pyddpm/autograd/conv.py, for small tile counts and wide images; the one-pass kernel,
// csrc/cpu/winograd_fused.cpp, takes the rest).
//
// OpenMP over (sample, channel) planes, each owned by one thread: no atomics, and the same result for any
// thread count. Each plane runs through csrc/cpu/winograd_rows.h kChunk tile rows at a time (their
// intermediate rows stay in L1); a plane's tiles are a contiguous run of each of the 16 (C, P) slabs.
#include "cpu/winograd.h"

#include <algorithm>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/winograd_rows.h"

namespace pyddpm {
namespace {

namespace rows = winograd_rows;
constexpr long kChunk = 8;  // tile rows per call of a row transform

}  // namespace

template <typename T>
void winograd_input_cpu(const T* x, T* v, long B, long C, long H, long W) {
    const rows::Plane p = rows::plane(H, W);
    const long P = B * p.TH * p.TW, slab = C * P;
    const PerThread<T> ts(rows::t_size(p, kChunk)), zeros(W);
#pragma omp parallel num_threads(ts.threads())
    {
        T *t = ts.zeroed(), *zero = zeros.zeroed();
#pragma omp for collapse(2) schedule(static)
        for (long c = 0; c < C; ++c)
            for (long b = 0; b < B; ++b)
                for (long ty = 0; ty < p.TH; ty += kChunk)
                    rows::input(x + (b * C + c) * H * W, p, ty, std::min(ty + kChunk, p.TH),
                                v + c * P + (b * p.TH + ty) * p.TW, slab, t, zero);
    }
}

template <typename T>
void winograd_input_grad_cpu(const T* dv, T* dx, long B, long C, long H, long W) {
    const rows::Plane p = rows::plane(H, W);
    const long P = B * p.TH * p.TW, slab = C * P;
    const long n_acc = rows::bordered_size(p);
    const PerThread<T> accs(n_acc), qs(rows::q_size(p, kChunk)), ts(rows::t_size(p, kChunk));
#pragma omp parallel num_threads(accs.threads())
    {
        T *acc = accs.zeroed(), *q = qs.zeroed(), *t = ts.zeroed();
#pragma omp for collapse(2) schedule(static)
        for (long c = 0; c < C; ++c) {
            for (long b = 0; b < B; ++b) {
                std::fill(acc, acc + n_acc, T(0));
                for (long ty = 0; ty < p.TH; ty += kChunk)  // tile rows in order: a fixed order of the adds
                    rows::input_grad(dv + c * P + (b * p.TH + ty) * p.TW, slab, p, ty, std::min(ty + kChunk, p.TH),
                                     acc, q, t);
                rows::unborder(acc, p, dx + (b * C + c) * H * W);
            }
        }
    }
}

template <typename T>
void winograd_output_cpu(const T* m, const T* bias, T* y, long B, long K, long H, long W) {
    const rows::Plane p = rows::plane(H, W);
    const long P = B * p.TH * p.TW, slab = K * P;
    const PerThread<T> ts(rows::t_size(p, 1));
#pragma omp parallel num_threads(ts.threads())
    {
        T* t = ts.zeroed();
#pragma omp for collapse(2) schedule(static)
        for (long b = 0; b < B; ++b)
            for (long k = 0; k < K; ++k)
                rows::output(m + k * P + b * p.TH * p.TW, slab, p, 0, p.TH, bias ? bias[k] : T(0),
                             y + (b * K + k) * H * W, t);
    }
}

template <typename T>
void winograd_output_grad_cpu(const T* dy, T* dm, long B, long K, long H, long W) {
    const rows::Plane p = rows::plane(H, W);
    const long P = B * p.TH * p.TW, slab = K * P;
    const PerThread<T> ts(rows::t_size(p, 1)), zeros(W);
#pragma omp parallel num_threads(ts.threads())
    {
        T *t = ts.zeroed(), *zero = zeros.zeroed();
#pragma omp for collapse(2) schedule(static)
        for (long k = 0; k < K; ++k)
            for (long b = 0; b < B; ++b)
                rows::output_grad(dy + (b * K + k) * H * W, p, 0, p.TH, dm + k * P + b * p.TH * p.TW, slab, t,
                                  zero);
    }
}

#define PYDDPM_WINOGRAD_INSTANTIATE(T)                                                       \
    template void winograd_input_cpu<T>(const T*, T*, long, long, long, long);               \
    template void winograd_input_grad_cpu<T>(const T*, T*, long, long, long, long);          \
    template void winograd_output_cpu<T>(const T*, const T*, T*, long, long, long, long);    \
    template void winograd_output_grad_cpu<T>(const T*, T*, long, long, long, long);
PYDDPM_WINOGRAD_INSTANTIATE(float)
PYDDPM_WINOGRAD_INSTANTIATE(double)
#undef PYDDPM_WINOGRAD_INSTANTIATE

}  // namespace pyddpm

// --- Python bindings ------------------------------------------------------------------------------------
#include <pybind11/stl.h>

#include <optional>

#include "bind/checks.h"
#include "bind/registry.h"

namespace pyddpm {
namespace {

// (B, C, H, W) from an image shape, each checked positive.
std::vector<long> image_shape(const char* fn, const char* name, const std::vector<long>& s) {
    if (s.size() != 4)
        throw py::value_error(std::string(fn) + ": " + name + " must be (B, C, H, W), got " + std::to_string(s.size()) +
                              " dimensions");
    const char* names[] = {"B", "C", "H", "W"};
    for (int i = 0; i < 4; ++i) check_positive(fn, names[i], s[i]);
    return s;
}

std::vector<long> shape4(const py::array& a) {
    std::vector<long> s;
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s.push_back(long(a.shape(i)));
    return s;
}

long tiles_of(const std::vector<long>& s) { return s[0] * winograd::tiles(s[2]) * winograd::tiles(s[3]); }

template <typename T>
const T* in(const py::array& a) { return static_cast<const T*>(a.data()); }

template <typename T>
py::array input_t(py::array x) {
    const char* fn = "winograd_input";
    check_array(fn, "x", x, py::dtype::of<T>(), {-1, -1, -1, -1});
    const auto s = image_shape(fn, "x", shape4(x));
    py::array_t<T> v({16L, s[1], tiles_of(s)});
    {
        py::gil_scoped_release release;
        winograd_input_cpu<T>(in<T>(x), v.mutable_data(), s[0], s[1], s[2], s[3]);
    }
    return v;
}

template <typename T>
py::array input_grad_t(py::array dv, const std::vector<long>& x_shape) {
    const char* fn = "winograd_input_grad";
    const auto s = image_shape(fn, "x_shape", x_shape);
    check_array(fn, "dv", dv, py::dtype::of<T>(), {16, s[1], tiles_of(s)});
    py::array_t<T> dx({s[0], s[1], s[2], s[3]});
    {
        py::gil_scoped_release release;
        winograd_input_grad_cpu<T>(in<T>(dv), dx.mutable_data(), s[0], s[1], s[2], s[3]);
    }
    return dx;
}

template <typename T>
py::array output_t(py::array m, const std::vector<long>& y_shape, std::optional<py::array> bias) {
    const char* fn = "winograd_output";
    const auto s = image_shape(fn, "y_shape", y_shape);
    check_array(fn, "m", m, py::dtype::of<T>(), {16, s[1], tiles_of(s)});
    if (bias) check_array(fn, "bias", *bias, py::dtype::of<T>(), {s[1]});
    py::array_t<T> y({s[0], s[1], s[2], s[3]});
    {
        py::gil_scoped_release release;
        winograd_output_cpu<T>(in<T>(m), bias ? in<T>(*bias) : nullptr, y.mutable_data(), s[0], s[1], s[2], s[3]);
    }
    return y;
}

template <typename T>
py::array output_grad_t(py::array dy) {
    const char* fn = "winograd_output_grad";
    check_array(fn, "dy", dy, py::dtype::of<T>(), {-1, -1, -1, -1});
    const auto s = image_shape(fn, "dy", shape4(dy));
    py::array_t<T> dm({16L, s[1], tiles_of(s)});
    {
        py::gil_scoped_release release;
        winograd_output_grad_cpu<T>(in<T>(dy), dm.mutable_data(), s[0], s[1], s[2], s[3]);
    }
    return dm;
}

void bind(py::module_& m) {
    m.def("winograd_input", [](py::array x) {
        return is_float64("winograd_input", "x", x) ? input_t<double>(x) : input_t<float>(x);
    }, py::arg("x"), "x (B, C, H, W) -> v (16, C, P): B^T d B of every 4x4 input tile");
    m.def("winograd_input_grad", [](py::array dv, std::vector<long> x_shape) {
        return is_float64("winograd_input_grad", "dv", dv) ? input_grad_t<double>(dv, x_shape)
                                                           : input_grad_t<float>(dv, x_shape);
    }, py::arg("dv"), py::arg("x_shape"), "the adjoint of winograd_input: dv (16, C, P) -> dx of shape x_shape");
    m.def("winograd_output", [](py::array mm, std::vector<long> y_shape, std::optional<py::array> bias) {
        return is_float64("winograd_output", "m", mm) ? output_t<double>(mm, y_shape, bias)
                                                      : output_t<float>(mm, y_shape, bias);
    }, py::arg("m"), py::arg("y_shape"), py::arg("bias") = py::none(),
       "m (16, K, P) -> y of shape y_shape (B, K, H, W): A^T m A of every tile, plus bias (K,)");
    m.def("winograd_output_grad", [](py::array dy) {
        return is_float64("winograd_output_grad", "dy", dy) ? output_grad_t<double>(dy) : output_grad_t<float>(dy);
    }, py::arg("dy"), "the adjoint of winograd_output: dy (B, K, H, W) -> dm (16, K, P)");
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
