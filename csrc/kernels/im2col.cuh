// im2col / col2im: the index maps of a k x k convolution as a matrix multiply (reference:
// pyddpm/ops/im2col.py). These kernels only copy and add; what both builds share is where each value
// comes from, so the CPU and CUDA drivers cannot disagree about a layout.
//
// Batched layout, any stride s and padding p: x (B, C, H, W), cols (B, C*k*k, Ho*Wo), rows (c, ky, kx),
//     cols[b, (c, ky, kx), oy*Wo + ox] = x[b, c, oy*s + ky - p, ox*s + kx - p]   (0 outside the image)
// col2im is its adjoint: image[b, c, y, x] = sum of the cols entries that im2col copied from (y, x).
//
// Row layout, stride 1 and "same" padding (2p = k - 1): the padded image with one extra zero row at the
// bottom, flattened row-major with row length Wp = W + 2p, is `flat`; output position q = i*Wp + j
// (j >= W are junk columns) reads flat[q + ky*Wp + kx] under tap (ky, kx). cols (C, k*k, B, L), L = H*Wp.
#pragma once

#include "common.cuh"

namespace pyddpm {
namespace i2c {

// Output positions o in [0, n_out) whose tap (offset `tap` in the window) lands inside the image:
// 0 <= o*stride + tap - padding < n_in holds exactly for o in [*lo, *hi) (empty when *lo >= *hi).
// Index type I: long on the CPU, int on the GPU (where 64-bit division is slow; the launchers check sizes).
template <typename I>
PYDDPM_HD void valid_range(I tap, I n_in, I n_out, I stride, I padding, I* lo, I* hi) {
    const I a = padding - tap;             // o*stride >= a
    const I b = n_in - 1 + padding - tap;  // o*stride <= b
    *lo = a > 0 ? (a + stride - 1) / stride : 0;
    *hi = b < 0 ? 0 : (b / stride + 1 < n_out ? b / stride + 1 : n_out);
}

// Batched im2col: the offset of cols[b, (c, ky, kx), oy*Wo + ox] in x's (H, W) plane, or -1 for padding.
template <typename I>
PYDDPM_HD I source(I oy, I ox, I ky, I kx, I H, I W, I stride, I padding) {
    const I y = oy * stride + ky - padding, x = ox * stride + kx - padding;
    return (y >= 0 && y < H && x >= 0 && x < W) ? y * W + x : -1;
}

// Batched col2im: the output position along one axis that tap `tap` of image coordinate `y` came from,
// or -1 when that tap never reads y (off the stride grid, or outside the output).
template <typename I>
PYDDPM_HD I tap_output(I y, I tap, I n_out, I stride, I padding) {
    const I t = y + padding - tap;
    if (t < 0 || t % stride) return -1;
    return t / stride < n_out ? t / stride : -1;
}

// Row layout: the offset in x's (H, W) plane of flat position f, or -1 for padding (rows above, below
// and the extra bottom row; columns left and right).
template <typename I>
PYDDPM_HD I rows_source(I f, I H, I W, I padding) {
    const I Wp = W + 2 * padding;
    const I y = f / Wp - padding, x = f % Wp - padding;
    return (y >= 0 && y < H && x >= 0 && x < W) ? y * W + x : -1;
}

// Row layout, adjoint: the position q in [0, L) at which tap (ky, kx) read pixel (y, x), or -1 when it
// never did. Pixel (y, x) is flat position (y + p)*Wp + x + p and tap (ky, kx) reads flat[q + ky*Wp + kx].
template <typename I>
PYDDPM_HD I rows_tap_output(I y, I x, I ky, I kx, I H, I W, I padding) {
    const I Wp = W + 2 * padding;
    const I q = (y + padding - ky) * Wp + x + padding - kx;
    return (q >= 0 && q < H * Wp) ? q : -1;
}

}  // namespace i2c
}  // namespace pyddpm
