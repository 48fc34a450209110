// The fused reverse step (Alg. 2) CUDA launcher, float32. Device pointers; shapes and the table order as
// in csrc/cpu/p_sample_step.h; pred_x0 may be null (not wanted). t is on the device: the caller
// (pyddpm/ops/p_sample_step.py) has checked 0 <= t < T on the host, and a sample whose t is out of range
// anyway reads no table and gets NaN.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace pyddpm {

void p_sample_step_cuda(const float* model_output, const float* xt, const std::int64_t* t, const float* noise,
                        const double* sqrt_recip_alphas_cumprod, const double* sqrt_recipm1_alphas_cumprod,
                        const double* posterior_mean_coef1, const double* posterior_mean_coef2,
                        const double* model_log_variance, float* x_prev, float* pred_x0, long B, long n, long T,
                        bool predict_eps, bool clip, cudaStream_t stream);

}  // namespace pyddpm
