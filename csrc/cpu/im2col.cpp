// im2col / col2im on the CPU (the layouts: csrc/kernels/im2col.cuh). These are memory-bound copies: the win
// over NumPy is threads, loops with no per-row call overhead on rows of 8-16 values, and one pass over memory.
//
// The zero padding is fused into that pass: each (sample, channel) plane of x is read once into a per-thread
// padded tile ((H + 2p [+ 1]) x (W + 2p) values, about 1.4 KB at 16 x 16: it stays in L1), and every tap is
// copied out of the tile with no bounds logic. No padded copy of the tensor is made. (Copying the taps
// straight from x, as zero runs and short pieces per row and tap, is slower for the row layout:
// benchmarks/RESULTS.md, "Figures moved out of code comments".)
//
// The col2im's are the mirror image: per plane, every tap is added into a padded double tile in a fixed
// order (ky, then kx: the reference's order), then the image is cropped out of it. Parallel over planes,
// each owned by one thread: no atomics, no races, the same result for any thread count. Tap-major order
// matters: adding row by row puts 9 overlapping, shifted vectors into one short row in a burst, and each
// load then stalls on the store before it (store-to-load forwarding fails on partly overlapping stores).
#include "cpu/im2col.h"

#include <algorithm>

#include "cpu/parallel.h"

