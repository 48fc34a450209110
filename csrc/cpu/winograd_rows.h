// Winograd F(2x2, 3x3)'s four tile transforms on the CPU, for a run of tile rows [ty0, ty1) of one image
// plane: the loops both CPU drivers share, the three steps (csrc/cpu/winograd.cpp) and the one-pass
// convolution (csrc/cpu/winograd_fused.cpp). The math is csrc/kernels/winograd.cuh's 1-D maps.
//
// Transformed tiles (V, M, or their gradients): tile (ty, tx) of the run at t[(ty - ty0) * TW + tx], the 16
// positions xi = 4 r + s at xi * slab from there. The drivers choose the layout around it: the three steps
// write (16, C, P) arrays, the one-pass kernel a panel the micro-kernel reads.
//
// Each map is two vectorised steps, down the columns and along the rows tile by tile (one SIMD lane per
// column or per tile; `omp simd` because the compiler cannot tell the rows apart from the arrays they are
// written to). Where the second step reads the first's output at other offsets than it was written, the
// first runs over all the tile rows before the second starts: a load that straddles two fresh stores waits
// for them to reach the cache (benchmarks/RESULTS.md, "In one pass").
#pragma once

#include <algorithm>

#include "kernels/winograd.cuh"

namespace pyddpm {
namespace winograd_rows {

// An image plane and its tiles: H x W pixels, TH x TW tiles.
struct Plane {
    long H, W, TH, TW;
    long cols() const { return 2 * TW + 2; }  // a tile row's padded width: one zero column before, 1-2 after
};

inline Plane plane(long H, long W) { return {H, W, winograd::tiles(H), winograd::tiles(W)}; }

// Scratch the maps need for up to `rows` tile rows at a time: t (also >= 8 TW, what the output maps use) and
// q (input_grad only). `zero` arguments: a row of at least W zeros, standing in for rows outside the image.
inline long t_size(const Plane& p, long rows) { return 4 * rows * p.cols(); }
inline long q_size(const Plane& p, long rows) { return 16 * rows * p.TW; }

// input_grad's accumulator: the plane with a zero border, (2TH + 2) x cols (one row and column before the
// image, one or two after, as the tiles overlap them), and the image inside it.
inline long bordered_size(const Plane& p) { return (2 * p.TH + 2) * p.cols(); }

template <typename T>
void unborder(const T* acc, const Plane& p, T* image) {
    const long cols = p.cols();
    for (long r = 0; r < p.H; ++r) {
        const T* row = acc + (r + 1) * cols + 1;
        std::copy(row, row + p.W, image + r * p.W);
    }
}

// V = B^T d B of each tile from the plane x: B^T down the columns of each tile row's 4 input rows into t
// (zero rows above and below the image, zero columns either side), then along t's rows tile by tile.
template <typename T>
void input(const T* x, const Plane& p, long ty0, long ty1, T* v, long slab, T* t, const T* zero) {
    const long H = p.H, W = p.W, TW = p.TW, cols = p.cols();
    for (long i = 0; i < 4 * (ty1 - ty0); ++i) {
        T* ti = t + i * cols;
        std::fill(ti + W + 1, ti + cols, T(0)), ti[0] = T(0);
    }
    for (long ty = ty0; ty < ty1; ++ty) {
        const T* r[4];
        for (long i = 0; i < 4; ++i) {
            const long y = 2 * ty - 1 + i;
            r[i] = y >= 0 && y < H ? x + y * W : zero;
        }
        T *t0 = t + 4 * (ty - ty0) * cols, *t1 = t0 + cols, *t2 = t1 + cols, *t3 = t2 + cols;
#pragma omp simd
        for (long j = 0; j < W; ++j)
            winograd::bt(r[0][j], r[1][j], r[2][j], r[3][j], t0[j + 1], t1[j + 1], t2[j + 1], t3[j + 1]);
    }
    for (long i = 0; i < 4 * (ty1 - ty0); ++i) {  // (tile row, row of its 4) = (i / 4, i % 4)
        const T* ti = t + i * cols;
        T* o = v + (i / 4) * TW + 4 * (i % 4) * slab;
#pragma omp simd
        for (long tx = 0; tx < TW; ++tx)
            winograd::bt(ti[2 * tx], ti[2 * tx + 1], ti[2 * tx + 2], ti[2 * tx + 3], o[tx], o[slab + tx],
                         o[2 * slab + tx], o[3 * slab + tx]);
    }
}

// The adjoint of input: B dv B^T of each tile added into acc (bordered, above), tile rows in order. B along
// the rows per tile into q (4 x 4, TW) per tile row; the overlapping tiles' values summed into t's rows; B
// down the columns, added to each tile row's 4 rows of acc.
template <typename T>
void input_grad(const T* dv, long slab, const Plane& p, long ty0, long ty1, T* acc, T* q, T* t) {
    const long TW = p.TW, cols = p.cols(), rows = ty1 - ty0;
    for (long i = 0; i < 4 * rows; ++i) {
        const T* v = dv + (i / 4) * TW + 4 * (i % 4) * slab;
        T *q0 = q + 4 * i * TW, *q1 = q0 + TW, *q2 = q1 + TW, *q3 = q2 + TW;
#pragma omp simd
        for (long tx = 0; tx < TW; ++tx)
            winograd::b(v[tx], v[slab + tx], v[2 * slab + tx], v[3 * slab + tx], q0[tx], q1[tx], q2[tx], q3[tx]);
    }
    for (long i = 0; i < 4 * rows; ++i) {  // tile tx covers columns 2tx .. 2tx + 3
        const T *q0 = q + 4 * i * TW, *q1 = q0 + TW, *q2 = q1 + TW, *q3 = q2 + TW;
        T* ti = t + i * cols;
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
    for (long ty = ty0; ty < ty1; ++ty) {
        const T *t0 = t + 4 * (ty - ty0) * cols, *t1 = t0 + cols, *t2 = t1 + cols, *t3 = t2 + cols;
        T *r0 = acc + 2 * ty * cols, *r1 = r0 + cols, *r2 = r1 + cols, *r3 = r2 + cols;
#pragma omp simd
        for (long j = 0; j < cols; ++j) {
            T d0, d1, d2, d3;
            winograd::b(t0[j], t1[j], t2[j], t3[j], d0, d1, d2, d3);
            r0[j] += d0, r1[j] += d1, r2[j] += d2, r3[j] += d3;
        }
    }
}

// The plane y's rows 2ty, 2ty + 1: A^T m A of each tile plus `add` (the bias). A^T down the columns into t
// (2, 4, TW), then along t's rows straight into y (an odd image drops the last row or column).
template <typename T>
void output(const T* m, long slab, const Plane& p, long ty0, long ty1, T add, T* y, T* t) {
    const long H = p.H, W = p.W, TW = p.TW, pairs = W / 2;
    for (long ty = ty0; ty < ty1; ++ty) {
        const T* in = m + (ty - ty0) * TW;
        for (int col = 0; col < 4; ++col) {  // xi = 4 * row + col
            const T* mc = in + col * slab;
            T* tc = t + col * TW;
#pragma omp simd
            for (long tx = 0; tx < TW; ++tx)
                winograd::at(mc[tx], mc[4 * slab + tx], mc[8 * slab + tx], mc[12 * slab + tx], tc[tx],
                             tc[4 * TW + tx]);
        }
        for (long i = 0; i < 2 && 2 * ty + i < H; ++i) {
            const T* ti = t + 4 * i * TW;
            T* row = y + (2 * ty + i) * W;
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

// The adjoint of output (without its bias): dM = A dy A^T of each tile from the plane dy, A along each tile
// row's two output rows into t (2, 4, TW), then A down the columns. Returns the sum of those rows of dy (the
// bias's gradient), taken on the same pass.
template <typename T>
T output_grad(const T* dy, const Plane& p, long ty0, long ty1, T* dm, long slab, T* t, const T* zero) {
    const long H = p.H, W = p.W, TW = p.TW, pairs = W / 2;
    T sum = T(0);
    for (long ty = ty0; ty < ty1; ++ty) {
        for (long i = 0; i < 2; ++i) {  // a row below an odd image, and a column past it, are zeros
            const T* row = 2 * ty + i < H ? dy + (2 * ty + i) * W : zero;
            T* ti = t + 4 * i * TW;
#pragma omp simd reduction(+ : sum)
            for (long tx = 0; tx < pairs; ++tx) {
                winograd::a(row[2 * tx], row[2 * tx + 1], ti[tx], ti[TW + tx], ti[2 * TW + tx], ti[3 * TW + tx]);
                sum += row[2 * tx] + row[2 * tx + 1];
            }
            if (W % 2) {
                winograd::a(row[W - 1], T(0), ti[pairs], ti[TW + pairs], ti[2 * TW + pairs], ti[3 * TW + pairs]);
                sum += row[W - 1];
            }
        }
        T* out = dm + (ty - ty0) * TW;
        for (int col = 0; col < 4; ++col) {  // xi = 4 * row + col
            const T* tc = t + col * TW;
            T* o = out + col * slab;
#pragma omp simd
            for (long tx = 0; tx < TW; ++tx)
                winograd::a(tc[tx], tc[4 * TW + tx], o[tx], o[4 * slab + tx], o[8 * slab + tx], o[12 * slab + tx]);
        }
    }
    return sum;
}

}  // namespace winograd_rows
}  // namespace pyddpm
