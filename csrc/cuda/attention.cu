// Self-attention's row kernels on the GPU. The math is csrc/kernels/attention.cuh; the reference is
// pyddpm/ops/attention.py.
//
// One warp per row, eight rows per block of 256 threads. Why a warp, not a block: the score matrix has
// rows = B * heads * N >= N, so there are always at least as many rows as values in a row, and a warp per
// row already fills the GPU (N = 256, B = 8: 2048 rows, 256 blocks); at N = 64 a 256-thread block per row
// would leave three quarters of its threads idle; and a warp reduces with shuffles alone, with no shared
// memory or barriers. At N of a few thousand each lane loops over ~100 values, still coalesced (lane j
// reads index j + 32i). Each row is read from memory once and then from cache (N = 256: 1 KB a row).
// A warp's 32 lanes share one row, so `row < rows` is uniform across the warp and the full-mask shuffles
// inside it are well defined; the kernels have no barrier.
#include <cmath>

#include "cuda/attention.h"
#include "cuda/common.cuh"
#include "kernels/attention.cuh"

namespace pyddpm {
namespace {

constexpr int WARPS = int(ATTENTION_ROWS_PER_BLOCK);
constexpr int BLOCK = 32 * WARPS;

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
}

// max of scale*s (warp max), e = exp(scale*s - max) written out and summed (warp sum), then out *= 1 / sum.
__global__ void softmax_rows_kernel(const float* s, float* p, long rows, int n, float scale) {
    const long row = long(blockIdx.x) * WARPS + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row < rows) {
        const float* x = s + row * n;
        float* y = p + row * n;
        float m = -INFINITY;
        for (int j = lane; j < n; j += 32) m = fmaxf(m, scale * x[j]);
        m = warp_max(m);
        float sum = 0.f;
        for (int j = lane; j < n; j += 32) {
            const float e = attn::softmax_numerator(x[j], scale, m);
            y[j] = e;
            sum += e;
        }
        const float inv = 1.f / warp_sum(sum);  // >= 1: the maximum contributes exp(0)
        for (int j = lane; j < n; j += 32) y[j] *= inv;
    }
}

// dot = sum dp * p (warp sum), then ds = scale * p * (dp - dot).
__global__ void softmax_backward_rows_kernel(const float* p, const float* dp, float* ds, long rows, int n,
                                             float scale) {
    const long row = long(blockIdx.x) * WARPS + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row < rows) {
        const float* pr = p + row * n;
        const float* dpr = dp + row * n;
        float* out = ds + row * n;
        float dot = 0.f;
        for (int j = lane; j < n; j += 32) dot += dpr[j] * pr[j];
        dot = warp_sum(dot);
        for (int j = lane; j < n; j += 32) out[j] = attn::softmax_grad(pr[j], dpr[j], dot, scale);
    }
}

int blocks_for(long rows) { return int((rows + WARPS - 1) / WARPS); }

}  // namespace

void softmax_rows_cuda(const float* s, float* p, long rows, int n, float scale, cudaStream_t stream) {
    PYDDPM_LAUNCH(softmax_rows_kernel, blocks_for(rows), BLOCK, 0, stream, s, p, rows, n, scale);
    check_launch("softmax_rows_kernel");
}

void softmax_backward_rows_cuda(const float* p, const float* dp, float* ds, long rows, int n, float scale,
                                cudaStream_t stream) {
    PYDDPM_LAUNCH(softmax_backward_rows_kernel, blocks_for(rows), BLOCK, 0, stream, p, dp, ds, rows, n, scale);
    check_launch("softmax_backward_rows_kernel");
}

}  // namespace pyddpm
