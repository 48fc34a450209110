// The fused reverse step (Alg. 2) on the GPU. The math is csrc/kernels/p_sample_step.cuh; the reference
// is pyddpm/ops/p_sample_step.py.
//
// Laid out as q_sample (csrc/cuda/q_sample.cu): one block per piece of one sample, the sample's five
// coefficients read once per thread (broadcast), then an elementwise stride over the piece. The flags
// are uniform over the grid, so their branches never diverge; at index 0 the noise is not read.
#include "cuda/p_sample_step.h"

#include "cuda/common.cuh"
#include "cuda/q_sample.h"
#include "kernels/p_sample_step.cuh"

namespace pyddpm {
namespace {

__global__ void p_sample_step_kernel(const float* model_output, const float* xt, const std::int64_t* t,
                                     const float* noise, const double* sqrt_recip_alphas_cumprod,
                                     const double* sqrt_recipm1_alphas_cumprod, const double* posterior_mean_coef1,
                                     const double* posterior_mean_coef2, const double* model_log_variance,
                                     float* x_prev, float* pred_x0, long n, long T, long pieces, int predict_eps,
                                     int clip) {
    const long b = blockIdx.x / pieces;
    const long begin = (blockIdx.x % pieces) * STEP_BLOCK_ELEMS;
    const long end = begin + STEP_BLOCK_ELEMS < n ? begin + STEP_BLOCK_ELEMS : n;
    const std::int64_t tb = t[b];
    const bool valid = tb >= 0 && tb < T;
    const ps::Coefs<float> c =
        valid ? ps::coefs<float>(sqrt_recip_alphas_cumprod, sqrt_recipm1_alphas_cumprod, posterior_mean_coef1,
                                 posterior_mean_coef2, model_log_variance, tb)
              : ps::Coefs<float>{NAN, NAN, NAN, NAN, NAN, true};
    const long o = b * n;
    for (long i = begin + threadIdx.x; i < end; i += blockDim.x) {
        const float x0 = ps::pred_x0(model_output[o + i], xt[o + i], c, predict_eps != 0, clip != 0);
        if (pred_x0) pred_x0[o + i] = x0;
        x_prev[o + i] = ps::x_prev(x0, xt[o + i], c.noisy ? noise[o + i] : 0.f, c);
    }
}

}  // namespace

void p_sample_step_cuda(const float* model_output, const float* xt, const std::int64_t* t, const float* noise,
                        const double* sqrt_recip_alphas_cumprod, const double* sqrt_recipm1_alphas_cumprod,
                        const double* posterior_mean_coef1, const double* posterior_mean_coef2,
                        const double* model_log_variance, float* x_prev, float* pred_x0, long B, long n, long T,
                        bool predict_eps, bool clip, cudaStream_t stream) {
    const long pieces = (n + STEP_BLOCK_ELEMS - 1) / STEP_BLOCK_ELEMS;
    PYDDPM_LAUNCH(p_sample_step_kernel, unsigned(B * pieces), STEP_BLOCK, 0, stream, model_output, xt, t, noise,
                  sqrt_recip_alphas_cumprod, sqrt_recipm1_alphas_cumprod, posterior_mean_coef1, posterior_mean_coef2,
                  model_log_variance, x_prev, pred_x0, n, T, pieces, int(predict_eps), int(clip));
    check_launch("p_sample_step_kernel");
}

}  // namespace pyddpm
