// A whole Winograd F(2x2, 3x3) convolution in one pass on the CPU: input transform, the 16 matrix
// multiplies and output transform for one block of tiles at a time, the block's transformed tiles held in
// cache. The math is csrc/kernels/winograd.cuh's; the three-step path (csrc/cpu/winograd.cpp around
// batched_matmul) computes the same products and stays for small tile counts (one block would leave the
// other threads idle), images wider than 2 * kPanel pixels, and the GPU (pyddpm/autograd/conv.py decides).
//
// Why: the unfused path writes V (16 values per 4 pixels of x: 4x x) and M (4x y) to memory and reads them
// back. With 32-64 channels the 16 products are short (k = C) and the passes over V and M took as long as
// the multiplies (benchmarks/RESULTS.md, "Winograd"). Here a block is one packed panel of the micro-kernel
// (csrc/cpu/micro_gemm.h): up to kPanel tiles, so V's block (16, C, kPanel) is already in the layout the
// kernel reads, nothing is packed, and V and M never leave L2 (128 KB each at 32 channels).
//
// Blocks never straddle two samples: a block is either `S` whole samples (when a sample has at most kPanel
// tiles) or `R` tile rows of one sample. Tile j of a block is ((b - b0) * rows + (ty - ty0)) * TW + tx.
//
// The backward recomputes V from x instead of keeping it (4x the input's size less memory) and works in
// units that own whole samples, so the overlapping tiles' input gradients add up inside one thread:
// a unit is one block of whole samples, or all the blocks of one sample. dU is summed per group of units
// (groups fixed by the shape, not the thread count) and the groups added in order: the same result for
// any number of threads.
#include "cpu/winograd_fused.h"

#include <algorithm>
#include <vector>

#include "cpu/micro_gemm.h"
#include "kernels/winograd.cuh"

namespace pyddpm {
namespace {

using gemm::kPanel;
constexpr long kGroups = 8;          // dU's partial sums: enough groups to share among a few threads,
constexpr long kPartials = 1L << 21;  // and at most about this many values in all

struct Blocks {
    long B, H, W, TH, TW;
    long S;      // samples per block (>= 1), or 0 when a block is R tile rows of one sample
    long R;      // tile rows per block in that case
    long per;    // blocks per sample (S = 0) or 1
    long units;  // backward's units: blocks of whole samples, or samples
    long count;  // blocks

