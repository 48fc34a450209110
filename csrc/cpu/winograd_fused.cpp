// A whole Winograd F(2x2, 3x3) convolution in one pass on the CPU (math: csrc/kernels/winograd.cuh): the
// input transform, the 16 matrix multiplies and the output transform for one block of tiles at a time.
// Why: the three-step path (csrc/cpu/winograd.cpp around batched_matmul) writes V and M (4x the image each
// comes from) to memory and reads them back, and at 32-64 channels, where the products are short (k = C),
// that traffic costs as much as the multiplies (benchmarks/RESULTS.md, "In one pass"). Here a block is one
// packed panel of the micro-kernel (csrc/cpu/micro_gemm.h): up to kPanel tiles, so V's block (16, C, kPanel)
// is already in the layout the kernel reads, nothing is packed, and V and M stay in L2 (128 KB each at 32
// channels). The three steps stay for small tile counts (one block would leave the other threads idle),
// images wider than 2 * kPanel pixels, and the GPU (pyddpm/autograd/conv.py decides).
#include "cpu/winograd_fused.h"

#include <algorithm>
#include <vector>

#include "cpu/micro_gemm.h"
#include "cpu/parallel.h"
#include "cpu/winograd_rows.h"

namespace pyddpm {
namespace {

namespace rows = winograd_rows;
using gemm::kPanel;
constexpr long kGroups = 8;          // dU's partial sums: enough groups to share among a few threads,
constexpr long kPartials = 1L << 21;  // and at most about this many values in all

// Blocks never straddle two samples: a block is either `S` whole samples (when a sample has at most kPanel
// tiles) or `R` tile rows of one sample. Tile j of a block is ((b - b0) * rows + (ty - ty0)) * TW + tx.
struct Blocks {
    long B;
    rows::Plane plane;  // each sample's H x W pixels, TH x TW tiles
    long S;      // samples per block (>= 1), or 0 when a block is R tile rows of one sample
    long R;      // tile rows per block in that case
    long per;    // blocks per sample (S = 0) or 1
    long units;  // backward's units: blocks of whole samples, or samples
    long count;  // blocks

