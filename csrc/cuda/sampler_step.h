// The fused step of every sampler, CUDA launcher, float32. Device pointers; shapes and the coefficient order
// as in csrc/cpu/sampler_step.h. noise may be null only where every next_from_noise is 0 (the caller,
// pyddpm/ops/sampler_step.py, checks that on the host; a sample that would read a null noise anyway gets
// NaN); log_variance may be null (no learned variance: the noise scaled by next_from_noise alone); pred_x0
// may be null (not wanted).
#pragma once

#include <cuda_runtime.h>

namespace pyddpm {

void sampler_step_cuda(const float* model_output, const float* x, const float* noise, const float* log_variance,
                       const double* x0_from_x, const double* x0_from_out, const double* next_from_x0,
                       const double* next_from_x, const double* next_from_noise, float* x_next, float* pred_x0,
                       long B, long n, bool clip, cudaStream_t stream);

}  // namespace pyddpm
