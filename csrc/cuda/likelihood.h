// The bound's per-element terms on the GPU, float32 (math: csrc/kernels/likelihood.cuh). Device pointers;
// shapes as in csrc/cpu/likelihood.h: per-element arrays (B, n), per-sample ones (B,) flagged by
// *_per_sample; exactly one of out (B, n) and bpd (B,) is non-null.
#pragma once

#include <cuda_runtime.h>

namespace pyddpm {

void discretized_gaussian_log_likelihood_cuda(const float* x, const float* means, const float* log_scales,
                                              bool log_scales_per_sample, float* out, float* bpd, long B, long n,
                                              cudaStream_t stream);

void normal_kl_cuda(const float* mean1, const float* logvar1, bool logvar1_per_sample, const float* mean2,
                    const float* logvar2, bool logvar2_per_sample, float* out, float* bpd, long B, long n,
                    cudaStream_t stream);

}  // namespace pyddpm
