// Kernels with planted bugs, in the style of csrc/cuda (see planted.h). Test-only.
#include "planted.h"

#include "cuda/common.cuh"

namespace planted {
namespace {

using pyddpm::FULL_MASK;
using pyddpm::check_launch;
using pyddpm::warp_sum;

template <int Variant>
__device__ float block_sum(float v, float* scratch) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    if (Variant != 1) __syncthreads();
    float total = lane < warps ? scratch[lane] : 0.f;
    total = warp_sum(total);
    if (Variant != 2) __syncthreads();
    return total;
}

template <int Variant>
__global__ void two_sums_kernel(const float* x, float* sums, int n) {
    __shared__ float scratch[32];
    const float* row = x + long(blockIdx.x) * n;
    float s = 0.f, sq = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += row[i];
    for (int i = threadIdx.x; i < n; i += blockDim.x) sq += row[i] * row[i];
    s = block_sum<Variant>(s, scratch);
    sq = block_sum<Variant>(sq, scratch);
    if (threadIdx.x == 0) {
        sums[2 * blockIdx.x] = s;
        sums[2 * blockIdx.x + 1] = sq;
    }
}

__global__ void off_by_one_kernel(const float* x, float* y, int n, int variant) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (variant == 1 && i <= n) y[i] = 2.f * x[i < n ? i : 0];
    if (variant == 2 && i < n) y[i] = 2.f * x[i + 1];
    if (variant == 0 && i < n) y[i] = 2.f * x[i];
}

__global__ void return_before_barrier_kernel(const float* x, float* out, int n) {
    __shared__ float scratch[32];
    if (int(threadIdx.x) >= n) return;
    const float s = pyddpm::block_sum(x[threadIdx.x], scratch);
    if (threadIdx.x == 0) out[0] = s;
}

__global__ void partial_mask_kernel(const float* x, float* out, int variant) {
    float v = x[threadIdx.x];
    const int lane = threadIdx.x % 32;
    if (variant == 0) v = warp_sum(v);
    if (variant == 1)
        for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0x0000ffffu, v, offset);
    if (variant == 2 && lane < 16) v = warp_sum(v);
    out[threadIdx.x] = v;
}

__global__ void dynamic_shared_kernel(float* out_static, float* out_dynamic, int count) {
    __shared__ float fixed[64];
    PYDDPM_DYNAMIC_SHARED(float, dynamic);
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    out_static[i] = fixed[threadIdx.x];
    out_dynamic[i] = dynamic[threadIdx.x];
    __syncthreads();
    fixed[threadIdx.x] = 1.f;  // a later block must not see this: shared memory is per block
    for (int k = 0; k < count; ++k) dynamic[threadIdx.x * count + k] = 1.f;
}

__global__ void divergent_kernel(float* out, int variant) {
    float v = 1.f;
    if (variant == 1) {
        if (threadIdx.x < 32)
            __syncthreads();
        else
            __syncthreads();
    }
    if (variant == 2) {
        if (threadIdx.x < 16)
            v = __shfl_xor_sync(FULL_MASK, v, 1);
        else
            __syncthreads();
    }
    out[threadIdx.x] = v;
}

__global__ void iota_kernel(float* out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = float(i);
}

__global__ void static_shared_overflow_kernel(float* out) {
    __shared__ float tile[32];
    tile[threadIdx.x + 1] = 1.f;
    __syncthreads();
    out[threadIdx.x] = tile[threadIdx.x];
}

}  // namespace

void block_size_cuda(float* out, int n, int threads, cudaStream_t stream) {
    PYDDPM_LAUNCH(iota_kernel, (n + threads - 1) / threads, threads, 0, stream, out, n);
    check_launch("iota_kernel");
}

void static_shared_overflow_cuda(float* out, cudaStream_t stream) {
    PYDDPM_LAUNCH(static_shared_overflow_kernel, 1, 32, 0, stream, out);
    check_launch("static_shared_overflow_kernel");
}

void divergent_cuda(float* out, int variant, cudaStream_t stream) {
    PYDDPM_LAUNCH(divergent_kernel, 1, 64, 0, stream, out, variant);
    check_launch("divergent_kernel");
}

void two_sums_cuda(const float* x, float* sums, int rows, int n, int variant, cudaStream_t stream) {
    if (variant == 0) PYDDPM_LAUNCH(two_sums_kernel<0>, rows, 256, 0, stream, x, sums, n);
    if (variant == 1) PYDDPM_LAUNCH(two_sums_kernel<1>, rows, 256, 0, stream, x, sums, n);
    if (variant == 2) PYDDPM_LAUNCH(two_sums_kernel<2>, rows, 256, 0, stream, x, sums, n);
    check_launch("two_sums_kernel");
}

void off_by_one_cuda(const float* x, float* y, int n, int variant, cudaStream_t stream) {
    PYDDPM_LAUNCH(off_by_one_kernel, (n + 1 + 63) / 64, 64, 0, stream, x, y, n, variant);
    check_launch("off_by_one_kernel");
}

void return_before_barrier_cuda(const float* x, float* out, int n, cudaStream_t stream) {
    PYDDPM_LAUNCH(return_before_barrier_kernel, 1, 64, 0, stream, x, out, n);
    check_launch("return_before_barrier_kernel");
}

void partial_mask_cuda(const float* x, float* out, int variant, cudaStream_t stream) {
    PYDDPM_LAUNCH(partial_mask_kernel, 1, 32, 0, stream, x, out, variant);
    check_launch("partial_mask_kernel");
}

void dynamic_shared_cuda(float* out_static, float* out_dynamic, int count, cudaStream_t stream) {
    PYDDPM_LAUNCH(dynamic_shared_kernel, 2, 64, 64 * sizeof(float), stream, out_static, out_dynamic, count);
    check_launch("dynamic_shared_kernel");
}

}  // namespace planted