    Blocks(long B_, long H, long W) : B(B_), plane(rows::plane(H, W)) {
        const long TH = plane.TH, TW = plane.TW, per_sample = TH * TW;
        if (per_sample <= kPanel) {
            S = kPanel / per_sample, R = TH, per = 1, units = (B + S - 1) / S, count = units;
        } else {
            S = 0, R = std::max(1L, kPanel / TW), per = (TH + R - 1) / R, units = B, count = B * per;
        }
    }
    struct Block {
        long b0, b1, ty0, ty1;
        long rows() const { return ty1 - ty0; }
    };
    Block operator[](long i) const {
        if (S) return {i * S, std::min(i * S + S, B), 0, plane.TH};
        const long b = i / per, ty0 = (i % per) * R;
        return {b, b + 1, ty0, std::min(ty0 + R, plane.TH)};
    }
    long tiles(const Block& k) const { return (k.b1 - k.b0) * k.rows() * plane.TW; }
    long max_rows() const { return std::min(R, plane.TH); }  // tile rows of one sample in one block
};

// The distance between the 16 slabs of a block's V or M (rows x wp each), 16 elements (a cache line of
// floats) more than their size: the transforms write all 16 at once, and at a multiple of 4 KB apart the 16
// streams would share one L1 set and their stores would look like they alias the loads (4K aliasing;
// benchmarks/RESULTS.md, "In one pass").
inline long slab_size(long rows, long wp) { return rows * wp + 16; }

// One thread's scratch: the block's V (16, C, wp) and M (16, K, wp) in the packed layout, what the row
// transforms (csrc/cpu/winograd_rows.h) need for a block's tile rows of one plane, and dU's packed V^T.
template <typename T>
struct Scratch {
    long C, K;
    T *v, *m, *t, *q, *zero, *packed;
    T* v_at(long xi, long wp) const { return v + xi * slab_size(C, wp); }  // V[xi] (C, wp)
    T* m_at(long xi, long wp) const { return m + xi * slab_size(K, wp); }  // M[xi] (K, wp)
};

// Every thread's Scratch, allocated before the region (csrc/cpu/parallel.h); `packed` only where asked.
template <typename T>
struct Scratches {
    long C, K;
    PerThread<T> v, m, t, q, zero, packed;
    Scratches(long C_, long K_, const Blocks& g, long packed_size = 0)
        : C(C_), K(K_), v(16 * slab_size(C, kPanel)), m(16 * slab_size(K, kPanel)),
          t(rows::t_size(g.plane, g.max_rows())), q(rows::q_size(g.plane, g.max_rows())), zero(g.plane.W),
          packed(packed_size) {}
    int threads() const { return v.threads(); }
    Scratch<T> mine() const {
        return {C, K, v.zeroed(), m.zeroed(), t.zeroed(), q.zeroed(), zero.zeroed(), packed.zeroed()};
    }
};

// The column of tile (b, ty, tx = 0) in block k's panel; tile tx is tx columns further.
inline long column(const Blocks& g, const Blocks::Block& k, long b, long ty) {
    return ((b - k.b0) * k.rows() + ty - k.ty0) * g.plane.TW;
}

// The four maps for one block, plane by plane: V of x into s.v, y from s.m (plus the bias), dM of dy into
// s.m (db, K values or null, gains dy's sum per channel), and B dv B^T from s.v added into acc, the unit's
// zero-bordered planes (samples from `b_first`, C each).
template <typename T>
void input_block(const T* x, long C, const Blocks& g, const Blocks::Block& k, long wp, const Scratch<T>& s) {
    const long HW = g.plane.H * g.plane.W, slab = slab_size(C, wp);
    for (long c = 0; c < C; ++c)
        for (long b = k.b0; b < k.b1; ++b)
            rows::input(x + (b * C + c) * HW, g.plane, k.ty0, k.ty1, s.v + c * wp + column(g, k, b, k.ty0),
                        slab, s.t, s.zero);
}

template <typename T>
void output_block(const T* bias, T* y, long K, const Blocks& g, const Blocks::Block& k, long wp, const Scratch<T>& s) {
    const long HW = g.plane.H * g.plane.W, slab = slab_size(K, wp);
    for (long kk = 0; kk < K; ++kk)
        for (long b = k.b0; b < k.b1; ++b)
            rows::output(s.m + kk * wp + column(g, k, b, k.ty0), slab, g.plane, k.ty0, k.ty1,
                         bias ? bias[kk] : T(0), y + (b * K + kk) * HW, s.t);
}

template <typename T>
void output_grad_block(const T* dy, T* db, long K, const Blocks& g, const Blocks::Block& k, long wp,
                       const Scratch<T>& s) {
    const long HW = g.plane.H * g.plane.W, slab = slab_size(K, wp);
    for (long kk = 0; kk < K; ++kk) {
        T sum = T(0);
        for (long b = k.b0; b < k.b1; ++b)
            sum += rows::output_grad(dy + (b * K + kk) * HW, g.plane, k.ty0, k.ty1,
                                     s.m + kk * wp + column(g, k, b, k.ty0), slab, s.t, s.zero);
        if (db) db[kk] += sum;
    }
}

template <typename T>
void input_grad_block(T* acc, long b_first, long C, const Blocks& g, const Blocks::Block& k, long wp,
                      const Scratch<T>& s) {
    const long bordered = rows::bordered_size(g.plane), slab = slab_size(C, wp);
    for (long c = 0; c < C; ++c)
        for (long b = k.b0; b < k.b1; ++b)
            rows::input_grad(s.v + c * wp + column(g, k, b, k.ty0), slab, g.plane, k.ty0, k.ty1,
                             acc + ((b - b_first) * C + c) * bordered, s.q, s.t);
}

}  // namespace

template <typename T>
void winograd_conv_cpu(const T* x, const T* u, const T* bias, T* y, long B, long C, long K, long H, long W) {
    const Blocks g(B, H, W);
    const Scratches<T> scratch(C, K, g);
#pragma omp parallel num_threads(scratch.threads())
    {
        const Scratch<T> s = scratch.mine();
#pragma omp for schedule(static)
        for (long i = 0; i < g.count; ++i) {
            const auto k = g[i];
            const long n = g.tiles(k), wp = gemm::round_up(n, gemm::kVec);
            input_block(x, C, g, k, wp, s);
            for (long xi = 0; xi < 16; ++xi)  // M[xi] (K, n) = U[xi] (K, C) @ V[xi] (C, n)
                gemm::matmul(K, n, C, gemm::Matrix<T>{u + xi * K * C, C, 1}, s.v_at(xi, wp),
                             s.m_at(xi, wp), wp);
            output_block(bias, y, K, g, k, wp, s);
        }
    }
}

// The backward recomputes V from x rather than keeping it (4x the input's size) and works in units that own
// whole samples (one block of whole samples, or all the blocks of one sample), so the overlapping tiles'
// input gradients add up inside one thread. dU is summed per group of units, groups fixed by the shape, not
// the thread count, and added in order: the same result for any number of threads.
template <typename T>
void winograd_conv_backward_cpu(const T* x, const T* u, const T* dy, T* dx, T* du_sum, T* db_sum, long B, long C,
                                long K, long H, long W) {
    const Blocks g(B, H, W);
    // Each group's partial sums: dU (16, K, C) then db (K). Fewer groups where dU is large (two at 256 x 256
    // channels), so that zeroing and adding them stays small beside the products.
    const long groups = std::min(g.units, std::clamp(kPartials / (16 * K * C), 2L, kGroups));
    const long du_size = du_sum ? 16 * K * C : 0, part = du_size + (db_sum ? K : 0);
    const long bordered = rows::bordered_size(g.plane), unit_samples = g.S ? g.S : 1;
    std::vector<T> parts(groups * part);
    const Scratches<T> scratch(C, K, g, du_sum ? gemm::packed_size(kPanel, C) : 0);
    const long n_acc = dx ? unit_samples * C * bordered : 0;
    const PerThread<T> accs(n_acc);
#pragma omp parallel num_threads(scratch.threads())
    {
        const Scratch<T> s = scratch.mine();
        T* acc = accs.zeroed();
#pragma omp for schedule(static)
        for (long grp = 0; grp < groups; ++grp) {
            T* du = du_sum ? parts.data() + grp * part : nullptr;
            T* db = db_sum ? parts.data() + grp * part + du_size : nullptr;
            for (long unit = grp * g.units / groups; unit < (grp + 1) * g.units / groups; ++unit) {
                const long first = g.S ? unit : unit * g.per, last = g.S ? unit + 1 : (unit + 1) * g.per;
                const long b_first = g[first].b0, b_last = g[first].b1;
                if (dx) std::fill(acc, acc + n_acc, T(0));
                for (long i = first; i < last; ++i) {
                    const auto k = g[i];
                    const long n = g.tiles(k), wp = gemm::round_up(n, gemm::kVec);
                    output_grad_block(dy, db, K, g, k, wp, s);
                    if (dx) {  // dV[xi] (C, n) = U[xi]^T (C, K) @ dM[xi] (K, n), then its tiles into acc
                        for (long xi = 0; xi < 16; ++xi)
                            gemm::matmul(C, n, K, gemm::Matrix<T>{u + xi * K * C, 1, C}, s.m_at(xi, wp),
                                         s.v_at(xi, wp), wp);
                        input_grad_block(acc, b_first, C, g, k, wp, s);
                    }
                    if (du) {  // dU[xi] (K, C) += dM[xi] (K, n) @ V[xi]^T (n, C), V recomputed from x
                        input_block(x, C, g, k, wp, s);
                        for (long xi = 0; xi < 16; ++xi) {
                            gemm::pack_b_transposed(n, C, s.v_at(xi, wp), wp, s.packed);
                            gemm::matmul(K, C, n, gemm::Matrix<T>{s.m_at(xi, wp), wp, 1}, s.packed,
                                         du + xi * K * C, C, true);
                        }
                    }
                }
                for (long b = b_first; dx && b < b_last; ++b)  // the unit's images
                    for (long c = 0; c < C; ++c)
                        rows::unborder(acc + ((b - b_first) * C + c) * bordered, g.plane,
                                       dx + (b * C + c) * H * W);
            }
        }
        // The groups added in order, a stretch of dU's or db's partial sums at a time.
        constexpr long stretch = 4096;
        const long du_stretches = (du_size + stretch - 1) / stretch;
        const long stretches = du_stretches + (part - du_size + stretch - 1) / stretch;
#pragma omp for schedule(static)
        for (long i = 0; i < stretches; ++i) {
            const bool in_du = i < du_stretches;
            const long e0 = in_du ? i * stretch : du_size + (i - du_stretches) * stretch;
            const long n = std::min(e0 + stretch, in_du ? du_size : part) - e0;
            T* out = in_du ? du_sum + e0 : db_sum + (e0 - du_size);
            std::copy(parts.begin() + e0, parts.begin() + e0 + n, out);
            for (long grp = 1; grp < groups; ++grp) {
                const T* p = parts.data() + grp * part + e0;
#pragma omp simd
                for (long e = 0; e < n; ++e) out[e] += p[e];
            }
        }
    }
}

#define PYDDPM_WINOGRAD_FUSED_INSTANTIATE(T)                                                                 \
    template void winograd_conv_cpu<T>(const T*, const T*, const T*, T*, long, long, long, long, long);      \
    template void winograd_conv_backward_cpu<T>(const T*, const T*, const T*, T*, T*, T*, long, long, long,   \
                                                long, long);
PYDDPM_WINOGRAD_FUSED_INSTANTIATE(float)
PYDDPM_WINOGRAD_FUSED_INSTANTIATE(double)
#undef PYDDPM_WINOGRAD_FUSED_INSTANTIATE

}  // namespace pyddpm

