// im2col / col2im on the GPU, float32. The index maps are csrc/kernels/im2col.cuh; the reference is
// pyddpm/ops/im2col.py.
//
// Every kernel is one thread per output element, coalesced on the output:
//   im2col, im2col_rows:   per element of cols, read one input value or write the padding zero.
//   col2im, col2im_rows:   per image element, gather its (at most) k*k contributions from cols, summed in a
//                          fixed order (ky, then kx: the reference's). No atomics: reproducible.
//   rows_to_nchw, nchw_to_rows: per output element, one read (or a zero in a junk column).
// Indices are int: the launchers refuse arrays of 2^31 elements or more.
#include "cuda/im2col.h"

#include "cuda/common.cuh"
#include "kernels/im2col.cuh"

namespace pyddpm {
namespace {

constexpr int BLOCK = 256;

__global__ void im2col_kernel(const float* x, float* cols, int n, int H, int W, int k, int stride, int padding,
                              int Ho, int Wo) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        int t = i;
        const int ox = t % Wo;
        t /= Wo;
        const int oy = t % Ho;
        t /= Ho;
        const int kx = t % k;
        t /= k;
        const int ky = t % k;
        const int bc = t / k;
        const int s = i2c::source(oy, ox, ky, kx, H, W, stride, padding);
        cols[i] = s >= 0 ? x[bc * H * W + s] : 0.f;
    }
}

__global__ void col2im_kernel(const float* cols, float* x, int n, int H, int W, int k, int stride, int padding,
                              int Ho, int Wo) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const int xx = i % W, y = i / W % H, bc = i / (W * H);
        const float* taps = cols + bc * k * k * Ho * Wo;
        float sum = 0.f;
        for (int ky = 0; ky < k; ++ky) {
            const int oy = i2c::tap_output(y, ky, Ho, stride, padding);
            if (oy < 0) continue;
            for (int kx = 0; kx < k; ++kx) {
                const int ox = i2c::tap_output(xx, kx, Wo, stride, padding);
                if (ox >= 0) sum += taps[((ky * k + kx) * Ho + oy) * Wo + ox];
            }
        }
        x[i] = sum;
    }
}

__global__ void im2col_rows_kernel(const float* x, float* cols, int n, int B, int C, int H, int W, int k,
                                   int padding) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const int Wp = W + 2 * padding, L = H * Wp;
        const int q = i % L, b = i / L % B, tap = i / (L * B) % (k * k), c = i / (L * B * k * k);
        const int s = i2c::rows_source(q + tap / k * Wp + tap % k, H, W, padding);
        cols[i] = s >= 0 ? x[(b * C + c) * H * W + s] : 0.f;
    }
}

__global__ void col2im_rows_kernel(const float* cols, float* x, int n, int B, int C, int H, int W, int k,
                                   int padding) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const int L = H * (W + 2 * padding);
        const int xx = i % W, y = i / W % H, c = i / (W * H) % C, b = i / (W * H * C);
        float sum = 0.f;
        for (int ky = 0; ky < k; ++ky) {
            for (int kx = 0; kx < k; ++kx) {
                const int q = i2c::rows_tap_output(y, xx, ky, kx, H, W, padding);
                if (q >= 0) sum += cols[((c * k * k + ky * k + kx) * B + b) * L + q];
            }
        }
        x[i] = sum;
    }
}

__global__ void rows_to_nchw_kernel(const float* y, float* out, int n, int B, int C, int H, int W, int padding) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const int Wp = W + 2 * padding;
        const int xx = i % W, yy = i / W % H, c = i / (W * H) % C, b = i / (W * H * C);
        out[i] = y[(c * B + b) * H * Wp + yy * Wp + xx];
    }
}

__global__ void nchw_to_rows_kernel(const float* g, float* out, int n, int B, int C, int H, int W, int padding) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const int Wp = W + 2 * padding;
        const int j = i % Wp, yy = i / Wp % H, b = i / (Wp * H) % B, c = i / (Wp * H * B);
        out[i] = j < W ? g[((b * C + c) * H + yy) * W + j] : 0.f;
    }
}

int blocks_for(long n) { return int((n + BLOCK - 1) / BLOCK); }

}  // namespace

void im2col_cuda(const float* x, float* cols, int B, int C, int H, int W, int k, int stride, int padding,
                 cudaStream_t stream) {
    const int Ho = (H + 2 * padding - k) / stride + 1, Wo = (W + 2 * padding - k) / stride + 1;
    const int n = B * C * k * k * Ho * Wo;
    PYDDPM_LAUNCH(im2col_kernel, blocks_for(n), BLOCK, 0, stream, x, cols, n, H, W, k, stride, padding, Ho, Wo);
    check_launch("im2col_kernel");
}

void col2im_cuda(const float* cols, float* x, int B, int C, int H, int W, int k, int stride, int padding,
                 cudaStream_t stream) {
    const int Ho = (H + 2 * padding - k) / stride + 1, Wo = (W + 2 * padding - k) / stride + 1;
    const int n = B * C * H * W;
    PYDDPM_LAUNCH(col2im_kernel, blocks_for(n), BLOCK, 0, stream, cols, x, n, H, W, k, stride, padding, Ho, Wo);
    check_launch("col2im_kernel");
}

void im2col_rows_cuda(const float* x, float* cols, int B, int C, int H, int W, int k, int padding,
                      cudaStream_t stream) {
    const int n = C * k * k * B * H * (W + 2 * padding);
    PYDDPM_LAUNCH(im2col_rows_kernel, blocks_for(n), BLOCK, 0, stream, x, cols, n, B, C, H, W, k, padding);
    check_launch("im2col_rows_kernel");
}

void col2im_rows_cuda(const float* cols, float* x, int B, int C, int H, int W, int k, int padding,
                      cudaStream_t stream) {
    const int n = B * C * H * W;
    PYDDPM_LAUNCH(col2im_rows_kernel, blocks_for(n), BLOCK, 0, stream, cols, x, n, B, C, H, W, k, padding);
    check_launch("col2im_rows_kernel");
}

void rows_to_nchw_cuda(const float* y, float* out, int B, int C, int H, int W, int padding, cudaStream_t stream) {
    const int n = B * C * H * W;
    PYDDPM_LAUNCH(rows_to_nchw_kernel, blocks_for(n), BLOCK, 0, stream, y, out, n, B, C, H, W, padding);
    check_launch("rows_to_nchw_kernel");
}

void nchw_to_rows_cuda(const float* g, float* out, int B, int C, int H, int W, int padding, cudaStream_t stream) {
    const int n = C * B * H * (W + 2 * padding);
    PYDDPM_LAUNCH(nchw_to_rows_kernel, blocks_for(n), BLOCK, 0, stream, g, out, n, B, C, H, W, padding);
    check_launch("nchw_to_rows_kernel");
}

}  // namespace pyddpm
