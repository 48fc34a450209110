// Winograd F(2x2, 3x3): a stride-1, padding-1 3x3 convolution as 16 matrix multiplies with 2.25x fewer
// multiplies than im2col's one (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks",
// Sec. 4). Reference: pyddpm/ops/winograd.py. Per 2x2 output tile Y, its 4x4 input tile d and a 3x3 filter g:
//
//     Y = A^T [ (G g G^T) (.) (B^T d B) ] A             (.) = elementwise, over the 16 positions xi
//
//     B^T = [1  0 -1  0]    G = [ 1    0    0 ]    A^T = [1  1  1  0]
//           [0  1  1  0]        [1/2  1/2  1/2]          [0  1 -1 -1]
//           [0 -1  1  0]        [1/2 -1/2  1/2]
//           [0  1  0 -1]        [ 0    0    1 ]
//
// which is the cross-correlation a CNN calls convolution: y[i] = sum_k d[i + k] g[k] along each axis.
// Summing over input channels turns (.) into a matrix product per position xi = 4 r + s:
//     M[xi] (C_out, P) = U[xi] (C_out, C) @ V[xi] (C, P),   U = G g G^T,  V = B^T d B,
// P = B * TH * TW tiles, TH = ceil(H / 2), TW = ceil(W / 2), tile p = (b * TH + ty) * TW + tx. Output tile
// (ty, tx) covers rows 2ty, 2ty + 1; its input tile starts one row and column earlier (the zero padding),
// and rows or columns past the image read zeros (odd H or W), whose outputs are dropped.
//
// The backward passes are the adjoints of the same linear maps, again per tile:
//     dM = A dY A^T (output_grad_tile),  dV[xi] = U[xi]^T dM[xi],  dd = B dV B^T (input_grad_tile),
//     dU[xi] = dM[xi] V[xi]^T,  dg = G^T dU G (NumPy: pyddpm/ops/winograd.py, the filters are small).
// Each map below is a 1-D transform applied to the rows, then to the columns, of a row-major tile.
#pragma once

#include "common.cuh"

namespace pyddpm {
namespace winograd {

// The four 1-D maps, on values (what a vectorised loop calls, one lane per tile) and through strides.
// v = B^T d along one axis.
template <typename T>
PYDDPM_HD void bt(T a0, T a1, T a2, T a3, T& v0, T& v1, T& v2, T& v3) {
    v0 = a0 - a2;
    v1 = a1 + a2;
    v2 = a2 - a1;
    v3 = a1 - a3;
}

// d = B v along one axis: the adjoint of bt.
template <typename T>
PYDDPM_HD void b(T v0, T v1, T v2, T v3, T& d0, T& d1, T& d2, T& d3) {
    d0 = v0;
    d1 = v1 - v2 + v3;
    d2 = v1 + v2 - v0;
    d3 = -v3;
}

// y = A^T m along one axis (4 values in, 2 out).
template <typename T>
PYDDPM_HD void at(T m0, T m1, T m2, T m3, T& y0, T& y1) {
    y0 = m0 + m1 + m2;
    y1 = m1 - m2 - m3;
}

// m = A y along one axis (2 in, 4 out): the adjoint of at.
template <typename T>
PYDDPM_HD void a(T y0, T y1, T& m0, T& m1, T& m2, T& m3) {
    m0 = y0;
    m1 = y0 + y1;
    m2 = y0 - y1;
    m3 = -y1;
}

// The same maps through pointers, each array read or written at its own stride (sa for a, sv for v, ...).
template <typename T>
PYDDPM_HD void bt(const T* a, int sa, T* v, int sv) {
    bt(a[0], a[sa], a[2 * sa], a[3 * sa], v[0], v[sv], v[2 * sv], v[3 * sv]);
}

template <typename T>
PYDDPM_HD void b(const T* v, int sv, T* d, int sd) {
    b(v[0], v[sv], v[2 * sv], v[3 * sv], d[0], d[sd], d[2 * sd], d[3 * sd]);
}

template <typename T>
PYDDPM_HD void at(const T* m, int sm, T* y, int sy) { at(m[0], m[sm], m[2 * sm], m[3 * sm], y[0], y[sy]); }

template <typename T>
PYDDPM_HD void a(const T* y, int sy, T* m, int sm) { a(y[0], y[sy], m[0], m[sm], m[2 * sm], m[3 * sm]); }

// v (4x4) = B^T d B for an input tile d (4x4, row-major).
template <typename T>
PYDDPM_HD void input_tile(const T d[16], T v[16]) {
    T t[16];
    for (int j = 0; j < 4; ++j) bt(d + j, 4, t + j, 4);  // columns: B^T d
    for (int i = 0; i < 4; ++i) bt(t + 4 * i, 1, v + 4 * i, 1);  // rows: (B^T d) B
}

// dd (4x4) = B dv B^T: the adjoint of input_tile.
template <typename T>
PYDDPM_HD void input_grad_tile(const T dv[16], T dd[16]) {
    T t[16];
    for (int i = 0; i < 4; ++i) b(dv + 4 * i, 1, t + 4 * i, 1);
    for (int j = 0; j < 4; ++j) b(t + j, 4, dd + j, 4);
}

// y (2x2) = A^T m A for a product tile m (4x4).
template <typename T>
PYDDPM_HD void output_tile(const T m[16], T y[4]) {
    T t[8];  // (2, 4): A^T m
    for (int j = 0; j < 4; ++j) at(m + j, 4, t + j, 4);
    for (int i = 0; i < 2; ++i) at(t + 4 * i, 1, y + 2 * i, 1);
}

// dm (4x4) = A dy A^T: the adjoint of output_tile.
template <typename T>
PYDDPM_HD void output_grad_tile(const T dy[4], T dm[16]) {
    T t[8];  // (2, 4): dy A^T
    for (int i = 0; i < 2; ++i) a(dy + 2 * i, 1, t + 4 * i, 1);
    for (int j = 0; j < 4; ++j) a(t + j, 4, dm + j, 4);
}

// Tiles along an axis of n pixels.
PYDDPM_HD int tiles(int n) { return (n + 1) / 2; }

}  // namespace winograd
}  // namespace pyddpm