// --- Python bindings ------------------------------------------------------------------------------------
#include <pybind11/stl.h>

#include <optional>

#include "bind/checks.h"
#include "bind/registry.h"

namespace pyddpm {
namespace {

struct ConvShape {
    long B, C, K, H, W;
};

// Checks x (B, C, H, W) and u (16, K, C) for dtype T, contiguity and a tile row that fits a panel.
template <typename T>
ConvShape check_conv(const char* fn, const py::array& x, const py::array& u) {
    check_array(fn, "x", x, py::dtype::of<T>(), {-1, -1, -1, -1});
    check_array(fn, "u", u, py::dtype::of<T>(), {16, -1, x.shape(1)});
    const ConvShape s{long(x.shape(0)), long(x.shape(1)), long(u.shape(1)), long(x.shape(2)), long(x.shape(3))};
    check_positive(fn, "B", s.B), check_positive(fn, "C", s.C), check_positive(fn, "K", s.K);
    check_positive(fn, "H", s.H), check_positive(fn, "W", s.W);
    if (s.W > 2 * gemm::kPanel)
        throw py::value_error(std::string(fn) + ": images wider than " + std::to_string(2 * gemm::kPanel) +
                              " pixels take the unfused path (got W = " + std::to_string(s.W) + ")");
    return s;
}

template <typename T>
const T* in(const py::array& a) { return static_cast<const T*>(a.data()); }

template <typename T>
py::array conv_t(py::array x, py::array u, std::optional<py::array> bias) {
    const char* fn = "winograd_conv";
    const ConvShape s = check_conv<T>(fn, x, u);
    if (bias) check_array(fn, "bias", *bias, py::dtype::of<T>(), {s.K});
    py::array_t<T> y({s.B, s.K, s.H, s.W});
    {
        py::gil_scoped_release release;
        winograd_conv_cpu<T>(in<T>(x), in<T>(u), bias ? in<T>(*bias) : nullptr, y.mutable_data(), s.B, s.C, s.K, s.H,
                             s.W);
    }
    return y;
}

template <typename T>
py::tuple conv_backward_t(py::array x, py::array u, py::array dy, bool need_dx, bool need_du, bool need_db) {
    const char* fn = "winograd_conv_backward";
    const ConvShape s = check_conv<T>(fn, x, u);
    check_array(fn, "dy", dy, py::dtype::of<T>(), {s.B, s.K, s.H, s.W});
    py::object dx = py::none(), du = py::none(), db = py::none();
    T *dx_data = nullptr, *du_data = nullptr, *db_data = nullptr;
    if (need_dx) {
        py::array_t<T> a({s.B, s.C, s.H, s.W});
        dx_data = a.mutable_data(), dx = a;
    }
    if (need_du) {
        py::array_t<T> a({16L, s.K, s.C});
        du_data = a.mutable_data(), du = a;
    }
    if (need_db) {
        py::array_t<T> a({s.K});
        db_data = a.mutable_data(), db = a;
    }
    if (need_dx || need_du || need_db) {
        py::gil_scoped_release release;
        winograd_conv_backward_cpu<T>(in<T>(x), in<T>(u), in<T>(dy), dx_data, du_data, db_data, s.B, s.C, s.K, s.H,
                                      s.W);
    }
    return py::make_tuple(dx, du, db);
}

void bind(py::module_& m) {
    m.attr("winograd_conv_max_width") = 2 * gemm::kPanel;
    m.def("winograd_conv", [](py::array x, py::array u, std::optional<py::array> bias) {
        return is_float64("winograd_conv", "x", x) ? conv_t<double>(x, u, bias) : conv_t<float>(x, u, bias);
    }, py::arg("x"), py::arg("u"), py::arg("bias") = py::none(),
       "x (B, C, H, W), u (16, K, C) -> conv3x3(x) + bias (B, K, H, W), Winograd F(2x2, 3x3) a block at a time");
    m.def("winograd_conv_backward", [](py::array x, py::array u, py::array dy, bool need_dx, bool need_du,
                                       bool need_db) {
        const bool f64 = is_float64("winograd_conv_backward", "x", x);
        return (f64 ? conv_backward_t<double> : conv_backward_t<float>)(x, u, dy, need_dx, need_du, need_db);
    }, py::arg("x"), py::arg("u"), py::arg("dy"), py::arg("need_dx") = true, py::arg("need_du") = true,
       py::arg("need_db") = false,
       "(dx (B, C, H, W), du (16, K, C), db (K,)), each None unless needed: winograd_conv's gradients (V "
       "recomputed from x; db = dy's sum per channel)");
}

const Register registered(bind);

}  // namespace
}  // namespace pyddpm