namespace pyddpm {
namespace {

// tile (rows, W + 2p) = the plane (H, W) with p zero rows and columns around it, and zero rows below up
// to `rows` (the row layout needs one more: its last taps run one row past the padded image).
template <typename T>
void pad_plane(const T* plane, T* tile, long H, long W, long p, long rows) {
    const long Wp = W + 2 * p;
    for (long r = 0; r < rows; ++r) {
        T* d = tile + r * Wp;
        const long y = r - p;
        if (y < 0 || y >= H) {
            for (long j = 0; j < Wp; ++j) d[j] = T(0);
            continue;
        }
        for (long j = 0; j < p; ++j) d[j] = T(0);
        for (long j = 0; j < W; ++j) d[p + j] = plane[y * W + j];
        for (long j = p + W; j < Wp; ++j) d[j] = T(0);
    }
}

}  // namespace

template <typename T>
void im2col_cpu(const T* x, T* cols, long B, long C, long H, long W, long k, long stride, long padding) {
    const long Ho = (H + 2 * padding - k) / stride + 1, Wo = (W + 2 * padding - k) / stride + 1;
    const long Wp = W + 2 * padding, n_pad = (H + 2 * padding) * Wp;
    const PerThread<T> tiles(n_pad);
#pragma omp parallel num_threads(tiles.threads())
    {
        T* pad = tiles.mine();  // pad_plane writes all of it
#pragma omp for schedule(static)
        for (long bc = 0; bc < B * C; ++bc) {
            pad_plane(x + bc * H * W, pad, H, W, padding, H + 2 * padding);
            T* d = cols + bc * k * k * Ho * Wo;
            for (long ky = 0; ky < k; ++ky) {
                for (long kx = 0; kx < k; ++kx) {
                    for (long oy = 0; oy < Ho; ++oy, d += Wo) {
                        const T* s = pad + (oy * stride + ky) * Wp + kx;
                        if (stride == 1) {
                            for (long ox = 0; ox < Wo; ++ox) d[ox] = s[ox];
                        } else {
                            for (long ox = 0; ox < Wo; ++ox) d[ox] = s[ox * stride];
                        }
                    }
                }
            }
        }
    }
}

template <typename T>
void col2im_cpu(const T* cols, T* x, long B, long C, long H, long W, long k, long stride, long padding) {
    const long Ho = (H + 2 * padding - k) / stride + 1, Wo = (W + 2 * padding - k) / stride + 1;
    const long Wp = W + 2 * padding, n_pad = (H + 2 * padding) * Wp;
    const PerThread<double> planes(n_pad);
#pragma omp parallel num_threads(planes.threads())
    {
        double* acc = planes.mine();  // the padded plane: taps add to it with no bounds logic
#pragma omp for schedule(static)
        for (long bc = 0; bc < B * C; ++bc) {
            std::fill(acc, acc + n_pad, 0.0);
            const T* s = cols + bc * k * k * Ho * Wo;
            for (long ky = 0; ky < k; ++ky) {
                for (long kx = 0; kx < k; ++kx) {
                    for (long oy = 0; oy < Ho; ++oy, s += Wo) {
                        double* a = acc + (oy * stride + ky) * Wp + kx;  // a[ox * stride]
                        if (stride == 1) {
                            for (long ox = 0; ox < Wo; ++ox) a[ox] += s[ox];
                        } else {
                            for (long ox = 0; ox < Wo; ++ox) a[ox * stride] += s[ox];
                        }
                    }
                }
            }
            T* d = x + bc * H * W;
            for (long y = 0; y < H; ++y)
                for (long i = 0; i < W; ++i) d[y * W + i] = T(acc[(y + padding) * Wp + padding + i]);
        }
    }
}

template <typename T>
void im2col_rows_cpu(const T* x, T* cols, long B, long C, long H, long W, long k, long padding) {
    const long Wp = W + 2 * padding, L = H * Wp, n_flat = (H + 2 * padding + 1) * Wp;
    const PerThread<T> planes(n_flat);
#pragma omp parallel num_threads(planes.threads())
    {
        T* flat = planes.mine();  // pad_plane writes all of it
#pragma omp for collapse(2) schedule(static)
        for (long c = 0; c < C; ++c) {
            for (long b = 0; b < B; ++b) {
                pad_plane(x + (b * C + c) * H * W, flat, H, W, padding, H + 2 * padding + 1);
                for (long tap = 0; tap < k * k; ++tap) {
                    const T* s = flat + tap / k * Wp + tap % k;
                    T* d = cols + ((c * k * k + tap) * B + b) * L;
                    for (long q = 0; q < L; ++q) d[q] = s[q];
                }
            }
        }
    }
}

template <typename T>
void col2im_rows_cpu(const T* cols, T* x, long B, long C, long H, long W, long k, long padding) {
    const long Wp = W + 2 * padding, L = H * Wp, n_flat = (H + 2 * padding + 1) * Wp;
    const PerThread<double> planes(n_flat);
#pragma omp parallel num_threads(planes.threads())
    {
        double* flat = planes.mine();  // the padded, flattened plane: tap (ky, kx) adds at ky*Wp + kx
#pragma omp for collapse(2) schedule(static)
        for (long c = 0; c < C; ++c) {
            for (long b = 0; b < B; ++b) {
                std::fill(flat, flat + n_flat, 0.0);
                for (long tap = 0; tap < k * k; ++tap) {
                    const T* s = cols + ((c * k * k + tap) * B + b) * L;
                    double* a = flat + tap / k * Wp + tap % k;
                    for (long q = 0; q < L; ++q) a[q] += s[q];
                }
                T* d = x + (b * C + c) * H * W;
                for (long y = 0; y < H; ++y)
                    for (long i = 0; i < W; ++i) d[y * W + i] = T(flat[(y + padding) * Wp + padding + i]);
            }
        }
    }
}

template <typename T>
void rows_to_nchw_cpu(const T* y, T* out, long B, long C, long H, long W, long padding) {
    const long Wp = W + 2 * padding, L = H * Wp;
#pragma omp parallel for collapse(2) schedule(static)
    for (long b = 0; b < B; ++b) {
        for (long c = 0; c < C; ++c) {
            const T* s = y + (c * B + b) * L;
            T* d = out + (b * C + c) * H * W;
            for (long i = 0; i < H; ++i)
                for (long j = 0; j < W; ++j) d[i * W + j] = s[i * Wp + j];
        }
    }
}

template <typename T>
void nchw_to_rows_cpu(const T* g, T* out, long B, long C, long H, long W, long padding) {
    const long Wp = W + 2 * padding, L = H * Wp;
#pragma omp parallel for collapse(2) schedule(static)
    for (long c = 0; c < C; ++c) {
        for (long b = 0; b < B; ++b) {
            const T* s = g + (b * C + c) * H * W;
            T* d = out + (c * B + b) * L;
            for (long i = 0; i < H; ++i) {
                for (long j = 0; j < W; ++j) d[i * Wp + j] = s[i * W + j];
                for (long j = W; j < Wp; ++j) d[i * Wp + j] = T(0);
            }
        }
    }
}

#define PYDDPM_IM2COL_INSTANTIATE(T)                                                                        \
    template void im2col_cpu<T>(const T*, T*, long, long, long, long, long, long, long);                   \
    template void col2im_cpu<T>(const T*, T*, long, long, long, long, long, long, long);                   \
    template void im2col_rows_cpu<T>(const T*, T*, long, long, long, long, long, long);                    \
    template void col2im_rows_cpu<T>(const T*, T*, long, long, long, long, long, long);                    \
    template void rows_to_nchw_cpu<T>(const T*, T*, long, long, long, long, long);                         \
    template void nchw_to_rows_cpu<T>(const T*, T*, long, long, long, long, long);
PYDDPM_IM2COL_INSTANTIATE(float)
PYDDPM_IM2COL_INSTANTIATE(double)
#undef PYDDPM_IM2COL_INSTANTIATE

}  // namespace pyddpm