    Blocks(long B_, long H_, long W_) : B(B_), H(H_), W(W_), TH(winograd::tiles(H_)), TW(winograd::tiles(W_)) {
        const long per_sample = TH * TW;
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
        if (S) return {i * S, std::min(i * S + S, B), 0, TH};
        const long b = i / per, ty0 = (i % per) * R;
        return {b, b + 1, ty0, std::min(ty0 + R, TH)};
    }
    long tiles(const Block& k) const { return (k.b1 - k.b0) * k.rows() * TW; }
    long max_rows() const { return std::min(R, TH); }  // tile rows of one sample in one block
};

// The distance between the 16 slabs of a block's V or M (rows x wp each), 16 elements (a cache line of
// floats) more than their size: the transforms write all 16 at once, and at a multiple of 4 KB apart the 16
// streams would share one L1 set (and their stores would look like they alias the loads): 1.5x slower at 32
// channels (benchmarks/RESULTS.md, "In one pass").
inline long slab_size(long rows, long wp) { return rows * wp + 16; }

// Per-thread scratch: the block's V (16, C, wp) and M (16, K, wp) in the packed layout; t and q, a
// transform's intermediate rows for all of a block's tile rows (4 rows of 2TW + 2 per tile row, or 4 x 4 x
// TW); and a row of zeros that stands in for the rows outside the image.
template <typename T>
struct Scratch {
    long C, K;
    std::vector<T> v, m, t, q, zero, packed;
    Scratch(long C_, long K_, const Blocks& g)
        : C(C_), K(K_), v(16 * slab_size(C, kPanel)), m(16 * slab_size(K, kPanel)),
          t(4 * g.max_rows() * (2 * g.TW + 2)), q(16 * g.max_rows() * g.TW), zero(g.W + 1) {}
    T* v_at(long xi, long wp) { return v.data() + xi * slab_size(C, wp); }  // V[xi] (C, wp)
    T* m_at(long xi, long wp) { return m.data() + xi * slab_size(K, wp); }  // M[xi] (K, wp)
};

// The loops below run along a row, one SIMD lane per column or per tile (`omp simd`: the compiler cannot
// tell the rows apart from the arrays they are written to, and would not vectorise them otherwise).

// The column of tile (b, ty, tx = 0) in block k's panel; tile tx is tx columns further.
inline long column(const Blocks& g, const Blocks::Block& k, long b, long ty) {
    return ((b - k.b0) * k.rows() + ty - k.ty0) * g.TW;
}

// V of one block: B^T d B of each tile into s.v[xi][c][j] (row stride wp: the micro-kernel's packed panel).
// Per (channel, sample): B^T down the columns of each tile row's 4 input rows into t (zero rows above and
// below the image, zero columns either side), then along t's rows tile by tile. The first step runs over
// all the tile rows before the second starts: the second reads t at other offsets than the first wrote
// it, and a load that straddles two recent stores waits for them to reach the cache.
template <typename T>
void input_block(const T* x, long C, const Blocks& g, const Blocks::Block& k, long wp, Scratch<T>& s) {
    const long H = g.H, W = g.W, TW = g.TW, cols = 2 * TW + 2, slab = slab_size(C, wp), rows = k.rows();
    for (long i = 0; i < 4 * rows; ++i) {
        T* t = s.t.data() + i * cols;
        std::fill(t + W + 1, t + cols, T(0)), t[0] = T(0);
    }
    for (long c = 0; c < C; ++c) {
        for (long b = k.b0; b < k.b1; ++b) {
            const T* plane = x + (b * C + c) * H * W;
            for (long ty = k.ty0; ty < k.ty1; ++ty) {
                const T* r[4];
                for (long i = 0; i < 4; ++i) {
                    const long y = 2 * ty - 1 + i;
                    r[i] = y >= 0 && y < H ? plane + y * W : s.zero.data();
                }
                T *t0 = s.t.data() + 4 * (ty - k.ty0) * cols, *t1 = t0 + cols, *t2 = t1 + cols, *t3 = t2 + cols;
#pragma omp simd
                for (long j = 0; j < W; ++j)
                    winograd::bt(r[0][j], r[1][j], r[2][j], r[3][j], t0[j + 1], t1[j + 1], t2[j + 1], t3[j + 1]);
            }
            for (long ty = k.ty0; ty < k.ty1; ++ty) {
                T* out = s.v.data() + c * wp + column(g, k, b, ty);
                for (int i = 0; i < 4; ++i) {
                    const T* ti = s.t.data() + (4 * (ty - k.ty0) + i) * cols;
                    T* o = out + 4 * i * slab;
#pragma omp simd
                    for (long tx = 0; tx < TW; ++tx)
                        winograd::bt(ti[2 * tx], ti[2 * tx + 1], ti[2 * tx + 2], ti[2 * tx + 3], o[tx], o[slab + tx],
                                     o[2 * slab + tx], o[3 * slab + tx]);
                }
            }
        }
    }
}

// y's rows for one block: A^T m A of each tile (m: s.m[xi][k][j], row stride wp) plus the bias. A^T down
// the columns into t (2, 4, TW), then along t's rows straight into y (an odd image drops the last column).
template <typename T>
void output_block(const T* bias, T* y, long K, const Blocks& g, const Blocks::Block& k, long wp, Scratch<T>& s) {
    const long H = g.H, W = g.W, TW = g.TW, slab = slab_size(K, wp), pairs = W / 2;
    T* t = s.t.data();
    for (long kk = 0; kk < K; ++kk) {
        const T add = bias ? bias[kk] : T(0);
        for (long b = k.b0; b < k.b1; ++b) {
            T* plane = y + (b * K + kk) * H * W;
            for (long ty = k.ty0; ty < k.ty1; ++ty) {
                const T* in = s.m.data() + kk * wp + column(g, k, b, ty);
                for (int col = 0; col < 4; ++col) {  // xi = 4 * row + col
                    const T* m = in + col * slab;
                    T* tc = t + col * TW;
#pragma omp simd
                    for (long tx = 0; tx < TW; ++tx)
                        winograd::at(m[tx], m[4 * slab + tx], m[8 * slab + tx], m[12 * slab + tx], tc[tx],
                                     tc[4 * TW + tx]);
                }
                for (long i = 0; i < 2 && 2 * ty + i < H; ++i) {
                    const T* ti = t + 4 * i * TW;
                    T* row = plane + (2 * ty + i) * W;
#pragma omp simd
                    for (long tx = 0; tx < pairs; ++tx) {
                        T y0, y1;
                        winograd::at(ti[tx], ti[TW + tx], ti[2 * TW + tx], ti[3 * TW + tx], y0, y1);
                        row[2 * tx] = y0 + add;
                        row[2 * tx + 1] = y1 + add;
                    }
                    if (W % 2) {
                        T y0, y1;
                        winograd::at(ti[pairs], ti[TW + pairs], ti[2 * TW + pairs], ti[3 * TW + pairs], y0, y1);
                        row[W - 1] = y0 + add;
                    }
                }
            }
        }
    }
}

// dM of one block: A dy A^T of each tile into s.m, the adjoint of output_block: A along each of the tile
// row's two output rows into t (2, 4, TW), then A down the columns. db (K values or null) gains the sum of
// the block's dy per channel, the bias's gradient, taken on the same pass over dy.
template <typename T>
void output_grad_block(const T* dy, T* db, long K, const Blocks& g, const Blocks::Block& k, long wp,
                       Scratch<T>& s) {
    const long H = g.H, W = g.W, TW = g.TW, slab = slab_size(K, wp), pairs = W / 2;
    T* t = s.t.data();
    for (long kk = 0; kk < K; ++kk) {
        T sum = T(0);
        for (long b = k.b0; b < k.b1; ++b) {
            const T* plane = dy + (b * K + kk) * H * W;
            for (long ty = k.ty0; ty < k.ty1; ++ty) {
                for (long i = 0; i < 2; ++i) {  // a row below an odd image, and a column past it, are zeros
                    const T* row = 2 * ty + i < H ? plane + (2 * ty + i) * W : s.zero.data();
                    T* ti = t + 4 * i * TW;
#pragma omp simd reduction(+ : sum)
                    for (long tx = 0; tx < pairs; ++tx) {
                        winograd::a(row[2 * tx], row[2 * tx + 1], ti[tx], ti[TW + tx], ti[2 * TW + tx],
                                    ti[3 * TW + tx]);
                        sum += row[2 * tx] + row[2 * tx + 1];
                    }
                    if (W % 2) {
                        winograd::a(row[W - 1], T(0), ti[pairs], ti[TW + pairs], ti[2 * TW + pairs],
                                    ti[3 * TW + pairs]);
                        sum += row[W - 1];
                    }
                }
                T* out = s.m.data() + kk * wp + column(g, k, b, ty);
                for (int col = 0; col < 4; ++col) {  // xi = 4 * row + col
                    const T* tc = t + col * TW;
                    T* o = out + col * slab;
#pragma omp simd
                    for (long tx = 0; tx < TW; ++tx)
                        winograd::a(tc[tx], tc[4 * TW + tx], o[tx], o[4 * slab + tx], o[8 * slab + tx],
                                    o[12 * slab + tx]);
                }
            }
        }
        if (db) db[kk] += sum;
    }
}

// B dv B^T of each tile of one block (dv: s.v, row stride wp), added into acc: the unit's zero-bordered
// planes (samples from `b_first`, C each, (2TH + 2) x (2TW + 2)), tile rows in order. Per (channel,
// sample), each step over all its tile rows before the next (see input_block): B along the rows per tile
// into q (4 x 4, TW) per tile row; the overlapping tiles' values summed into t's rows; B down the columns,
// added to each tile row's 4 rows of acc.
template <typename T>
void input_grad_block(T* acc, long b_first, long C, const Blocks& g, const Blocks::Block& k, long wp,
                      Scratch<T>& s) {
    const long TH = g.TH, TW = g.TW, cols = 2 * TW + 2, slab = slab_size(C, wp), rows = k.rows();
    for (long c = 0; c < C; ++c) {
        for (long b = k.b0; b < k.b1; ++b) {
            T* plane = acc + ((b - b_first) * C + c) * (2 * TH + 2) * cols;
            const T* in = s.v.data() + c * wp + column(g, k, b, k.ty0);  // tile rows TW apart
            for (long i = 0; i < 4 * rows; ++i) {  // (tile row, row i of its 4) = (i / 4, i % 4)
                const T* v = in + (i / 4) * TW + 4 * (i % 4) * slab;
                T *q0 = s.q.data() + 4 * i * TW, *q1 = q0 + TW, *q2 = q1 + TW, *q3 = q2 + TW;
#pragma omp simd
                for (long tx = 0; tx < TW; ++tx)
                    winograd::b(v[tx], v[slab + tx], v[2 * slab + tx], v[3 * slab + tx], q0[tx], q1[tx], q2[tx],
                                q3[tx]);
            }
            for (long i = 0; i < 4 * rows; ++i) {  // tile tx covers columns 2tx .. 2tx + 3
                const T *q0 = s.q.data() + 4 * i * TW, *q1 = q0 + TW, *q2 = q1 + TW, *q3 = q2 + TW;
                T* ti = s.t.data() + i * cols;
                ti[0] = q0[0];
                ti[1] = q1[0];
#pragma omp simd
                for (long tx = 1; tx < TW; ++tx) {
                    ti[2 * tx] = q0[tx] + q2[tx - 1];
                    ti[2 * tx + 1] = q1[tx] + q3[tx - 1];
                }
                ti[2 * TW] = q2[TW - 1];
                ti[2 * TW + 1] = q3[TW - 1];
            }
            for (long ty = k.ty0; ty < k.ty1; ++ty) {
                const T *t0 = s.t.data() + 4 * (ty - k.ty0) * cols, *t1 = t0 + cols, *t2 = t1 + cols, *t3 = t2 + cols;
                T *r0 = plane + 2 * ty * cols, *r1 = r0 + cols, *r2 = r1 + cols, *r3 = r2 + cols;
#pragma omp simd
                for (long j = 0; j < cols; ++j) {
                    T d0, d1, d2, d3;
                    winograd::b(t0[j], t1[j], t2[j], t3[j], d0, d1, d2, d3);
                    r0[j] += d0, r1[j] += d1, r2[j] += d2, r3[j] += d3;
                }
            }
        }
    }
}

}  // namespace

template <typename T>
void winograd_conv_cpu(const T* x, const T* u, const T* bias, T* y, long B, long C, long K, long H, long W) {
    const Blocks g(B, H, W);
#pragma omp parallel
    {
        Scratch<T> s(C, K, g);
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

template <typename T>
void winograd_conv_backward_cpu(const T* x, const T* u, const T* dy, T* dx, T* du_sum, T* db_sum, long B, long C,
                                long K, long H, long W) {
    const Blocks g(B, H, W);
    // Each group's partial sums: dU (16, K, C) then db (K). Fewer groups where dU is large (two at 256 x 256
    // channels), so that zeroing and adding them stays small beside the products.
    const long groups = std::min(g.units, std::clamp(kPartials / (16 * K * C), 2L, kGroups));
    const long du_size = du_sum ? 16 * K * C : 0, part = du_size + (db_sum ? K : 0);
    const long rows = 2 * g.TH + 2, cols = 2 * g.TW + 2;
    const long unit_samples = g.S ? g.S : 1;
    std::vector<T> parts(groups * part);
#pragma omp parallel
    {
        Scratch<T> s(C, K, g);
        std::vector<T> acc(dx ? unit_samples * C * rows * cols : 0);
        if (du_sum) s.packed.resize(gemm::packed_size(kPanel, C));
#pragma omp for schedule(static)
        for (long grp = 0; grp < groups; ++grp) {
            T* du = du_sum ? parts.data() + grp * part : nullptr;
            T* db = db_sum ? parts.data() + grp * part + du_size : nullptr;
            for (long unit = grp * g.units / groups; unit < (grp + 1) * g.units / groups; ++unit) {
                const long first = g.S ? unit : unit * g.per, last = g.S ? unit + 1 : (unit + 1) * g.per;
                const long b_first = g[first].b0, b_last = g[first].b1;
                if (dx) std::fill(acc.begin(), acc.end(), T(0));
                for (long i = first; i < last; ++i) {
                    const auto k = g[i];
                    const long n = g.tiles(k), wp = gemm::round_up(n, gemm::kVec);
                    output_grad_block(dy, db, K, g, k, wp, s);
                    if (dx) {  // dV[xi] (C, n) = U[xi]^T (C, K) @ dM[xi] (K, n), then its tiles into acc
                        for (long xi = 0; xi < 16; ++xi)
                            gemm::matmul(C, n, K, gemm::Matrix<T>{u + xi * K * C, 1, C}, s.m_at(xi, wp),
                                         s.v_at(xi, wp), wp);
                        input_grad_block(acc.data(), b_first, C, g, k, wp, s);
                    }
                    if (du) {  // dU[xi] (K, C) += dM[xi] (K, n) @ V[xi]^T (n, C), V recomputed from x
                        input_block(x, C, g, k, wp, s);
                        for (long xi = 0; xi < 16; ++xi) {
                            gemm::pack_b_transposed(n, C, s.v_at(xi, wp), wp, s.packed.data());
                            gemm::matmul(K, C, n, gemm::Matrix<T>{s.m_at(xi, wp), wp, 1}, s.packed.data(),
                                         du + xi * K * C, C, true);
                        }
                    }
                }
                if (dx) {  // the unit's planes without their border
                    for (long b = b_first; b < b_last; ++b)
                        for (long c = 0; c < C; ++c) {
                            const T* a = acc.data() + ((b - b_first) * C + c) * rows * cols;
                            T* out = dx + (b * C + c) * H * W;
                            for (long r = 0; r < H; ++r)
                                std::copy(a + (r + 1) * cols + 1, a + (r + 1) * cols + 1 + W, out + r * W);
                        }
                }
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
