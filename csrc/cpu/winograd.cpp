// Winograd F(2x2, 3x3) tile transforms on the CPU (layouts and math: csrc/kernels/winograd.cuh). Between
// them the convolution is 16 matrix multiplies, run by batched_matmul (csrc/cpu/batched_matmul.cpp; the
// caller: pyddpm/autograd/conv.py).
//
// OpenMP over (sample, channel) planes, each owned by one thread: no atomics, and the same result for any
// thread count. A plane is first copied into a per-thread zero-bordered tile (a few KB: it stays in L1), so
// the tiles at the edges, which read the padding or the rows and columns past an odd image, need no bounds
// logic. Each of the 16 transformed values of a tile goes to its own (16, C, P) slab, where one plane's
// tiles are a contiguous run: 16 sequential write streams.
#include "cpu/winograd.h"

#include <algorithm>
#include <vector>

#include "kernels/winograd.cuh"

namespace pyddpm {
namespace {

// tile (rows, cols) = the plane (H, W) placed at (off, off), zeros elsewhere.
template <typename T>
void place(const T* plane, T* tile, long H, long W, long off, long rows, long cols) {
    std::fill(tile, tile + rows * cols, T(0));
    for (long i = 0; i < H; ++i) std::copy(plane + i * W, plane + (i + 1) * W, tile + (i + off) * cols + off);
}

}  // namespace

template <typename T>
void winograd_input_cpu(const T* x, T* v, long B, long C, long H, long W) {
    const long TH = winograd::tiles(H), TW = winograd::tiles(W), P = B * TH * TW, slab = C * P;
    const long rows = 2 * TH + 2, cols = 2 * TW + 2;  // one zero row and column before the image, 1-2 after
#pragma omp parallel
    {
        std::vector<T> pad(rows * cols), t(4 * cols);
#pragma omp for collapse(2) schedule(static)
        for (long c = 0; c < C; ++c) {
            for (long b = 0; b < B; ++b) {
                place(x + (b * C + c) * H * W, pad.data(), H, W, 1, rows, cols);
                T* out = v + c * P + b * TH * TW;
                for (long ty = 0; ty < TH; ++ty, out += TW) {
                    // B^T d down the columns of the tile row's 4 input rows, all columns at once; then
                    // along each of the 4 results, tile by tile: both loops vectorise across the row.
                    const T* r = pad.data() + 2 * ty * cols;
                    for (long j = 0; j < cols; ++j) winograd::bt(r + j, int(cols), t.data() + j, int(cols));
                    for (int i = 0; i < 4; ++i)
                        for (long tx = 0; tx < TW; ++tx)
                            winograd::bt(t.data() + i * cols + 2 * tx, 1, out + 4 * i * slab + tx, int(slab));
                }
            }
        }
    }
}

template <typename T>
void winograd_input_grad_cpu(const T* dv, T* dx, long B, long C, long H, long W) {
    const long TH = winograd::tiles(H), TW = winograd::tiles(W), P = B * TH * TW, slab = C * P;
    const long rows = 2 * TH + 2, cols = 2 * TW + 2;
#pragma omp parallel
    {
        std::vector<T> acc(rows * cols), q(4 * (TW + 1)), t(4 * cols), u(4 * cols);
#pragma omp for collapse(2) schedule(static)
        for (long c = 0; c < C; ++c) {
            for (long b = 0; b < B; ++b) {
                std::fill(acc.begin(), acc.end(), T(0));
                const T* in = dv + c * P + b * TH * TW;
                for (long ty = 0; ty < TH; ++ty, in += TW) {  // tile rows in order: a fixed order of the adds
                    // winograd_input's two steps backwards. Along the rows: B (v_i0..v_i3) per tile gives
                    // q (4, TW + 1) (a zero column after the last tile), and the overlapping tiles sum into
                    // t_i[2k] = q0[k] + q2[k - 1], t_i[2k + 1] = q1[k] + q3[k - 1]. Then B down the columns
                    // adds the tile row's 4 input rows into acc. Every loop runs along a row: they vectorise.
                    for (int i = 0; i < 4; ++i) {
                        for (long tx = 0; tx < TW; ++tx)
                            winograd::b(in + 4 * i * slab + tx, int(slab), q.data() + tx, int(TW + 1));
                        for (int jj = 0; jj < 4; ++jj) q[jj * (TW + 1) + TW] = T(0);
                        T* ti = t.data() + i * cols;
                        ti[0] = q[0];
                        ti[1] = q[TW + 1];
                        for (long k = 1; k <= TW; ++k) {
                            ti[2 * k] = q[k] + q[2 * (TW + 1) + k - 1];
                            ti[2 * k + 1] = q[(TW + 1) + k] + q[3 * (TW + 1) + k - 1];
                        }
                    }
                    for (long j = 0; j < cols; ++j) winograd::b(t.data() + j, int(cols), u.data() + j, int(cols));
                    T* r = acc.data() + 2 * ty * cols;
                    for (long j = 0; j < 4 * cols; ++j) r[j] += u[j];
                }
                T* out = dx + (b * C + c) * H * W;  // the image is acc without its border
                for (long i = 0; i < H; ++i)
                    std::copy(acc.begin() + (i + 1) * cols + 1, acc.begin() + (i + 1) * cols + 1 + W, out + i * W);
            }
        }
    }
}

template <typename T>
void winograd_output_cpu(const T* m, const T* bias, T* y, long B, long K, long H, long W) {
    const long TH = winograd::tiles(H), TW = winograd::tiles(W), P = B * TH * TW, slab = K * P;
    const long cols = 2 * TW;  // whole tiles: one column more than an odd image
#pragma omp parallel
    {
        std::vector<T> t(8 * TW), row(2 * cols);
#pragma omp for collapse(2) schedule(static)
        for (long b = 0; b < B; ++b) {
            for (long k = 0; k < K; ++k) {
                const T* in = m + k * P + b * TH * TW;
                const T add = bias ? bias[k] : T(0);
                T* out = y + (b * K + k) * H * W;
                for (long ty = 0; ty < TH; ++ty, in += TW) {
                    // A^T m down the columns (xi = 4r + s: r at stride 4 slabs), tile by tile: t (2, 4, TW);
                    // then along the rows, into the tile row's two output rows.
                    for (int s = 0; s < 4; ++s)
                        for (long tx = 0; tx < TW; ++tx)
                            winograd::at(in + s * slab + tx, int(4 * slab), t.data() + s * TW + tx, int(4 * TW));
                    for (int i = 0; i < 2; ++i)
                        for (long tx = 0; tx < TW; ++tx)
                            winograd::at(t.data() + 4 * i * TW + tx, int(TW), row.data() + i * cols + 2 * tx, 1);
                    for (long i = 0; i < 2 && 2 * ty + i < H; ++i)
                        for (long j = 0; j < W; ++j) out[(2 * ty + i) * W + j] = row[i * cols + j] + add;
                }
            }
        }
    }
}

template <typename T>
void winograd_output_grad_cpu(const T* dy, T* dm, long B, long K, long H, long W) {
    const long TH = winograd::tiles(H), TW = winograd::tiles(W), P = B * TH * TW, slab = K * P;
    const long rows = 2 * TH, cols = 2 * TW;
#pragma omp parallel
    {
        std::vector<T> full(rows * cols), t(8 * TW);
#pragma omp for collapse(2) schedule(static)
        for (long k = 0; k < K; ++k) {
            for (long b = 0; b < B; ++b) {
                place(dy + (b * K + k) * H * W, full.data(), H, W, 0, rows, cols);  // zeros past an odd edge
                T* out = dm + k * P + b * TH * TW;
                for (long ty = 0; ty < TH; ++ty, out += TW) {
                    // winograd_output's two steps backwards: A along each of the tile row's two rows,
                    // t (2, 4, TW); then A down the columns into the 16 slabs (xi = 4r + s).
                    for (int i = 0; i < 2; ++i)
                        for (long tx = 0; tx < TW; ++tx)
                            winograd::a(full.data() + (2 * ty + i) * cols + 2 * tx, 1, t.data() + 4 * i * TW + tx, int(TW));
                    for (int s = 0; s < 4; ++s)
                        for (long tx = 0; tx < TW; ++tx)
                            winograd::a(t.data() + s * TW + tx, int(4 * TW), out + s * slab + tx, int(4 * slab));
                }
            }
        }
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
