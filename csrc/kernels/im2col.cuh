// im2col / col2im: the index maps of a k x k convolution as a matrix multiply (reference:
// pyddpm/ops/im2col.py). These kernels only copy and add: their math is where each value comes from.
//
// Batched layout, any stride s and padding p: x (B, C, H, W), cols (B, C*k*k, Ho*Wo), rows (c, ky, kx),
//     cols[b, (c, ky, kx), oy*Wo + ox] = x[b, c, oy*s + ky - p, ox*s + kx - p]   (0 outside the image)
// col2im is its adjoint: image[b, c, y, x] = sum of the cols entries that im2col copied from (y, x).
//
// Row layout, stride 1 and "same" padding (2p = k - 1): the padded image with one extra zero row at the
// bottom, flattened row-major with row length Wp = W + 2p, is `flat`; output position q = i*Wp + j
// (j >= W are junk columns) reads flat[q + ky*Wp + kx] under tap (ky, kx). cols (C, k*k, B, L), L = H*Wp.
//
// The CUDA kernels evaluate these maps per element. The CPU driver (csrc/cpu/im2col.cpp) applies the same
// maps a plane at a time, through a padded tile, where they reduce to shifted contiguous copies and adds;
// both are tested against the NumPy reference. Indices are int (the launchers refuse 2^31 elements).
#pragma once

#include "common.cuh"

namespace pyddpm {
namespace i2c {

// Batched im2col: the offset of cols[b, (c, ky, kx), oy*Wo + ox] in x's (H, W) plane, or -1 for padding.
PYDDPM_HD int source(int oy, int ox, int ky, int kx, int H, int W, int stride, int padding) {
    const int y = oy * stride + ky - padding, x = ox * stride + kx - padding;
    return (y >= 0 && y < H && x >= 0 && x < W) ? y * W + x : -1;
}

// Batched col2im: the output position along one axis that tap `tap` of image coordinate `y` came from,
// or -1 when that tap never reads y (off the stride grid, or outside the output).
PYDDPM_HD int tap_output(int y, int tap, int n_out, int stride, int padding) {
    const int t = y + padding - tap;
    if (t < 0 || t % stride) return -1;
    return t / stride < n_out ? t / stride : -1;
}

// Row layout: the offset in x's (H, W) plane of flat position f, or -1 for padding (rows above, below
// and the extra bottom row; columns left and right).
PYDDPM_HD int rows_source(int f, int H, int W, int padding) {
    const int Wp = W + 2 * padding;
    const int y = f / Wp - padding, x = f % Wp - padding;
    return (y >= 0 && y < H && x >= 0 && x < W) ? y * W + x : -1;
}

// Row layout, adjoint: the position q in [0, L) at which tap (ky, kx) read pixel (y, x), or -1 when it
// never did. Pixel (y, x) is flat position (y + p)*Wp + x + p and tap (ky, kx) reads flat[q + ky*Wp + kx].
PYDDPM_HD int rows_tap_output(int y, int x, int ky, int kx, int H, int W, int padding) {
    const int Wp = W + 2 * padding;
    const int q = (y + padding - ky) * Wp + x + padding - kx;
    return (q >= 0 && q < H * Wp) ? q : -1;
}

}  // namespace i2c
}  // namespace pyddpm
