// Fused noising (Eq. 4) on the GPU. The math is csrc/kernels/q_sample.cuh; the reference is
// pyddpm/ops/q_sample.py.
//
// One block per STEP_BLOCK_ELEMS-element piece of one sample (blockIdx.x = sample * pieces + piece): every
// thread reads the sample's t and two coefficients (the same addresses across the block: one broadcast),
// then strides over the piece. Elementwise, no shared memory, no barrier.
#include "cuda/q_sample.h"

#include "cuda/common.cuh"
#include "kernels/q_sample.cuh"

namespace pyddpm {
namespace {

__global__ void q_sample_kernel(const float* x0, const std::int64_t* t, const float* noise,
                                const double* sqrt_alphas_cumprod, const double* sqrt_one_minus_alphas_cumprod,
                                float* xt, long n, long T, long pieces) {
    const long b = blockIdx.x / pieces;
    const long begin = (blockIdx.x % pieces) * STEP_BLOCK_ELEMS;
    const long end = begin + STEP_BLOCK_ELEMS < n ? begin + STEP_BLOCK_ELEMS : n;
    const std::int64_t tb = t[b];
    const bool valid = tb >= 0 && tb < T;
    const qs::Coefs<float> c = valid ? qs::coefs<float>(sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod, tb)
                                     : qs::Coefs<float>{NAN, NAN};
    const long o = b * n;
    for (long i = begin + threadIdx.x; i < end; i += blockDim.x) xt[o + i] = qs::forward(x0[o + i], noise[o + i], c);
}

}  // namespace

void q_sample_cuda(const float* x0, const std::int64_t* t, const float* noise, const double* sqrt_alphas_cumprod,
                   const double* sqrt_one_minus_alphas_cumprod, float* xt, long B, long n, long T,
                   cudaStream_t stream) {
    const long pieces = (n + STEP_BLOCK_ELEMS - 1) / STEP_BLOCK_ELEMS;
    PYDDPM_LAUNCH(q_sample_kernel, unsigned(B * pieces), STEP_BLOCK, 0, stream, x0, t, noise, sqrt_alphas_cumprod,
                  sqrt_one_minus_alphas_cumprod, xt, n, T, pieces);
    check_launch("q_sample_kernel");
}

}  // namespace pyddpm
