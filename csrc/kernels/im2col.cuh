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
PYDDPM_HD void valid_range(long tap, long n_in, long n_out, long stride, long padding, long* lo, long* hi) {
    const long a = padding - tap;               // o*stride >= a
    const long b = n_in - 1 + padding - tap;    // o*stride <= b
    *lo = a > 0 ? (a + stride - 1) / stride : 0;
    *hi = b < 0 ? 0 : (b / stride + 1 < n_out ? b / stride + 1 : n_out);
}

// Batched im2col: the offset of cols[b, (c, ky, kx), oy*Wo + ox] in x's (H, W) plane, or -1 for padding.
PYDDPM_HD long source(long oy, long ox, long ky, long kx, long H, long W, long stride, long padding) {
    const long y = oy * stride + ky - padding, x = ox * stride + kx - padding;
    return (y >= 0 && y < H && x >= 0 && x < W) ? y * W + x : -1;
}

// Batched col2im: the output position along one axis that tap `tap` of image coordinate `y` came from,
// or -1 when that tap never reads y (off the stride grid, or outside the output).
PYDDPM_HD long tap_output(long y, long tap, long n_out, long stride, long padding) {
    const long t = y + padding - tap;
    if (t < 0 || t % stride) return -1;
    return t / stride < n_out ? t / stride : -1;
}

// Row layout: the offset in x's (H, W) plane of flat position f, or -1 for padding (rows above, below
// and the extra bottom row; columns left and right).
PYDDPM_HD long rows_source(long f, long H, long W, long padding) {
    const long Wp = W + 2 * padding;
    const long y = f / Wp - padding, x = f % Wp - padding;
    return (y >= 0 && y < H && x >= 0 && x < W) ? y * W + x : -1;
}

}  // namespace i2c
}  // namespace pyddpm
