// Fused noising (Eq. 4) CUDA launcher, float32. Device pointers; shapes as in csrc/cpu/q_sample.h.
// t is on the device: the caller (pyddpm/ops/q_sample.py) has checked 0 <= t < T on the host, and a
// sample whose t is out of range anyway reads no table and gets NaN.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace pyddpm {

void q_sample_cuda(const float* x0, const std::int64_t* t, const float* noise, const double* sqrt_alphas_cumprod,
                   const double* sqrt_one_minus_alphas_cumprod, float* xt, long B, long n, long T,
                   cudaStream_t stream);

// Each block covers this many elements of one sample (BLOCK threads, 4 elements each), so a block's
// threads share one sample's coefficients.
constexpr int STEP_BLOCK = 256;
constexpr long STEP_BLOCK_ELEMS = 4L * STEP_BLOCK;

}  // namespace pyddpm
