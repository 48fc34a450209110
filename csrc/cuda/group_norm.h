// GroupNorm (+ SiLU) CUDA launchers, float32. Device pointers; shapes as in csrc/cpu/group_norm.h.
// dgamma_part, dbeta_part: (B, C) scratch for the deterministic two-stage parameter-gradient reduction.
#pragma once

#include <cuda_runtime.h>

namespace pyddpm {

void group_norm_forward_cuda(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                             float* rstd, int B, int C, int HW, int G, bool silu, float eps, cudaStream_t stream);

void group_norm_backward_cuda(const float* dy, const float* x, const float* gamma, const float* beta,
                              const float* mean, const float* rstd, float* dx, float* dgamma, float* dbeta,
                              float* dgamma_part, float* dbeta_part, int B, int C, int HW, int G, bool silu,
                              cudaStream_t stream);

}  // namespace pyddpm