// --- Python bindings ------------------------------------------------------------------------------------
#include <pybind11/stl.h>

#include "bind/checks.h"
#include "bind/registry.h"

namespace pyddpm {
namespace {

// The conv geometry every entry point checks first: positive sizes, and a window that fits.
struct Geometry {
    long B, C, H, W, k, stride, padding, Ho, Wo;
};

Geometry geometry(const char* fn, const std::vector<long>& shape, long k, long stride, long padding) {
    if (shape.size() != 4)
        throw py::value_error(std::string(fn) + ": the image must be (B, C, H, W), got " +
                              std::to_string(shape.size()) + " dimensions");
    const char* names[] = {"B", "C", "H", "W"};
    for (int i = 0; i < 4; ++i) check_positive(fn, names[i], shape[i]);
    check_positive(fn, "k", k);
    check_positive(fn, "stride", stride);
    if (padding < 0) throw py::value_error(std::string(fn) + ": padding must be >= 0, got " + std::to_string(padding));
    const long Ho = (shape[2] + 2 * padding - k) / stride + 1, Wo = (shape[3] + 2 * padding - k) / stride + 1;
    if (shape[2] + 2 * padding < k || shape[3] + 2 * padding < k)
        throw py::value_error(std::string(fn) + ": an image of " + std::to_string(shape[2]) + " x " +
                              std::to_string(shape[3]) + " is too small for kernel " + std::to_string(k) +
                              " with padding " + std::to_string(padding));
    return {shape[0], shape[1], shape[2], shape[3], k, stride, padding, Ho, Wo};
}

Geometry same_geometry(const char* fn, const std::vector<long>& shape, long k, long padding) {
    if (2 * padding != k - 1)
        throw py::value_error(std::string(fn) + ": the row layout needs 'same' padding (2*padding == k - 1), got k " +
                              std::to_string(k) + ", padding " + std::to_string(padding));
    return geometry(fn, shape, k, 1, padding);
}

std::vector<long> shape_of(const char* fn, const char* name, const py::array& a) {
    if (a.ndim() != 4)
        throw py::value_error(std::string(fn) + ": " + name + " must be (B, C, H, W), got shape " + shape_str(a));
    return {long(a.shape(0)), long(a.shape(1)), long(a.shape(2)), long(a.shape(3))};
}

template <typename T>
const T* in(const py::array& a) { return static_cast<const T*>(a.data()); }

template <typename T>
py::array im2col_t(py::array x, long k, long stride, long padding) {
    const char* fn = "im2col";
    check_array(fn, "x", x, py::dtype::of<T>(), {-1, -1, -1, -1});
    const Geometry g = geometry(fn, shape_of(fn, "x", x), k, stride, padding);
    py::array_t<T> cols({g.B, g.C * k * k, g.Ho * g.Wo});
    {
        py::gil_scoped_release release;
        im2col_cpu<T>(in<T>(x), cols.mutable_data(), g.B, g.C, g.H, g.W, k, stride, padding);
    }
    return cols;
}

template <typename T>
py::array col2im_t(py::array cols, const std::vector<long>& x_shape, long k, long stride, long padding) {
    const char* fn = "col2im";
    const Geometry g = geometry(fn, x_shape, k, stride, padding);
    check_array(fn, "cols", cols, py::dtype::of<T>(), {g.B, g.C * k * k, g.Ho * g.Wo});
    py::array_t<T> x({g.B, g.C, g.H, g.W});
    {
        py::gil_scoped_release release;
        col2im_cpu<T>(in<T>(cols), x.mutable_data(), g.B, g.C, g.H, g.W, k, stride, padding);
    }
    return x;
}

template <typename T>
py::array im2col_rows_t(py::array x, long k, long padding) {
    const char* fn = "im2col_rows";
    check_array(fn, "x", x, py::dtype::of<T>(), {-1, -1, -1, -1});
    const Geometry g = same_geometry(fn, shape_of(fn, "x", x), k, padding);
    py::array_t<T> cols({g.C * k * k, g.B * g.H * (g.W + 2 * padding)});
    {
        py::gil_scoped_release release;
        im2col_rows_cpu<T>(in<T>(x), cols.mutable_data(), g.B, g.C, g.H, g.W, k, padding);
    }
    return cols;
}

template <typename T>
py::array col2im_rows_t(py::array cols, const std::vector<long>& x_shape, long k, long padding) {
    const char* fn = "col2im_rows";
    const Geometry g = same_geometry(fn, x_shape, k, padding);
    check_array(fn, "dcols", cols, py::dtype::of<T>(), {g.C * k * k, g.B * g.H * (g.W + 2 * padding)});
    py::array_t<T> x({g.B, g.C, g.H, g.W});
    {
        py::gil_scoped_release release;
        col2im_rows_cpu<T>(in<T>(cols), x.mutable_data(), g.B, g.C, g.H, g.W, k, padding);
    }
    return x;
}

template <typename T>
py::array rows_to_nchw_t(py::array y, long B, long H, long W, long padding) {
    const char* fn = "rows_to_nchw";
    if (padding < 0) throw py::value_error("rows_to_nchw: padding must be >= 0, got " + std::to_string(padding));
    check_positive(fn, "B", B);
    check_positive(fn, "H", H);
    check_positive(fn, "W", W);
    check_array(fn, "y", y, py::dtype::of<T>(), {-1, B * H * (W + 2 * padding)});
    const long C = y.shape(0);
    check_positive(fn, "y.shape[0]", C);
    py::array_t<T> out({B, C, H, W});
    {
        py::gil_scoped_release release;
        rows_to_nchw_cpu<T>(in<T>(y), out.mutable_data(), B, C, H, W, padding);
    }
    return out;
}

template <typename T>
py::array nchw_to_rows_t(py::array g, long padding) {
    const char* fn = "nchw_to_rows";
    check_array(fn, "g", g, py::dtype::of<T>(), {-1, -1, -1, -1});
    if (padding < 0) throw py::value_error("nchw_to_rows: padding must be >= 0, got " + std::to_string(padding));
    const std::vector<long> s = shape_of(fn, "g", g);
    const char* names[] = {"B", "C", "H", "W"};
    for (int i = 0; i < 4; ++i) check_positive(fn, names[i], s[i]);
    py::array_t<T> out({s[1], s[0] * s[2] * (s[3] + 2 * padding)});
    {
        py::gil_scoped_release release;
        nchw_to_rows_cpu<T>(in<T>(g), out.mutable_data(), s[0], s[1], s[2], s[3], padding);
    }
    return out;
}

void bind(py::module_& m) {
    m.def("im2col", [](py::array x, long k, long stride, long padding) {
        return is_float64("im2col", "x", x) ? im2col_t<double>(x, k, stride, padding) : im2col_t<float>(x, k, stride, padding);
    }, py::arg("x"), py::arg("k"), py::arg("stride"), py::arg("padding"), "x (B, C, H, W) -> cols (B, C*k*k, Ho*Wo)");
    m.def("col2im", [](py::array cols, std::vector<long> x_shape, long k, long stride, long padding) {
        return is_float64("col2im", "cols", cols) ? col2im_t<double>(cols, x_shape, k, stride, padding)
                                                   : col2im_t<float>(cols, x_shape, k, stride, padding);
    }, py::arg("cols"), py::arg("x_shape"), py::arg("k"), py::arg("stride"), py::arg("padding"),
       "the adjoint of im2col: cols (B, C*k*k, Ho*Wo) -> image of shape x_shape");
    m.def("im2col_rows", [](py::array x, long k, long padding) {
        return is_float64("im2col_rows", "x", x) ? im2col_rows_t<double>(x, k, padding) : im2col_rows_t<float>(x, k, padding);
    }, py::arg("x"), py::arg("k"), py::arg("padding"), "x (B, C, H, W) -> cols (C*k*k, B*H*Wp), row layout");
    m.def("col2im_rows", [](py::array dcols, std::vector<long> x_shape, long k, long padding) {
        return is_float64("col2im_rows", "dcols", dcols) ? col2im_rows_t<double>(dcols, x_shape, k, padding)
                                                          : col2im_rows_t<float>(dcols, x_shape, k, padding);
    }, py::arg("dcols"), py::arg("x_shape"), py::arg("k"), py::arg("padding"),
       "the adjoint of im2col_rows: dcols (C*k*k, B*H*Wp) -> image of shape x_shape");
    m.def("rows_to_nchw", [](py::array y, long B, long H, long W, long padding) {
        return is_float64("rows_to_nchw", "y", y) ? rows_to_nchw_t<double>(y, B, H, W, padding)
                                                   : rows_to_nchw_t<float>(y, B, H, W, padding);
    }, py::arg("y"), py::arg("B"), py::arg("H"), py::arg("W"), py::arg("padding"),
       "y (C, B*H*Wp) in row layout -> (B, C, H, W)");
    m.def("nchw_to_rows", [](py::array g, long padding) {
        return is_float64("nchw_to_rows", "g", g) ? nchw_to_rows_t<double>(g, padding) : nchw_to_rows_t<float>(g, padding);
    }, py::arg("g"), py::arg("padding"), "g (B, C, H, W) -> (C, B*H*Wp), zeros in the junk columns");
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
