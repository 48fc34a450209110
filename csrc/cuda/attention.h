// Self-attention's row kernels on the GPU, float32 (the matmuls around them run in cuBLAS via CuPy).
// Device pointers to `rows` contiguous rows of n values; out may be an input itself, never a partial overlap.
#pragma once

#include <cuda_runtime.h>

namespace pyddpm {

// The most rows one launch takes: its grid of rows / ATTENTION_ROWS_PER_BLOCK blocks must fit in an int.
constexpr long ATTENTION_ROWS_PER_BLOCK = 8;

// p = softmax(scale * s) along each row.
void softmax_rows_cuda(const float* s, float* p, long rows, int n, float scale, cudaStream_t stream);

// ds = scale * p * (dp - rowsum(dp * p)): the gradient of softmax_rows w.r.t. s.
void softmax_backward_rows_cuda(const float* p, const float* dp, float* ds, long rows, int n, float scale,
                                cudaStream_t stream);

}  // namespace pyddpm
